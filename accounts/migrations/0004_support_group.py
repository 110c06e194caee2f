"""The Support role: a group that can see contacts and run the purchase and subscription actions,
but cannot change offers, products or the site settings. The creator is a superuser and needs no group.

A later change to the role is a new migration; this list is frozen as it was when written."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_GROUP = "Support"
SUPPORT_PERMISSIONS = [
    "accounts.view_customer",
    "accounts.view_as_customer",
    "accounts.send_login_email",
    "accounts.view_customfield",
    "purchases.view_product",
    "purchases.view_offer",
    "purchases.view_purchase",
    "purchases.view_receipt",
    "purchases.view_refund",
    "purchases.add_refund",
    "purchases.view_accessgrant",
    "purchases.add_accessgrant",
    "billing.view_card",
    "billing.view_subscription",
    "billing.change_subscription",
    "portal.view_auditentry",
]


def create_support_group(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create them now so the group can hold them.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    for name in SUPPORT_PERMISSIONS:
        app_label, codename = name.split(".")
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))


def delete_support_group(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name=SUPPORT_GROUP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_custom_fields_and_console"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("billing", "0001_initial"),
        ("portal", "0002_initial"),
        ("purchases", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_support_group, delete_support_group)]
