"""Billing notices as a preference: on the profile page, and off with the signed one-click link."""

import pytest
from django.core import signing
from django.test import Client

from accounts.models import Customer
from accounts.preferences import (
    BILLING_NOTICES,
    UNSUBSCRIBE_LINK_INVALID,
    unsubscribe_token_make,
    unsubscribe_url,
)
from portal.models import AuditEntry


@pytest.fixture
def link(customer):
    return unsubscribe_url(customer=customer, category=BILLING_NOTICES).removeprefix("http://127.0.0.1:8000")


def wants_billing_notices(customer) -> bool:
    return Customer.objects.get(pk=customer.pk).notify_billing_notices


def test_billing_notices_are_on_by_default_and_listed_on_the_profile_page(client_logged_in, customer):
    assert customer.notify_billing_notices is True

    body = client_logged_in.get("/settings/profile/").content.decode()

    assert 'name="notify_billing_notices"' in body
    assert "Billing notices" in body


def test_the_profile_page_turns_billing_notices_off(client_logged_in, customer):
    response = client_logged_in.post("/settings/profile/", {"time_zone": "UTC", "notify_renewal_reminders": "on"})

    assert response.status_code == 302
    assert wants_billing_notices(customer) is False


def test_opening_the_link_only_asks_to_confirm(client, customer, link):
    response = client.get(link)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Stop emails about billing notices" in body
    assert 'method="post"' in body
    assert wants_billing_notices(customer) is True


def test_the_button_unsubscribes_without_signing_in(customer, link):
    browser = Client(enforce_csrf_checks=True)  # a mail provider's one-click POST has no CSRF token either

    response = browser.post(link)

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert wants_billing_notices(customer) is False
    entry = AuditEntry.objects.get(action="notifications.unsubscribed")
    assert (entry.customer_id, entry.changes) == (customer.pk, {"notify_billing_notices": ["True", "False"]})
    assert browser.post(link).status_code == 200  # again: nothing more to do, same answer
    assert AuditEntry.objects.filter(action="notifications.unsubscribed").count() == 1


@pytest.mark.parametrize(
    "token",
    [
        lambda customer: unsubscribe_token_make(customer=customer, category=BILLING_NOTICES)[:-2] + "xx",
        lambda customer: "garbage",
        lambda customer: signing.Signer(salt="other").sign_object({"c": customer.pk, "k": "billing_notices"}),
    ],
    ids=["tampered", "garbage", "other-salt"],
)
def test_a_broken_link_changes_nothing(client, customer, token):
    response = client.post(f"/email/unsubscribe/{token(customer)}/")

    assert response.status_code == 400
    assert str(UNSUBSCRIBE_LINK_INVALID) in response.content.decode()
    assert wants_billing_notices(customer) is True


def test_a_link_names_one_customer_only(client, customer, other_customer, link):
    client.post(link)

    assert wants_billing_notices(customer) is False
    assert wants_billing_notices(other_customer) is True
