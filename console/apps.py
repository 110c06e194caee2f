from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ConsoleConfig(AppConfig):
    """The top layer: the admin console, staff actions, the dashboard, customer emails' sending, the
    hub's home page, the root URLs and the commands that span apps (docs/architecture.md, *Layers*)."""

    name = "console"
    verbose_name = "Console"

    def ready(self):
        from . import receivers  # noqa: F401


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with PortalAdminSite as `admin.site`, so every @admin.register lands on it."""

    default = False
    default_site = "console.adminsite.PortalAdminSite"
