"""Sessions are Django's database sessions read through a cache table (cached_db); a session cookie Django
could not have made never reaches the database."""

from importlib import import_module

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

CRAFTED = ['"abcdefgh\\000x"', "abcdefgh-../x", "ab\u00e9cdefghij"]


SESSION_TABLES = ("django_session", "portal_session_cache")


def test_sessions_are_djangos_database_sessions_read_through_a_database_cache_of_their_own():
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cached_db"
    assert settings.CACHES[settings.SESSION_CACHE_ALIAS]["BACKEND"] == "django.core.cache.backends.db.DatabaseCache"
    assert settings.SESSION_CACHE_ALIAS != "default"  # sessions never push rate-limit counters out


def test_a_signed_in_page_reads_the_session_from_its_cache_not_from_the_session_table(client_logged_in):
    client_logged_in.get("/")
    with CaptureQueriesContext(connection) as queries:
        client_logged_in.get("/")

    assert [query for query in queries.captured_queries if "portal_session_cache" in query["sql"]]
    assert not [query for query in queries.captured_queries if "django_session" in query["sql"]]


def test_a_session_ended_elsewhere_signs_no_one_in_though_it_was_cached(client_logged_in):
    """As allauth ends a session from another browser (UserSession.end): through the engine's store."""
    client_logged_in.get("/")
    import_module(settings.SESSION_ENGINE).SessionStore().delete(client_logged_in.session.session_key)

    assert client_logged_in.get("/").status_code == 302


def test_a_signed_in_customer_stays_signed_in(client_logged_in, customer):
    response = client_logged_in.get("/")

    assert response.status_code == 200
    assert response.context["user"] == customer.user


@pytest.mark.parametrize("crafted", CRAFTED)
def test_a_crafted_session_cookie_is_an_anonymous_visit_not_an_error(client, crafted):
    """The Cookie header as a client may send it: a quoted value with \\000 is read as a NUL."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/accounts/login/", headers={"cookie": f"{settings.SESSION_COOKIE_NAME}={crafted}"})

    assert response.status_code == 200
    assert response.context["user"].is_anonymous
    assert not [query for query in queries.captured_queries if any(table in query["sql"] for table in SESSION_TABLES)]


def test_a_well_formed_unknown_session_cookie_is_looked_up_and_signs_no_one_in(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/accounts/login/", headers={"cookie": f"{settings.SESSION_COOKIE_NAME}={'x' * 32}"})

    assert response.context["user"].is_anonymous
    assert [query for query in queries.captured_queries if "django_session" in query["sql"]]
