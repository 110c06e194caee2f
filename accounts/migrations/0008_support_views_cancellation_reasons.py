"""Support staff see why customers cancelled (the reasons on a contact and their list): they answer the
customers who left, and the dashboard already shows them the totals."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_GROUP = "Support"
ADDED = [("billing", "view_cancellationfeedback")]


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
    dependencies = [
        ("accounts", "0007_support_corrects_contacts"),
        ("billing", "0006_cancellation_feedback_retention_offer"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
