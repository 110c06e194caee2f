"""The first proof of an account's address (accounts.services.address_first_proven): whoever proves it
owns the account, so a password chosen in another browser goes; the browser that chose the password and
proves the address keeps it. tests/security/test_account_takeover.py has the attacks."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import User
from accounts.services import ADDRESS_PROVEN_SET_PASSWORD
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

EMAIL = "newcomer@example.com"
PASSWORD = "Newcomer-chose-this-7"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


def confirm_link(email=EMAIL) -> str:
    [message] = [m for m in mail.outbox if email in m.to and "/accounts/confirm-email/" in m.body]
    return re.search(r"https?://[^/\s]+(/accounts/confirm-email/\S+)", message.body).group(1)


def password_signs_in(email=EMAIL, password=PASSWORD) -> bool:
    browser = Client()
    browser.post("/accounts/login/", {"login": email, "password": password})
    return browser.session.get(SESSION_KEY) is not None


def sign_up(browser):
    browser.post("/accounts/signup/", {"email": EMAIL, "password1": PASSWORD, "password2": PASSWORD})


def test_signing_up_and_confirming_in_the_same_browser_keeps_the_password(client):
    sign_up(client)

    response = client.post(confirm_link(), follow=True)

    assert client.session.get(SESSION_KEY) is not None
    assert str(ADDRESS_PROVEN_SET_PASSWORD) not in [str(m) for m in response.context["messages"]]
    assert password_signs_in()
    entry = AuditEntry.objects.get(action="account.address_proven")
    assert entry.changes == {"password_removed": False, "sessions_ended": 0}


def test_confirming_later_in_the_browser_that_signed_up_keeps_the_password(client, settings):
    """allauth forgets the pending sign-in after ACCOUNT_LOGIN_TIMEOUT; the browser still chose the password."""
    sign_up(client)
    settings.ACCOUNT_LOGIN_TIMEOUT = 0

    client.post(confirm_link())

    assert EmailAddress.objects.get(email=EMAIL).verified
    assert password_signs_in()


def test_confirming_in_another_browser_removes_the_password_and_says_so(client):
    sign_up(client)

    response = Client().post(confirm_link(), follow=True)

    assert str(ADDRESS_PROVEN_SET_PASSWORD) in [str(m) for m in response.context["messages"]]
    assert not User.objects.get(email=EMAIL).has_usable_password()
    assert not password_signs_in()
    assert AuditEntry.objects.get(action="account.address_proven").changes["password_removed"] is True


def test_a_password_reset_then_a_sign_in_then_the_confirmation_in_that_browser_keeps_the_new_password(client):
    """The owner of an address someone else signed up with: resets the password (the reset link proves nothing
    to allauth), signs in, is asked to verify the address, and confirms it in the same browser."""
    Client().post("/accounts/signup/", {"email": EMAIL, "password1": "Someone-else-1", "password2": "Someone-else-1"})
    client.post("/accounts/password/reset/", {"email": EMAIL})
    reset = re.search(r"http://\S+(/accounts/password/reset/key/\S+)", mail.outbox[-1].body).group(1)
    form_page = client.get(reset)
    client.post(form_page["Location"], {"password1": PASSWORD, "password2": PASSWORD})
    # The verification email of that sign-up is in the owner's mailbox (allauth sends one per 3 minutes).
    assert client.post("/accounts/login/", {"login": EMAIL, "password": PASSWORD})["Location"] == (
        "/accounts/confirm-email/"
    )

    client.post(confirm_link())

    assert client.session.get(SESSION_KEY) is not None
    assert password_signs_in()
    assert not password_signs_in(password="Someone-else-1")


def test_a_second_address_proven_on_a_verified_account_changes_nothing_else(client_logged_in, customer, password):
    response = client_logged_in.post("/accounts/email/", {"action_add": "", "email": "second@example.com"})
    client_logged_in.post(response["Location"], {"password": password})

    Client().post(confirm_link("second@example.com"))

    assert User.objects.get(pk=customer.user.pk).check_password(password)
    assert not AuditEntry.objects.filter(action="account.address_proven").exists()


def test_a_hub_link_first_used_by_a_customer_staff_added_proves_the_address_without_any_message(client, creator):
    from accounts.hub import hub_link_url
    from accounts.services import customer_create

    customer = customer_create(email="added@example.com", by=creator)

    opened = client.get(hub_link_url(customer=customer).removeprefix(settings.PORTAL_SITE_URL))
    response = client.post(opened["Location"], follow=True)

    assert EmailAddress.objects.get(user=customer.user).verified
    assert str(ADDRESS_PROVEN_SET_PASSWORD) not in [str(m) for m in response.context["messages"]]
    assert AuditEntry.objects.get(action="account.address_proven", customer=customer).changes == {
        "password_removed": False,
        "sessions_ended": 0,
    }


def test_a_customer_who_already_proved_the_address_keeps_password_and_sessions_on_a_hub_link(customer, password):
    from accounts.hub import hub_link_url

    laptop = Client()
    laptop.post("/accounts/login/", {"login": customer.user.email, "password": password})
    phone = Client()
    opened = phone.get(hub_link_url(customer=customer).removeprefix(settings.PORTAL_SITE_URL))
    phone.post(opened["Location"])

    assert laptop.get("/settings/contact/").status_code == 200
    assert User.objects.get(pk=customer.user.pk).check_password(password)


def test_a_staff_account_keeps_its_password_when_its_address_is_first_proven(db):
    """Staff are made by createsuperuser or the admin, never on the sign-up page."""
    from accounts.services import address_first_proven
    from tests.factories import DEFAULT_PASSWORD, UserFactory

    staff = UserFactory(is_staff=True)
    EmailAddress.objects.filter(user=staff).update(verified=False)

    assert address_first_proven(request=None, user=staff) is False
    assert User.objects.get(pk=staff.pk).check_password(DEFAULT_PASSWORD)
