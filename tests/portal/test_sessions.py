"""portal.sessions reads the session with a plain SELECT: it must find exactly what Django's database store finds."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.db import SessionStore as DjangoStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from portal.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_a_stored_session_reads_the_same_as_with_djangos_store():
    stored = SessionStore()
    stored.update({"_auth_user_id": "7", "note": "ü & <b>"})
    stored.save()

    assert SessionStore(stored.session_key).load() == DjangoStore(stored.session_key).load() == dict(stored.items())


def test_an_expired_session_is_not_read_and_gets_a_new_key_when_saved():
    stored = SessionStore()
    stored["_auth_user_id"] = "7"
    stored.save()
    Session.objects.filter(session_key=stored.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))

    again = SessionStore(stored.session_key)

    assert again.load() == {}
    assert again.session_key is None


def test_an_unknown_key_reads_as_an_empty_session():
    session = SessionStore("x" * 32)

    assert dict(session.items()) == {}
    session["a"] = 1
    session.save()
    assert session.session_key != "x" * 32


def test_a_signed_in_customer_stays_signed_in(client_logged_in, customer):
    response = client_logged_in.get("/")

    assert response.status_code == 200
    assert response.context["user"] == customer.user


def test_a_crafted_session_cookie_is_an_anonymous_visit_not_an_error(client):
    """The Cookie header as a client may send it: a quoted value with \\000 is read as a NUL."""
    for crafted in ['"abcdefgh\\000x"', "abcdefgh-../x", "ab\u00e9cdefghij"]:
        response = client.get("/accounts/login/", headers={"cookie": f"{settings.SESSION_COOKIE_NAME}={crafted}"})

        assert response.status_code == 200, crafted
