"""Sign-in throttling on the customer and the admin sign-in pages: a changing X-Forwarded-For (or
X-Real-IP, or Forwarded) does not reset it, the limit answers 429 and never 500; behind the load
balancer each client is counted on its own address, not the balancer's."""

import itertools

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from tests.factories import CustomerFactory, UserFactory

from .conftest import production_settings
from .sweep import record_figures

pytestmark = pytest.mark.django_db

TOO_MANY_FAILED = "Too many failed login attempts. Try again later."
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def spoofed_headers() -> dict:
    """A different client address in every header a proxy might set, on every request."""
    address = next(_addresses)
    return {
        "X-Forwarded-For": address,
        "X-Real-IP": address,
        "Forwarded": f"for={address}",
        "True-Client-IP": address,
        "CF-Connecting-IP": address,
    }


@pytest.fixture
def account(db, password):
    return CustomerFactory().user


@pytest.fixture
def staff_account(db):
    user = UserFactory(email="staff.member@example.com", is_staff=True, is_superuser=True)
    CustomerFactory(user=user)
    return user


SIGN_IN_PAGES = {
    "customer": "/accounts/login/",
    "admin": "/accounts/login/?next=/admin/",  # /admin/login/ sends staff here (test_staff_sign_in)
}


@pytest.mark.parametrize("page", SIGN_IN_PAGES, ids=SIGN_IN_PAGES)
def test_failed_sign_ins_on_one_account_are_throttled_whatever_address_the_headers_claim(
    client, account, staff_account, password, page
):
    user = staff_account if page == "admin" else account
    statuses = []
    for _ in range(5):
        response = client.post(
            SIGN_IN_PAGES[page], {"login": user.email, "password": "wrong-guess-123"}, headers=spoofed_headers()
        )
        statuses.append(response.status_code)

    response = client.post(SIGN_IN_PAGES[page], {"login": user.email, "password": password}, headers=spoofed_headers())

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [TOO_MANY_FAILED]
    assert client.session.get(SESSION_KEY) is None
    assert max(statuses) < 500
    record_figures(f"throttle failed {page}", attempts=6, addresses=6, signed_in=0)


def test_failed_sign_ins_across_accounts_are_throttled_per_address_whatever_the_headers_claim(
    client, account, password
):
    for n in range(10):
        client.post(
            "/accounts/login/", {"login": f"guess{n}@example.com", "password": "x" * 12}, headers=spoofed_headers()
        )

    response = client.post(
        "/accounts/login/", {"login": account.email, "password": password}, headers=spoofed_headers()
    )

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [TOO_MANY_FAILED]
    assert client.session.get(SESSION_KEY) is None


@pytest.mark.parametrize("page", [*SIGN_IN_PAGES.values(), "/admin/login/?next=/admin/"])
def test_the_sign_in_limit_answers_429_never_500_whatever_the_headers_claim(client, db, page):
    statuses = []
    for n in range(35):
        response = client.post(
            page, {"login": f"nobody{n}@example.com", "password": "x" * 12}, headers=spoofed_headers()
        )
        statuses.append(response.status_code)

    assert max(statuses) < 500
    if page.startswith("/admin/login/"):
        # The admin's own form signs no one in: every POST is sent on to the portal's sign-in page.
        assert set(statuses) == {302}
        assert client.session.get(SESSION_KEY) is None
        return
    assert statuses[-1] == 429
    assert statuses.index(429) == 30  # "login": 30 a minute per address
    assert client.get(page).status_code == 200  # reading the page is not throttled
    record_figures("throttle 429", page=page, requests=35, answered_429=statuses.count(429), errors=0)


def test_the_fresh_hub_link_form_answers_429_whatever_the_headers_claim(client, db):
    statuses = [
        client.post("/hub/new-link/", {"email": f"person{n}@example.com"}, headers=spoofed_headers()).status_code
        for n in range(12)
    ]

    assert statuses[:10] == [200] * 10
    assert statuses[10:] == [429, 429]
    record_figures("throttle hub link", requests=12, answered_429=2, errors=0)


# --- behind the load balancer ---------------------------------------------------------------------

BALANCER = "10.0.0.2"
CLIENT_A, CLIENT_B = "203.0.113.5", "203.0.113.77"


@pytest.fixture(scope="module")
def proxy_settings(tmp_path_factory):
    """What portal/settings.py sets for client addresses when DJANGO_BEHIND_PROXY=1."""
    names = ["ALLAUTH_TRUSTED_PROXY_COUNT", "ALLAUTH_TRUSTED_CLIENT_IP_HEADER", "SECURE_PROXY_SSL_HEADER"]
    return production_settings(tmp_path_factory.mktemp("var"), names, DJANGO_BEHIND_PROXY="1")


def through_balancer(client_address: str, claimed: str = "") -> dict:
    """What the balancer passes on: the client's own claim, if any, then the address it saw."""
    return {
        "X-Forwarded-For": f"{claimed}, {client_address}" if claimed else client_address,
        "X-Forwarded-Proto": "https",
        "REMOTE_ADDR": BALANCER,
    }


def post_through_balancer(client, data, client_address, claimed=""):
    headers = through_balancer(client_address, claimed)
    remote = headers.pop("REMOTE_ADDR")
    return client.post("/accounts/login/", data, headers=headers, REMOTE_ADDR=remote, secure=True)


def test_behind_the_balancer_one_client_exhausting_the_limit_does_not_lock_out_the_others(
    settings, proxy_settings, account, password
):
    """Every request reaches us from the balancer's address; the limit must count each client's own.

    Without a trusted proxy count (ALLAUTH_TRUSTED_PROXY_COUNT, set by portal/settings.py with
    DJANGO_BEHIND_PROXY=1), ten failed sign-ins by anyone would refuse every customer for a minute.
    """
    for name, value in proxy_settings.items():
        if value is not None:  # unset stays unset: allauth's default applies
            setattr(settings, name, tuple(value) if isinstance(value, list) else value)
    attacker, customer = Client(), Client()
    for n in range(10):
        post_through_balancer(attacker, {"login": f"guess{n}@example.com", "password": "x" * 12}, CLIENT_A)
    claimed_elsewhere = post_through_balancer(
        attacker, {"login": "guess@example.com", "password": "x" * 12}, CLIENT_A, claimed=CLIENT_B
    )

    response = post_through_balancer(customer, {"login": account.email, "password": password}, CLIENT_B)

    assert claimed_elsewhere.context["form"].non_field_errors() == [TOO_MANY_FAILED]  # a forged prefix is no escape
    assert response.status_code == 302, "a customer on another address was refused: the limit counts the balancer"
    assert customer.session.get(SESSION_KEY) == str(account.pk)
    record_figures("throttle behind proxy", attacker_attempts=11, other_client_refused=0)
