"""The console's admin classes, one module per app whose models they show; Django's autodiscovery imports
this package, and each module registers its classes on the portal's admin site."""

from . import accounts, billing, purchases, site  # noqa: F401
