"""Refunds: the one upsert (`refund_sync`), and the staff actions on a purchase (refund, revoke, its subscription)."""

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from purchases.models import Purchase, Refund, RefundStatus
from purchases.services import refund_check, refund_record, refund_status_set

from ..gateways.base import (
    GatewayRefund,
    get_gateway,
)
from ..models import Subscription
from .common import BillingError, _email

# Stripe's refund statuses in ours: requires_action waits on the customer, so it is on its way too.
REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def _refund_status(remote: GatewayRefund) -> str:
    return REFUND_STATUSES.get(remote.status, RefundStatus.PENDING)


def _purchase_for_payment(*, charge_id: str = "", payment_intent_id: str = "") -> Purchase | None:
    purchases = Purchase.objects.select_related("offer", "customer")
    if payment_intent_id and (found := purchases.filter(stripe_payment_intent_id=payment_intent_id).first()):
        return found
    return purchases.filter(stripe_charge_id=charge_id).first() if charge_id else None


def _refund_email(*, refund: Refund, purchase: Purchase) -> None:
    """Tell the customer what happened to their money, in the words that are true for this refund."""
    receipt = purchase.receipts.order_by("issued_at", "pk").first()
    failed = refund.status in (RefundStatus.FAILED, RefundStatus.CANCELED)
    _email(
        customer=purchase.customer,
        kind="refund_failed" if failed else "refund_issued",
        key=f"{'refund_failed' if failed else 'refund_issued'}:{refund.stripe_refund_id or f'portal-{refund.pk}'}",
        context={
            "offer_name": purchase.offer.name,
            "amount": refund.amount,
            "currency": purchase.currency,
            "receipt_number": receipt.number if receipt else "",
            "status": refund.status,
            "paid_outside_stripe": not (purchase.stripe_charge_id or purchase.stripe_payment_intent_id),
        },
    )


@transaction.atomic
def refund_sync(*, remote: GatewayRefund) -> Refund | None:
    """Upsert one processor refund: record a new one, or follow it from pending to made or failed."""
    status = _refund_status(remote)
    refund = Refund.objects.select_related("purchase").filter(stripe_refund_id=remote.id).first()
    if refund is not None:
        if refund.status == status:
            return refund
        refund = refund_status_set(refund=refund, status=status, failure_reason=remote.failure_reason)
        if status != RefundStatus.PENDING:  # made, or did not go through: news for the customer
            _refund_email(refund=refund, purchase=refund.purchase)
        return refund
    purchase = _purchase_for_payment(charge_id=remote.charge_id, payment_intent_id=remote.payment_intent_id)
    if purchase is None or status not in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        return None  # not a payment of ours, or a refund that never moved money
    refund = refund_record(
        purchase=purchase, amount=remote.amount, reason="Stripe", stripe_refund_id=remote.id, status=status
    )
    _refund_email(refund=refund, purchase=purchase)
    return refund


def charge_refunds_sync(*, charge_id: str = "", payment_intent_id: str = "") -> list[Refund]:
    """Record the processor's refunds of one payment that we have not recorded yet, and follow the others."""
    if _purchase_for_payment(charge_id=charge_id, payment_intent_id=payment_intent_id) is None:
        return []
    remotes = get_gateway().refunds_list(charge_id=charge_id, payment_intent_id=payment_intent_id)
    known = set(
        Refund.objects.filter(stripe_refund_id__in=[r.id for r in remotes]).values_list("stripe_refund_id", "status")
    )
    changed = []
    for remote in remotes:
        if (remote.id, _refund_status(remote)) in known:
            continue
        if refund := refund_sync(remote=remote):
            changed.append(refund)
    return changed


# ---------------------------------------------------------------------------------------------
# Staff actions on a purchase (the console in admin)
# ---------------------------------------------------------------------------------------------


REFUND_NEEDS_REASON = _("Say why you are refunding; the reason is kept with the refund.")
REFUND_REFUSED = _("Stripe did not make this refund (%(reason)s). Nothing was recorded.")


@transaction.atomic
def purchase_refund(*, purchase: Purchase, amount: int, reason: str, by: User, attempt: str = "") -> Refund:
    """Refund part or all of what is left: at the processor first (when it was paid there), then here.

    `attempt` names one refund someone set out to make (the staff page puts a fresh one in each form
    it shows) and keys the processor call: pressing Refund again after a timeout repeats that refund
    at Stripe, never makes a second one, even when the webhook has recorded the first in between.
    Without it, the key names the state the refund acts on (what was refunded so far).
    """
    purchase = Purchase.objects.select_for_update().select_related("customer", "offer").get(pk=purchase.pk)
    if not reason.strip():
        raise BillingError(REFUND_NEEDS_REASON)
    refund_check(purchase=purchase, amount=amount)
    if not (purchase.stripe_charge_id or purchase.stripe_payment_intent_id):
        # Paid outside Stripe (added by hand, imported): the business returns the money itself.
        refund = refund_record(purchase=purchase, amount=amount, reason=reason, by=by)
        _refund_email(refund=refund, purchase=purchase)
        return refund
    act = attempt or f"{purchase.amount_refunded}:{amount}"
    remote = get_gateway().refund_create(
        charge_id=purchase.stripe_charge_id,
        payment_intent_id=purchase.stripe_payment_intent_id,
        amount=amount,
        reason="requested_by_customer",
        idempotency_key=f"portal:refund:{purchase.pk}:{act}",
    )
    if known := purchase.refunds.filter(stripe_refund_id=remote.id).first():
        return known  # made before an answer was lost, and already recorded from its webhook
    status = _refund_status(remote)
    if status not in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        raise BillingError(REFUND_REFUSED, {"reason": remote.failure_reason or remote.status})
    refund = refund_record(
        purchase=purchase, amount=amount, reason=reason, by=by, stripe_refund_id=remote.id, status=status
    )
    _refund_email(refund=refund, purchase=purchase)
    return refund


@transaction.atomic
def purchase_access_revoke(*, purchase: Purchase, by: User, reason: str = "") -> int:
    """Revoke the product access this purchase granted; billing goes on."""
    from purchases.services import access_revoke

    count = 0
    for grant in purchase.grants.filter(revoked_at=None).select_related("product", "customer"):
        access_revoke(grant=grant, by=by, reason=reason or "revoked by staff")
        count += 1
    return count


def purchase_subscription(*, purchase: Purchase) -> Subscription | None:
    if not purchase.stripe_subscription_id:
        return None
    return Subscription.objects.filter(stripe_subscription_id=purchase.stripe_subscription_id).first()
