from django.db import migrations, models
from django.db.models import Count


def count_recorded_payments(apps, schema_editor):
    """Each subscription's purchases so far, as the selector's subquery counted them."""
    Purchase = apps.get_model("purchases", "Purchase")
    Subscription = apps.get_model("billing", "Subscription")
    counts = (
        Purchase.objects.exclude(stripe_subscription_id="")
        .order_by()
        .values("stripe_subscription_id")
        .annotate(count=Count("pk"))
        .values_list("stripe_subscription_id", "count")
    )
    for subscription_id, count in counts.iterator():
        Subscription.objects.filter(stripe_subscription_id=subscription_id).update(payments_recorded=count)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_subscription_unpaid_invoice"),
        ("purchases", "0002_refund_status"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="payments_recorded",
            field=models.PositiveIntegerField(default=0, verbose_name="payments recorded"),
        ),
        migrations.RunPython(count_recorded_payments, migrations.RunPython.noop, elidable=True),
    ]
