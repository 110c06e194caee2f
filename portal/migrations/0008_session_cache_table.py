from django.core.management import call_command
from django.db import migrations


def create_cache_tables(apps, schema_editor):
    # The sessions' cache table (settings.CACHES["sessions"]); createcachetable makes only the missing ones.
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("portal", "0007_sitesettings_brand_colour")]

    operations = [migrations.RunPython(create_cache_tables, migrations.RunPython.noop)]
