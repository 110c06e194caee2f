from django.conf import settings

from .models import SiteSettings


def site_settings_get() -> SiteSettings:
    """Return the one SiteSettings row, creating it with defaults the first time."""
    return SiteSettings.objects.get_or_create(pk=1, defaults={"business_name": settings.PORTAL_BUSINESS_NAME})[0]
