"""Issue #14's findings, one test each, as a customer, staff or Stripe itself meets them.

The portal runs with its real Stripe gateway on the stand-in (`standin_gateway`), so every
request crosses the real SDK and HTTP, and the stand-in answers and refuses as Stripe does.
"""

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import formats

from billing.gateways.base import TemporarilyUnavailable, get_gateway
from billing.models import Card, Subscription
from billing.services import (
    customer_subscriptions_sync,
    customer_sync_from_processor,
    invoice_record_paid,
    subscription_sync,
)
from purchases.models import Purchase, Refund
from tests.factories import OfferFactory, RecordedPurchaseFactory
from tests.security.htmlforms import post_forms

pytestmark = pytest.mark.django_db

DEADLINE_SECONDS = 2
LIVE = ("active", "trialing", "past_due")


# Setting the scene at the stand-in, as Checkout, Stripe.js or the Dashboard would ------------


def link_stripe_customer(standin, customer) -> str:
    """A customer at Stripe with the portal customer's email, linked as the portal links one."""
    stripe_id = standin.customer_create(email=customer.email, name=customer.full_name)
    customer.stripe_customer_id = stripe_id
    customer.save(update_fields=["stripe_customer_id"])
    return stripe_id


def subscribe(standin, customer, *, seats: int = 0):
    """A paid monthly membership (and `seats` extra seats) at Stripe, on the customer's default card.

    Returns the Stripe customer id, the subscription id and the portal offer sold by the membership price.
    """
    stripe_id = link_stripe_customer(standin, customer)
    standin.card_create(customer=stripe_id, default=True)
    membership = standin.price_create(amount=1500, product_name="Membership")
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1500, stripe_price_id=membership)
    prices = [(membership, 1)]
    if seats:
        prices.append((standin.price_create(amount=250, product_name="Extra seat"), seats))
    return stripe_id, standin.subscription_create(customer=stripe_id, prices=prices), offer


def mirrored(subscription_id: str) -> Subscription:
    return subscription_sync(remote=get_gateway().subscription_retrieve(subscription_id=subscription_id))


def press(client, page_url: str, action_url: str, **changes):
    """Open a page and submit its form that posts to action_url, as the browser sends it."""
    page = client.get(page_url)
    forms = [form for form in post_forms(page_url, page.content.decode()) if form.target == action_url]
    assert forms, f"{page_url} has no form posting to {action_url}"
    return client.post(action_url, {**forms[0].submission(), **changes}, follow=True)


def refused_by_stripe(standin) -> list[dict]:
    return [entry.error for entry in standin.requests() if entry.status and entry.status >= 400]


# F0 ---------------------------------------------------------------------------------------------


def test_f0_a_whole_invoice_paid_event_records_the_purchase_with_its_charge_and_payment_intent(
    deliver, standin, customer
):
    _, subscription_id, offer = subscribe(standin, customer, seats=2)
    invoice_id = standin.get(subscription_id)["latest_invoice"]
    intent_id, charge_id = standin.paid_by(invoice_id)

    response = deliver("invoice.paid", invoice_id)

    assert response.status_code == 200, response.content.decode()
    purchase = Purchase.objects.get(stripe_invoice_id=invoice_id)
    assert (purchase.customer, purchase.offer, purchase.amount) == (customer, offer, 2000)
    assert (purchase.stripe_payment_intent_id, purchase.stripe_charge_id) == (intent_id, charge_id)


# F1 ---------------------------------------------------------------------------------------------


def test_f1_a_customer_can_start_card_entry_and_stripe_takes_every_parameter(
    client_logged_in, standin, standin_gateway
):
    response = client_logged_in.post(reverse("billing:card_setup"))

    assert refused_by_stripe(standin) == []
    (create,) = standin.requests("POST", "/v1/setup_intents")
    assert response.status_code == 200, response.content.decode()
    intent_id = next(obj["id"] for obj in standin.objects.values() if obj["object"] == "setup_intent")
    assert create.status == 200
    assert response.json() == {"client_secret": standin.get(intent_id)["client_secret"]}


# F2 ---------------------------------------------------------------------------------------------


def purchase_from_invoice_paid(standin, customer) -> tuple[Purchase, str, str]:
    """The subscription's first invoice, recorded as the invoice.paid handler records it (re-read from Stripe)."""
    _, subscription_id, _ = subscribe(standin, customer)
    invoice_id = standin.get(subscription_id)["latest_invoice"]
    purchase = invoice_record_paid(invoice=get_gateway().invoice_retrieve(invoice_id=invoice_id))
    return purchase, *standin.paid_by(invoice_id)


def staff_refund(client, purchase: Purchase, amount: str):
    url = reverse("admin:purchases_purchase_refund", args=[purchase.pk])
    return press(client, url, url, amount=amount, reason="Late delivery")


def test_f2_a_staff_refund_reaches_stripe_and_is_recorded_from_its_answer(
    support_client, standin, standin_gateway, customer
):
    purchase, intent_id, charge_id = purchase_from_invoice_paid(standin, customer)
    standin.next_refund_status = "pending"  # a card refund is often on its way when Stripe answers

    staff_refund(support_client, purchase, "5.00")

    creates = [entry for entry in standin.requests("POST", "/v1/refunds") if entry.status == 200]
    assert len(creates) == 1, "the refund never reached Stripe" if not creates else creates
    sent = creates[0].params
    assert sent.get("charge") == charge_id or sent.get("payment_intent") == intent_id
    assert sent["amount"] == "500"
    (remote,) = [obj for obj in standin.objects.values() if obj["object"] == "refund"]
    refund = Refund.objects.get(purchase=purchase)
    assert (refund.stripe_refund_id, refund.amount, refund.status) == (remote["id"], 500, "pending")


def test_f2_a_refund_stripe_later_marks_failed_shows_as_failed_not_as_made(
    support_client, deliver, standin, standin_gateway, customer
):
    purchase, _, _ = purchase_from_invoice_paid(standin, customer)
    standin.next_refund_status = "pending"
    staff_refund(support_client, purchase, "5.00")
    remote = [obj for obj in standin.objects.values() if obj["object"] == "refund"]
    assert remote, "the refund never reached Stripe, so Stripe cannot fail it"
    previous = standin.refund_settle(remote[0]["id"], status="failed", failure_reason="expired_or_canceled_card")

    response = deliver("refund.updated", remote[0]["id"], previous_attributes=previous)

    assert response.status_code == 200, response.content.decode()
    purchase.refresh_from_db()
    assert (purchase.amount_refunded, purchase.status) == (0, "paid")
    assert Refund.objects.get(stripe_refund_id=remote[0]["id"]).status == "failed"


# F3 ---------------------------------------------------------------------------------------------


def test_f3_making_card_a_then_b_then_a_the_default_leaves_a_as_stripes_default(
    client_logged_in, standin, standin_gateway, customer
):
    stripe_id = link_stripe_customer(standin, customer)
    card_a = standin.card_create(customer=stripe_id, card="visa")
    card_b = standin.card_create(customer=stripe_id, card="mastercard")
    customer_sync_from_processor(customer=customer)
    mirror = {card.stripe_payment_method_id: card.pk for card in Card.objects.filter(customer=customer)}
    billing = reverse("billing:index")

    def make_default(method_id):
        return press(client_logged_in, billing, reverse("billing:card_default", args=[mirror[method_id]]))

    make_default(card_a)
    make_default(card_b)
    before_third = len(standin.requests())
    make_default(card_a)

    third = standin.requests()[before_third:]
    assert third, "making A the default again sent nothing to Stripe"
    assert [entry.path for entry in third if entry.replayed] == []
    assert standin.get(stripe_id)["invoice_settings"]["default_payment_method"] == card_a
    assert Card.objects.get(stripe_payment_method_id=card_a).is_default


# F4 ---------------------------------------------------------------------------------------------


def test_f4_staff_resume_of_a_paused_subscription_resumes_it_at_stripe_or_says_why_not(
    support_client, standin, standin_gateway, customer
):
    _, subscription_id, _ = subscribe(standin, customer)
    standin.subscription_pause(subscription_id)
    subscription = mirrored(subscription_id)
    url = reverse("admin:billing_subscription_resume", args=[subscription.pk])

    response = press(support_client, url, url)

    shown = [str(message) for message in response.context["messages"]]
    subscription.refresh_from_db()
    if standin.get(subscription_id)["status"] == "active":
        assert (subscription.status, subscription.paused) == ("active", False)
    else:
        assert (subscription.status, subscription.paused) == ("paused", True)
        assert shown and not any(message.startswith("Done") for message in shown), (
            f"Stripe still has the subscription paused, yet staff were told: {shown}"
        )


def test_f4_a_subscription_set_to_end_on_a_date_shows_ends_on_that_date(
    client_logged_in, standin, standin_gateway, customer
):
    _, subscription_id, _ = subscribe(standin, customer)
    period_end = datetime.fromtimestamp(standin.get(subscription_id)["items"]["data"][0]["current_period_end"], UTC)
    # Noon UTC ten days before the period ends: the same calendar day in any time zone a customer has.
    ends = (period_end - timedelta(days=10)).replace(hour=12, minute=0, second=0)
    standin.subscription_set_cancel_at(subscription_id, int(ends.timestamp()))
    customer_subscriptions_sync(customer=customer)

    page = client_logged_in.get(reverse("billing:index")).content.decode()

    date = formats.date_format(ends.date(), "DATE_FORMAT")
    assert re.search(rf"ends on {re.escape(date)}", page, re.IGNORECASE), f"no “ends on {date}” on the billing page"


# F5 ---------------------------------------------------------------------------------------------


def test_f5_a_hanging_stripe_call_ends_within_the_deadline_with_the_portals_message(
    client_logged_in, standin, standin_gateway, customer, settings
):
    settings.STRIPE_REQUEST_DEADLINE_SECONDS = DEADLINE_SECONDS
    _, subscription_id, _ = subscribe(standin, customer)
    subscription = mirrored(subscription_id)
    url = reverse("billing:subscription_cancel", args=[subscription.pk])
    standin.hang(rf"/v1/subscriptions/{subscription_id}", seconds=60, method="POST", times=10)
    # Bounds the test whatever the portal does: later calls are answered, hanging ones dropped.
    watchdog = threading.Timer(DEADLINE_SECONDS + 30, standin.release)
    watchdog.start()
    try:
        started = time.monotonic()
        response = press(client_logged_in, url, url)
        elapsed = time.monotonic() - started
    finally:
        watchdog.cancel()

    # Far below the 60 s hang and the watchdog, with room for a loaded machine: the deadline cut the call.
    assert elapsed < DEADLINE_SECONDS + 10, f"the page took {elapsed:.1f} s against a {DEADLINE_SECONDS} s deadline"
    assert response.status_code == 200
    assert str(TemporarilyUnavailable.default_user_message) in response.content.decode()
    subscription.refresh_from_db()
    assert (subscription.status, subscription.cancel_at_period_end) == ("active", False)
    assert standin.get(subscription_id)["cancel_at_period_end"] is False


# F6 ---------------------------------------------------------------------------------------------


def test_f6_a_refund_failed_event_marks_the_refund_failed_and_gives_the_amount_back(
    deliver, standin, standin_gateway, customer
):
    _, subscription_id, offer = subscribe(standin, customer)
    invoice_id = standin.get(subscription_id)["latest_invoice"]
    intent_id, charge_id = standin.paid_by(invoice_id)
    purchase = RecordedPurchaseFactory(
        customer=customer,
        offer=offer,
        amount=1500,
        stripe_invoice_id=invoice_id,
        stripe_payment_intent_id=intent_id,
        stripe_charge_id=charge_id,
    )
    standin.next_refund_status = "pending"
    refund_id = standin.refund_create(charge=charge_id, amount=500)
    assert deliver("charge.refunded", charge_id).status_code == 200
    assert Purchase.objects.get(pk=purchase.pk).amount_refunded == 500
    standin.refund_settle(refund_id, status="failed", failure_reason="expired_or_canceled_card")

    response = deliver("refund.failed", refund_id)

    assert response.status_code == 200, response.content.decode()
    purchase.refresh_from_db()
    assert (purchase.amount_refunded, purchase.status) == (0, "paid")
    assert Refund.objects.get(stripe_refund_id=refund_id).status == "failed"


def test_f6_a_customer_deleted_event_clears_the_stripe_link_and_billing_shows_nothing_stale(
    client_logged_in, deliver, standin, standin_gateway, customer
):
    stripe_id, _, _ = subscribe(standin, customer)
    customer_sync_from_processor(customer=customer)
    assert customer.cards.exists() and customer.subscriptions.filter(status__in=LIVE).exists()
    snapshot = standin.customer_delete(stripe_id)

    response = deliver("customer.deleted", snapshot)

    assert response.status_code == 200, response.content.decode()
    customer.refresh_from_db()
    assert customer.stripe_customer_id == ""
    assert not customer.cards.exists()
    assert not customer.subscriptions.filter(status__in=LIVE).exists()
    page = client_logged_in.get(reverse("billing:index")).content.decode()
    assert "4242" not in page
