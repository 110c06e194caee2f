import functools
import hashlib

from django.conf import settings
from django.core.cache import cache

from .models import SiteSettings

# Long enough that pages rarely read the row, short enough to end any copy a race left behind (a page
# caching the row it read just before a save committed).
SITE_SETTINGS_CACHE_SECONDS = 300


@functools.cache
def site_settings_cache_key() -> str:
    """The shared cache's key for the settings row: it names the model's columns, so a copy cached by code
    with other columns (during a deployment) is never read as this code's."""
    columns = ",".join(field.attname for field in SiteSettings._meta.concrete_fields)
    return f"portal:site-settings:{hashlib.sha256(columns.encode()).hexdigest()[:12]}"


def site_settings_get() -> SiteSettings:
    """Return the one SiteSettings row, creating it with defaults the first time.

    The row is kept in the shared cache, which every node and worker reads, and dropped from it whenever
    it is saved (portal.receivers): with Redis a page reads no settings from the database."""
    key = site_settings_cache_key()
    site = cache.get(key)
    if site is None:
        site = SiteSettings.objects.get_or_create(pk=1, defaults={"business_name": settings.PORTAL_BUSINESS_NAME})[0]
        cache.set(key, site, timeout=SITE_SETTINGS_CACHE_SECONDS)
    return site


def site_settings_for_request(request) -> SiteSettings:
    """The settings row, read once per request however many templates and views ask for it."""
    cached = getattr(request, "_portal_site_settings", None)
    if cached is None:
        cached = request._portal_site_settings = site_settings_get()
    return cached
