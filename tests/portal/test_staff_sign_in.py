"""Staff sign in through allauth like customers: the same rate limits and two-factor step; the admin
requires two-factor of every staff member unless PORTAL_STAFF_REQUIRE_2FA=0."""

import io

import pytest
from django.contrib.auth import SESSION_KEY
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from console.adminsite import STAFF_TWO_FACTOR_REQUIRED
from tests.accounts.test_two_factor_and_sessions import activate_totp, current_code
from tests.factories import STAFF_TOTP_SECRET, CustomerFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


@pytest.fixture
def staff(db):
    """A staff member who has not set up two-factor authentication yet."""
    user = UserFactory(email="agent@example.com", is_staff=True, is_superuser=True, totp=False)
    CustomerFactory(user=user)
    return user


@pytest.fixture
def staff_with_totp(db):
    user = UserFactory(email="agent@example.com", is_staff=True, is_superuser=True)
    CustomerFactory(user=user)
    return user


def test_the_admin_sends_visitors_to_the_portals_sign_in(client):
    first = client.get("/admin/")
    second = client.get(first["Location"])

    assert first["Location"] == "/admin/login/?next=/admin/"
    assert second.status_code == 302
    assert second["Location"] == "/accounts/login/?next=/admin/"


def test_the_admins_own_password_form_signs_no_one_in(client, staff, password):
    response = client.post("/admin/login/?next=/admin/", {"username": staff.email, "password": password})

    assert response["Location"].startswith("/accounts/login/")
    assert client.session.get(SESSION_KEY) is None


def test_staff_sign_in_through_allauth_with_their_code_and_land_in_the_admin(client, staff_with_totp, password):
    response = client.post("/accounts/login/?next=/admin/", {"login": staff_with_totp.email, "password": password})
    assert response["Location"] == "/accounts/2fa/authenticate/"

    done = client.post("/accounts/2fa/authenticate/", {"code": current_code(STAFF_TOTP_SECRET)})

    assert done["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_signed_in_customer_is_refused_the_admin(client_logged_in):
    assert client_logged_in.get("/admin/login/?next=/admin/").status_code == 403


def test_a_signed_in_staff_member_is_sent_on_from_the_admin_login(client, staff):
    client.force_login(staff, backend="accounts.backends.PortalAuthenticationBackend")

    assert client.get("/admin/login/?next=/admin/accounts/customer/")["Location"] == "/admin/accounts/customer/"
    assert client.get("/admin/login/?next=https://evil.example/")["Location"] == "/admin/"


def test_staff_sign_in_is_rate_limited_like_customers(client, staff, password):
    for _ in range(5):
        client.post("/accounts/login/", {"login": staff.email, "password": "wrong-guess-123"})

    response = client.post("/accounts/login/?next=/admin/", {"login": staff.email, "password": password})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Too many failed login attempts. Try again later."]
    assert client.get("/admin/").status_code == 302


def test_staff_with_totp_need_the_code_to_reach_the_admin(client, staff, password, sign_in):
    sign_in(client, staff.email, password)
    secret = activate_totp(client, password)
    browser = Client()

    response = browser.post("/accounts/login/?next=/admin/", {"login": staff.email, "password": password})

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert browser.get("/admin/").status_code == 302
    done = browser.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert done["Location"] == "/admin/"
    assert browser.get("/admin/").status_code == 200


def test_staff_without_two_factor_are_sent_to_set_it_up(client, staff):
    client.force_login(staff, backend="accounts.backends.PortalAuthenticationBackend")

    response = client.get("/admin/accounts/customer/")

    assert response["Location"] == "/accounts/2fa/totp/activate/"
    assert [str(m) for m in response.wsgi_request._messages] == [str(STAFF_TWO_FACTOR_REQUIRED)]


def test_staff_get_in_once_they_set_up_two_factor(client, staff, password, sign_in):
    sign_in(client, staff.email, password)
    assert client.get("/admin/accounts/customer/")["Location"] == "/accounts/2fa/totp/activate/"

    activate_totp(client, password)

    assert client.get("/admin/accounts/customer/").status_code == 200


def test_with_two_factor_not_required_staff_without_it_get_in(client, staff, settings):
    settings.PORTAL_STAFF_REQUIRE_2FA = False
    client.force_login(staff, backend="accounts.backends.PortalAuthenticationBackend")

    assert client.get("/admin/accounts/customer/").status_code == 200


def test_requiring_two_factor_of_staff_does_not_touch_customers(client_logged_in):
    assert client_logged_in.get("/").status_code == 200


def test_the_admins_change_password_link_opens_the_portals_password_page(client, staff_with_totp):
    client.force_login(staff_with_totp, backend="accounts.backends.PortalAuthenticationBackend")

    assert client.get("/admin/password_change/")["Location"] == "/settings/password/"


def test_a_creator_made_with_createsuperuser_signs_in_and_sets_up_two_factor_first(client, password):
    from django.core.management import call_command

    call_command("createsuperuser", "--noinput", email="Owner@Example.com", stdout=io.StringIO())
    owner = User.objects.get(email="owner@example.com")
    owner.set_password(password)
    owner.save()

    response = client.post("/accounts/login/?next=/admin/", {"login": "owner@example.com", "password": password})

    assert response["Location"] == "/admin/"
    assert client.get("/admin/")["Location"] == "/accounts/2fa/totp/activate/"
    activate_totp(client, password)
    assert client.get("/admin/").status_code == 200
