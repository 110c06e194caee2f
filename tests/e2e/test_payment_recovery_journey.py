"""A customer whose renewal failed pays it from the billing page: declined first, then with another card.

The in-memory gateway stands behind the live server here: localstripe cannot decline a renewal on demand
(it charged a declining card's renewal invoice in our trial), and the wire-level proof of `Invoice.pay`
is tests/billing/test_stripe_requests.py on the stand-in.
"""

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from billing.gateways.fake import FakeGateway
from billing.models import Subscription
from billing.services import card_set_default, invoice_record_failed, stripe_customer_ensure, subscription_sync
from portal.models import OutboundEmail
from purchases.models import Purchase
from tests.factories import OfferFactory

from .conftest import sign_in_with_form

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake_gateway(settings):
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()


@pytest.fixture
def lapsed(e2e_customer, fake_gateway):
    """A member whose renewal of £15.00 was declined on 28 November: past due, its invoice open."""
    stripe_id = stripe_customer_ensure(customer=e2e_customer)
    card_set_default(customer=e2e_customer, payment_method_id="pm_card_visa", by=None)
    offer = OfferFactory(
        name="Membership", kind="subscription", interval="month", price_amount=1500, stripe_price_id="price_member"
    )
    remote = fake_gateway.subscription_create(customer_id=stripe_id, amount=1500, price_id=offer.stripe_price_id)
    subscription = subscription_sync(remote=remote)
    fake_gateway.subscription_update(subscription_id=remote.id, status="past_due")
    invoice = fake_gateway.invoice_create(
        customer_id=stripe_id,
        amount=1500,
        status="open",
        subscription_id=remote.id,
        price_id="price_member",
        attempt_count=1,
        created=datetime(2026, 11, 28, 9, 0, tzinfo=UTC),
    )
    invoice_record_failed(invoice=invoice)  # what invoice.payment_failed applies
    return e2e_customer, subscription, invoice


def test_a_failed_renewal_is_paid_from_the_billing_page_after_a_decline(page, lapsed, fake_gateway):
    customer, subscription, invoice = lapsed
    # The card on file declines again, as it did at the renewal.
    fake_gateway.customers[customer.stripe_customer_id] = replace(
        fake_gateway.customers[customer.stripe_customer_id], default_payment_method_id="pm_card_declined"
    )
    sign_in_with_form(page, customer.user.email)
    page.goto("/billing/")

    panel = page.locator(f"[data-unpaid='{subscription.pk}']")
    expect(panel).to_contain_text("Your payment of £15.00 for Membership on Nov. 28, 2026 failed.")
    expect(panel.get_by_role("link", name="Use another card")).to_have_attribute("href", "/billing/cards/new/")
    panel.get_by_role("button", name="Pay now").click()

    expect(page).to_have_url(re.compile(r"/billing/$"))
    expect(page.locator(".message--error")).to_have_text("Your card was declined.")
    expect(page.locator(f"[data-unpaid='{subscription.pk}']")).to_be_visible()
    assert not Purchase.objects.filter(stripe_invoice_id=invoice.id).exists()

    # The customer replaced the card (the card page's journey is tests/e2e/test_billing_journey.py) and comes back.
    card_set_default(customer=customer, payment_method_id="pm_card_mastercard", by=customer.user)
    page.goto("/billing/")
    page.locator(f"[data-unpaid='{subscription.pk}']").get_by_role("button", name="Pay now").click()

    expect(page.locator(".message--success")).to_have_text("Thank you: your payment of £15.00 went through.")
    expect(page.locator("[data-unpaid]")).to_have_count(0)
    expect(page.locator(f"tr[data-subscription='{subscription.pk}'] .badge")).to_have_text("Active")
    assert Purchase.objects.filter(stripe_invoice_id=invoice.id).count() == 1
    assert Subscription.objects.get(pk=subscription.pk).status == "active"
    assert OutboundEmail.objects.filter(kind="payment_failed", customer=customer).count() == 1
