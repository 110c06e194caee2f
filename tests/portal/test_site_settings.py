"""The site settings row is kept in the shared cache and forgotten whenever it changes."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from portal.models import SiteSettings
from portal.selectors import site_settings_cache_key, site_settings_get
from portal.services import site_settings_update

pytestmark = pytest.mark.django_db

LOCAL_CACHE = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "site-settings"}


def test_the_row_is_read_once_then_served_from_the_cache(settings):
    settings.CACHES = {**settings.CACHES, "default": LOCAL_CACHE}
    cache.clear()
    site_settings_get()

    with CaptureQueriesContext(connection) as queries:
        site = site_settings_get()

    assert site.pk == 1
    assert queries.captured_queries == []


def test_a_change_is_seen_at_once(settings):
    settings.CACHES = {**settings.CACHES, "default": LOCAL_CACHE}
    cache.clear()
    assert site_settings_get().business_name == "Customer Portal"

    site_settings_update(data={"business_name": "Clay & Code"})

    assert site_settings_get().business_name == "Clay & Code"


def test_a_row_saved_or_deleted_any_other_way_is_forgotten_too(settings):
    settings.CACHES = {**settings.CACHES, "default": LOCAL_CACHE}
    cache.clear()
    site = site_settings_get()
    site.processor_attached = False
    site.save()

    assert site_settings_get().processor_attached is False

    SiteSettings.objects.all().delete()

    assert cache.get(site_settings_cache_key()) is None
    assert site_settings_get().processor_attached is True  # made again with the defaults


def test_a_signed_in_page_reads_no_settings_row_when_the_cache_is_not_the_database(settings, client_logged_in):
    settings.CACHES = {**settings.CACHES, "default": LOCAL_CACHE}
    cache.clear()
    client_logged_in.get("/")  # records activity, caches the row

    with CaptureQueriesContext(connection) as queries:
        client_logged_in.get("/")

    assert not [query for query in queries.captured_queries if "portal_sitesettings" in query["sql"]]
    assert len(queries.captured_queries) == 2  # the session, the user with their customer
