"""Demo billing state for `seed_demo`: a card and an active subscription kept in localstripe (or Stripe test mode)."""

from accounts.models import Customer
from purchases.models import Offer

from .gateways.base import get_gateway
from .models import Subscription, SubscriptionStatus
from .services import card_set_default, invoice_record_paid, stripe_customer_ensure, subscription_sync

DEMO_TEST_CARD = "pm_card_visa"  # Stripe's test-mode alias for a Visa ending 4242; localstripe knows it too


def demo_billing_seed(*, customer: Customer, offer: Offer) -> Subscription | None:
    """Give the demo customer a card and a live subscription to `offer`, once. None if the gateway can't."""
    gateway = get_gateway()
    if not hasattr(gateway, "demo_subscription_create"):
        return None
    existing = customer.subscriptions.filter(status=SubscriptionStatus.ACTIVE).first()
    if existing and customer.cards.exists():
        return existing
    plan_id = gateway.demo_plan_ensure(
        plan_id=f"portal-demo-{offer.pk}",
        product_name=offer.name,
        amount=offer.price_amount,
        currency=offer.currency,
        interval=offer.interval or "month",
    )
    if offer.stripe_price_id != plan_id:
        Offer.objects.filter(pk=offer.pk).update(stripe_price_id=plan_id)
    stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id=DEMO_TEST_CARD, by=None)
    remote = gateway.demo_subscription_create(
        customer_id=customer.stripe_customer_id,
        plan_id=plan_id,
        idempotency_key=f"portal:demo-subscription:{customer.pk}",
    )
    subscription = subscription_sync(remote=remote)
    if remote.latest_invoice_id:
        # The first invoice is paid at once; record it here too, in case no webhook endpoint is listening yet.
        invoice_record_paid(invoice=gateway.invoice_retrieve(invoice_id=remote.latest_invoice_id))
    return subscription
