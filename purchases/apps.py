from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PurchasesConfig(AppConfig):
    name = "purchases"
    verbose_name = _("Purchases and receipts")

    def ready(self):
        from . import receivers  # noqa: F401
