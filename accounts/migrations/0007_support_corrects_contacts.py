"""Support staff may correct a contact's details (name, address, tax ID, custom fields): customers ask
them to, and the change goes through the same services (receipts, Stripe and the audit follow). Offers,
products, custom field definitions and the site settings stay the creator's."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_GROUP = "Support"
ADDED = [("accounts", "change_customer")]


def grant(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=SUPPORT_GROUP).first()
    if group is None:
        return
    for app_label, codename in ADDED:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def revoke(apps, schema_editor):
    Group, Permission = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=SUPPORT_GROUP).first()
    if group is None:
        return
    for app_label, codename in ADDED:
        group.permissions.remove(*Permission.objects.filter(content_type__app_label=app_label, codename=codename))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0006_customer_hub_link_nonce"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(grant, revoke)]
