"""Sessions are Django's database sessions; a session cookie Django could not have made never reaches the database."""

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

pytestmark = pytest.mark.django_db

CRAFTED = ['"abcdefgh\\000x"', "abcdefgh-../x", "ab\u00e9cdefghij"]


def test_sessions_are_djangos_database_sessions():
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.db"


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
    assert not [query for query in queries.captured_queries if "django_session" in query["sql"]]


def test_a_well_formed_unknown_session_cookie_is_looked_up_and_signs_no_one_in(client):
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/accounts/login/", headers={"cookie": f"{settings.SESSION_COOKIE_NAME}={'x' * 32}"})

    assert response.context["user"].is_anonymous
    assert [query for query in queries.captured_queries if "django_session" in query["sql"]]
