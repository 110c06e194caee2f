"""The billing services end to end through the real Stripe SDK against localstripe."""

import pytest

from billing import services
from billing.demo import demo_billing_seed
from billing.gateways.base import CardDeclined
from billing.models import Card, SubscriptionStatus
from purchases.models import Purchase
from tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def on_localstripe(settings, localstripe_url):
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = "sk_test_localstripe"
    return localstripe_url


def test_demo_seed_leaves_a_card_an_active_subscription_and_its_paid_invoice(on_localstripe, customer):
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1200)
    subscription = demo_billing_seed(customer=customer, offer=offer)

    assert subscription.status == SubscriptionStatus.ACTIVE and subscription.offer == offer
    card = Card.objects.get(customer=customer)
    assert card.is_default and card.last4 == "4242" and card.stripe_payment_method_id.startswith("pm_")
    assert card.stripe_payment_method_id != "pm_card_visa"  # the alias became a real payment method
    purchase = Purchase.objects.get(stripe_subscription_id=subscription.stripe_subscription_id)
    assert purchase.amount == 1200 and purchase.receipts.count() == 1
    # Running it again changes nothing.
    assert demo_billing_seed(customer=customer, offer=offer) == subscription
    assert Purchase.objects.filter(customer=customer).count() == 1


def test_cancel_undo_and_a_declined_replacement_through_localstripe(on_localstripe, customer, stripe_gateway):
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1200)
    subscription = demo_billing_seed(customer=customer, offer=offer)
    user = customer.user

    subscription = services.subscription_cancel(subscription=subscription, by=user)
    remote = stripe_gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    assert remote.cancel_at_period_end and subscription.cancel_at_period_end
    subscription = services.subscription_cancel_undo(subscription=subscription, by=user)
    assert not stripe_gateway.subscription_retrieve(
        subscription_id=subscription.stripe_subscription_id
    ).cancel_at_period_end

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


def test_a_paid_invoice_read_from_localstripe_names_its_subscription_price_and_charge(
    on_localstripe, customer, stripe_gateway
):
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1200)
    subscription = demo_billing_seed(customer=customer, offer=offer)
    remote = stripe_gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    invoice = stripe_gateway.invoice_retrieve(invoice_id=remote.latest_invoice_id)
    assert invoice.status == "paid" and invoice.amount_paid == 1200
    assert invoice.subscription_id == subscription.stripe_subscription_id
    assert invoice.price_id == offer.__class__.objects.get(pk=offer.pk).stripe_price_id
    assert invoice.charge_id.startswith("ch_")

    refund = stripe_gateway.refund_create(
        charge_id=invoice.charge_id,
        amount=200,
        reason="",  # localstripe refuses a `reason`
        idempotency_key="portal:test-refund",
    )
    assert [r.id for r in stripe_gateway.refunds_list(charge_id=invoice.charge_id)] == [refund.id]
    services.charge_refunds_sync(charge_id=invoice.charge_id)
    assert Purchase.objects.get(stripe_invoice_id=invoice.id).amount_refunded == 200
