"""The billing services end to end through the real Stripe SDK against localstripe (in the current shape)."""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts.models import Customer, User
from billing import services
from billing.demo import DEMO_TEST_CARD, demo_billing_seed
from billing.gateways.base import CardDeclined, InvalidRequest
from billing.models import Card, Subscription, SubscriptionStatus
from purchases.models import Offer, Purchase, RefundStatus
from tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_localstripe(settings, localstripe_url):
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = "sk_test_localstripe"
    return localstripe_url


@pytest.fixture
def staff_user(db):
    return User.objects.create_user(email="support@example.com", password="x", is_staff=True)


@pytest.fixture
def seeded(on_localstripe, customer) -> Subscription:
    """The demo state: the customer's card, an active monthly subscription and its paid first invoice."""
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1200)
    return demo_billing_seed(customer=customer, offer=offer)


def test_demo_seed_leaves_a_card_an_active_subscription_and_its_paid_invoice(on_localstripe, customer):
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1200)
    subscription = demo_billing_seed(customer=customer, offer=offer)

    assert subscription.status == SubscriptionStatus.ACTIVE and subscription.offer == offer
    assert subscription.amount == 1200 and subscription.interval == "month" and subscription.current_period_end
    card = Card.objects.get(customer=customer)
    assert card.is_default and card.last4 == "4242" and card.stripe_payment_method_id.startswith("pm_")
    assert card.stripe_payment_method_id != DEMO_TEST_CARD  # the alias became a real payment method
    purchase = Purchase.objects.get(stripe_subscription_id=subscription.stripe_subscription_id)
    assert purchase.amount == 1200 and purchase.receipts.count() == 1
    assert purchase.stripe_payment_intent_id.startswith("pi_")  # read from the invoice's payments
    assert purchase.stripe_charge_id.startswith("ch_")  # and the intent's charge
    # Running it again changes nothing.
    assert demo_billing_seed(customer=customer, offer=offer) == subscription
    assert Purchase.objects.filter(customer=customer).count() == 1


def test_the_demo_seed_command_prints_no_warnings(on_localstripe, stripe_gateway, caplog):
    out, err = StringIO(), StringIO()
    with caplog.at_level(logging.WARNING):
        call_command("seed_demo", password="demo-password", stdout=out, stderr=err)

    assert err.getvalue() == ""
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    customer = Customer.objects.get(user__email="customer@example.com")
    subscription = customer.subscriptions.get()
    assert f"subscription {subscription.stripe_subscription_id} (active)" in out.getvalue()
    # The demo customer's UK VAT number, a type localstripe itself refuses, is at the processor.
    tax_ids = stripe_gateway.client.v1.customers.tax_ids.list(customer.stripe_customer_id).data
    assert [(tax_id.type, tax_id.value) for tax_id in tax_ids] == [("gb_vat", "GB980780684")]


def test_cancel_undo_and_a_declined_replacement_through_localstripe(seeded, customer, stripe_gateway):
    subscription, user = seeded, customer.user

    subscription = services.subscription_cancel(subscription=subscription, by=user)
    remote = stripe_gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    assert remote.cancel_at_period_end and subscription.cancel_at_period_end
    assert remote.cancel_at == remote.current_period_end  # Stripe names the end date itself
    assert subscription.ends_at == remote.current_period_end
    subscription = services.subscription_cancel_undo(subscription=subscription, by=user)
    remote = stripe_gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    assert not remote.cancel_at_period_end and remote.cancel_at is None and not subscription.is_set_to_end

    old_default = Card.objects.get(customer=customer)
    declined = stripe_gateway.client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "4000000000000002", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    with pytest.raises(CardDeclined):
        services.card_set_default(customer=customer, payment_method_id=declined.id, by=user)
    assert Card.objects.get(is_default=True) == old_default
    assert stripe_gateway.customer_retrieve(customer_id=customer.stripe_customer_id).default_payment_method_id == (
        old_default.stripe_payment_method_id
    )


def test_a_paid_invoice_read_from_localstripe_names_its_subscription_price_and_payment(seeded, stripe_gateway):
    subscription = seeded
    remote = stripe_gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    invoice = stripe_gateway.invoice_retrieve(invoice_id=remote.latest_invoice_id)

    assert invoice.status == "paid" and invoice.amount_paid == 1200 and invoice.paid_at is not None
    assert invoice.subscription_id == subscription.stripe_subscription_id
    assert invoice.price_ids == [Offer.objects.get(pk=subscription.offer_id).stripe_price_id]
    assert [(line.amount, line.quantity) for line in invoice.lines] == [(1200, 1)]
    # Paid by a PaymentIntent, which the payment names; its charge is the intent's latest.
    assert invoice.payment_intent_id.startswith("pi_") and invoice.charge_id.startswith("ch_")

    refund = stripe_gateway.refund_create(
        charge_id="",
        payment_intent_id=invoice.payment_intent_id,
        amount=200,
        reason="requested_by_customer",
        idempotency_key="portal:test-refund",
    )
    assert (refund.status, refund.amount, refund.payment_intent_id) == ("succeeded", 200, invoice.payment_intent_id)
    assert refund.charge_id == invoice.charge_id and refund.failure_reason == ""
    listed = stripe_gateway.refunds_list(payment_intent_id=invoice.payment_intent_id)
    assert [r.id for r in listed] == [refund.id]
    services.charge_refunds_sync(payment_intent_id=invoice.payment_intent_id)
    assert Purchase.objects.get(stripe_invoice_id=invoice.id).amount_refunded == 200


def test_staff_refund_of_a_subscription_invoices_payment_is_made_at_localstripe_and_recorded(
    seeded, stripe_gateway, staff_user
):
    purchase = Purchase.objects.get(stripe_subscription_id=seeded.stripe_subscription_id)

    refund = services.purchase_refund(purchase=purchase, amount=500, reason="Course moved", by=staff_user)

    assert refund.status == RefundStatus.SUCCEEDED and refund.stripe_refund_id.startswith("re_")
    assert refund.reason == "Course moved" and refund.created_by == staff_user
    remote = stripe_gateway.client.v1.refunds.retrieve(refund.stripe_refund_id)
    assert (remote.amount, remote.reason, remote.payment_intent) == (
        500,
        "requested_by_customer",
        purchase.stripe_payment_intent_id,
    )
    rest = services.purchase_refund(purchase=purchase, amount=700, reason="Course cancelled", by=staff_user)
    assert rest.status == RefundStatus.SUCCEEDED
    purchase.refresh_from_db()
    assert purchase.amount_refunded == 1200
    assert len(stripe_gateway.refunds_list(payment_intent_id=purchase.stripe_payment_intent_id)) == 2


def test_staff_pause_then_resume_through_localstripe(seeded, stripe_gateway, staff_user):
    until = (timezone.now() + timedelta(days=14)).replace(microsecond=0)

    paused = services.subscription_pause(subscription=seeded, by=staff_user, resumes_at=until)

    assert paused.paused and paused.resumes_at == until and paused.status == SubscriptionStatus.ACTIVE
    remote = stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id)
    assert remote.paused and remote.resumes_at == until and remote.status == "active"

    resumed = services.subscription_resume(subscription=paused, by=staff_user)

    assert not resumed.paused and resumed.resumes_at is None and resumed.status == SubscriptionStatus.ACTIVE
    remote = stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id)
    assert not remote.paused and remote.resumes_at is None


def test_a_subscription_paused_by_its_endpoint_is_resumed_by_staff(seeded, stripe_gateway, staff_user):
    stripe_gateway.client.v1.subscriptions.pause(seeded.stripe_subscription_id)
    remote = stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id)
    assert remote.status == "paused" and remote.paused and remote.resumes_at is None
    paused = services.subscription_sync(remote=remote)
    assert paused.status == SubscriptionStatus.PAUSED

    resumed = services.subscription_resume(subscription=paused, by=staff_user)

    assert resumed.status == SubscriptionStatus.ACTIVE and not resumed.paused
    # As at Stripe, only a subscription whose status is paused can be resumed.
    with pytest.raises(InvalidRequest):
        stripe_gateway.subscription_resume(
            subscription_id=seeded.stripe_subscription_id, status_paused=True, idempotency_key="resume-again"
        )


def test_an_end_date_set_on_its_own_shows_and_can_be_undone(seeded, stripe_gateway, customer):
    ends = (timezone.now() + timedelta(days=10)).replace(microsecond=0)
    stripe_gateway.client.v1.subscriptions.update(
        seeded.stripe_subscription_id, params={"cancel_at": int(ends.timestamp())}
    )

    remote = stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id)
    assert remote.cancel_at == ends and not remote.cancel_at_period_end
    subscription = services.subscription_sync(remote=remote)
    assert subscription.is_set_to_end and subscription.ends_at == ends

    kept = services.subscription_cancel_undo(subscription=subscription, by=customer.user)

    assert not kept.is_set_to_end and kept.cancel_at is None
    assert stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id).cancel_at is None


def test_a_new_default_card_becomes_the_subscriptions_own_default_too(seeded, stripe_gateway, customer):
    method = stripe_gateway.client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": "5555555555554444", "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )

    card = stripe_gateway.card_attach_as_default(
        customer_id=customer.stripe_customer_id,
        payment_method_id=method.id,
        subscription_ids=[seeded.stripe_subscription_id],
        idempotency_key="portal:test-default-card",
    )

    assert (card.brand, card.last4) == ("mastercard", "4444")
    remote = stripe_gateway.subscription_retrieve(subscription_id=seeded.stripe_subscription_id)
    assert remote.default_payment_method_id == method.id
    assert stripe_gateway.customer_retrieve(customer_id=customer.stripe_customer_id).default_payment_method_id == (
        method.id
    )
