"""Invoices: a paid invoice becomes a purchase with its receipt and grants; a failed one is told to the customer."""

from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer
from portal.models import ActorKind
from portal.services import audit_record
from purchases.models import Offer, OfferKind, Purchase
from purchases.services import purchase_record

from ..gateways.base import (
    GatewayInvoice,
    get_gateway,
)
from ..models import LIVE_STATUSES, Subscription
from .common import BillingError, _email
from .customers import customer_for_stripe_id
from .subscriptions import _offer_for_price, subscription_sync

NO_OFFER_FOR_PRICE = "no offer has the Stripe price %(price)s; set it on the offer in admin, then retry this event"


# ---------------------------------------------------------------------------------------------
# Invoices and refunds
# ---------------------------------------------------------------------------------------------


def _tax_rate(invoice: GatewayInvoice) -> Decimal:
    net = invoice.amount_paid - invoice.tax
    if not invoice.tax or net <= 0:
        return Decimal(0)
    return (Decimal(invoice.tax) * 100 / net).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@transaction.atomic
def invoice_record_paid(*, invoice: GatewayInvoice) -> Purchase | None:
    """A paid invoice becomes one purchase, its receipt and its access grants, exactly once."""
    if invoice.status != "paid":
        return None
    Subscription.objects.filter(unpaid_invoice_id=invoice.id).update(
        unpaid_invoice_id="", unpaid_amount=0, unpaid_invoice_date=None
    )
    if invoice.amount_paid <= 0:
        return None
    existing = Purchase.objects.filter(stripe_invoice_id=invoice.id).first()
    if existing:
        return existing
    # The offer is that of the first line whose price is an offer's (an invoice may also carry
    # prorations, tax or one-off items).
    offer = next(filter(None, map(_offer_for_price, invoice.price_ids)), None)
    if offer is None:
        raise BillingError(NO_OFFER_FOR_PRICE % {"price": ", ".join(invoice.price_ids) or "(none)"})
    customer = customer_for_stripe_id(stripe_customer_id=invoice.customer_id)
    try:
        with transaction.atomic():
            purchase = purchase_record(
                customer=customer,
                offer=offer,
                amount=invoice.amount_paid,
                purchased_at=invoice.paid_at,
                tax_rate=_tax_rate(invoice),
                stripe_invoice_id=invoice.id,
                stripe_charge_id=invoice.charge_id,  # from the invoice's expanded payments
                stripe_payment_intent_id=invoice.payment_intent_id,
                stripe_subscription_id=invoice.subscription_id,
                card_brand=invoice.card_brand,
                card_last4=invoice.card_last4,
            )
    except IntegrityError:
        # Another delivery of the same invoice won the race; its purchase is the one.
        return Purchase.objects.get(stripe_invoice_id=invoice.id)
    if invoice.subscription_id:
        # Counted only here, where the purchase row was just created: a replayed invoice returned above.
        Subscription.objects.filter(stripe_subscription_id=invoice.subscription_id).update(
            payments_recorded=F("payments_recorded") + 1
        )
    Customer.objects.filter(pk=customer.pk).update(last_activity_at=timezone.now())
    if offer.kind == OfferKind.PAYMENT_PLAN and invoice.subscription_id:
        _payment_plan_finish_if_paid(offer=offer, subscription_id=invoice.subscription_id)
    return purchase


def _payment_plan_finish_if_paid(*, offer: Offer, subscription_id: str) -> None:
    """After the last instalment, a payment plan's subscription ends instead of charging again."""
    paid = Purchase.objects.filter(stripe_subscription_id=subscription_id).count()
    if offer.installments and paid >= offer.installments:
        subscription = Subscription.objects.filter(stripe_subscription_id=subscription_id).first()
        if subscription and not subscription.cancel_at_period_end and subscription.status in LIVE_STATUSES:
            remote = get_gateway().subscription_set_cancel_at_period_end(
                subscription_id=subscription_id,
                cancel=True,
                idempotency_key=f"portal:payment-plan-complete:{subscription_id}",
            )
            subscription_sync(remote=remote)


@transaction.atomic
def invoice_record_failed(*, invoice: GatewayInvoice) -> None:
    """A failed payment: refresh the subscription, record it, and tell the customer how to fix it (once)."""
    customer = customer_for_stripe_id(stripe_customer_id=invoice.customer_id)
    offer_name = ""
    if invoice.subscription_id:
        subscription = subscription_sync(
            remote=get_gateway().subscription_retrieve(subscription_id=invoice.subscription_id)
        )
        offer_name = subscription.offer.name if subscription.offer else ""
        if invoice.status == "open":  # still to pay (a late delivery for an invoice paid since finds it paid)
            subscription.unpaid_invoice_id = invoice.id
            subscription.unpaid_amount = invoice.amount_due
            subscription.unpaid_invoice_date = invoice.created or timezone.now()
            subscription.save(update_fields=["unpaid_invoice_id", "unpaid_amount", "unpaid_invoice_date"])
    audit_record(
        action="payment.failed",
        customer=customer,
        actor_kind=ActorKind.STRIPE,
        changes={"invoice": invoice.id, "amount": invoice.amount_due, "currency": invoice.currency},
    )
    _email(
        customer=customer,
        kind="payment_failed",
        # One email per failed attempt: a replayed event re-reads the same attempt count and sends nothing.
        key=f"payment_failed:{invoice.id}:{invoice.attempt_count}",
        context={"offer_name": offer_name, "amount": invoice.amount_due, "currency": invoice.currency},
    )
