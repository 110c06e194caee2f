from django.conf import settings

from .models import SiteSettings


def site_settings_get() -> SiteSettings:
    """Return the one SiteSettings row, creating it with defaults the first time."""
    return SiteSettings.objects.get_or_create(pk=1, defaults={"business_name": settings.PORTAL_BUSINESS_NAME})[0]


def site_settings_for_request(request) -> SiteSettings:
    """The settings row, read once per request however many templates and views ask for it."""
    cached = getattr(request, "_portal_site_settings", None)
    if cached is None:
        cached = request._portal_site_settings = site_settings_get()
    return cached
