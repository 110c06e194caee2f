from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self):
        from . import checks, receivers  # noqa: F401
        from .observability import sentry_init_from_settings

        sentry_init_from_settings()
