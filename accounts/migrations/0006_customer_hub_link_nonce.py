from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0005_customer_language'),
    ]

    operations = [
        migrations.AddField(
            model_name='customer',
            name='hub_link_nonce',
            field=models.CharField(blank=True, editable=False, max_length=32, verbose_name='hub link nonce'),
        ),
    ]
