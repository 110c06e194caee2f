from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from . import checks, receivers  # noqa: F401
        from .observability import sentry_init_from_settings

        sentry_init_from_settings()


class PortalAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with PortalAdminSite as `admin.site`, so every @admin.register lands on it."""

    default = False
    default_site = "portal.adminsite.PortalAdminSite"
