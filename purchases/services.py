"""Writes to purchases: recording sales, numbering receipts, access, refunds and billing resync."""

import logging
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.activity import customer_record_activity
from accounts.contact import BILLING_FIELDS
from accounts.models import Customer
from portal.errors import UserFacingError
from portal.models import ActorKind, EmailKind
from portal.outbox import email_queue
from portal.selectors import site_settings_get
from portal.services import audit_record

from .models import (
    REFUND_COUNTED_STATUSES,
    AccessGrant,
    Offer,
    Product,
    Purchase,
    PurchaseStatus,
    Receipt,
    ReceiptSequence,
    Refund,
    RefundStatus,
)
from .money import format_money

logger = logging.getLogger(__name__)

# The customer's billing fields (accounts.contact) and the receipt columns they are copied to:
# `billing_<field>`, but for the two a receipt names more shortly.
_SHORT_NAMES = {"full_name": "name", "tax_id_value": "tax_id"}
BILLING_SNAPSHOT_FIELDS = {field: f"billing_{_SHORT_NAMES.get(field, field)}" for field in BILLING_FIELDS}

REFUND_TOO_LARGE = _("A refund of %(amount)s is more than the %(remaining)s left on this purchase.")
REFUND_NOT_POSITIVE = _("A refund must be more than zero.")
CORRECTION_NOT_NEEDED = _("This receipt already shows your current billing details.")
GRANT_PURCHASE_OF_ANOTHER_CUSTOMER = _("That purchase belongs to another customer.")
CORRECTION_EXISTS = _("A corrected copy with your current details already exists: %(number)s.")
CORRECTION_NOT_FROZEN = _("Receipts follow your details automatically; no corrected copy is needed.")


class PurchaseError(UserFacingError):
    """A purchases rule was broken; the message may be shown to the customer or staff."""


def billing_snapshot(customer: Customer) -> dict:
    snapshot = {column: str(getattr(customer, field) or "") for field, column in BILLING_SNAPSHOT_FIELDS.items()}
    snapshot["billing_email"] = customer.email or customer.user.email
    return snapshot


def receipt_next_number(*, prefix: str) -> tuple[str, int]:
    """Take the next number for the prefix; the sequence row stays locked until the caller commits."""
    assert transaction.get_connection().in_atomic_block, "call inside the transaction that saves the receipt"
    sequence = ReceiptSequence.objects.select_for_update().filter(prefix=prefix).first()
    if sequence is None:
        try:
            with transaction.atomic():
                ReceiptSequence.objects.create(prefix=prefix)
        except IntegrityError:
            pass  # another transaction created it first; lock theirs
        sequence = ReceiptSequence.objects.select_for_update().get(prefix=prefix)
    sequence.last_number += 1
    sequence.save(update_fields=["last_number"])
    return f"{prefix}-{sequence.last_number:06d}", sequence.last_number


def _tax_included(total: int, rate: Decimal) -> int:
    if not rate:
        return 0
    return int((Decimal(total) * rate / (Decimal(100) + rate)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@transaction.atomic
def receipt_issue(
    *,
    purchase: Purchase,
    tax_rate: Decimal = Decimal(0),
    issued_at: datetime | None = None,
    lines: list[dict] | None = None,
    corrects: Receipt | None = None,
) -> Receipt:
    """Issue a receipt for a purchase with the customer's current billing details."""
    prefix = site_settings_get().receipt_prefix
    number, sequence = receipt_next_number(prefix=prefix)
    if lines is None:
        lines = [
            {
                "description": purchase.offer.name,
                "quantity": 1,
                "unit_amount": purchase.amount,
                "amount": purchase.amount,
            }
        ]
    total = sum(line["amount"] for line in lines)
    tax = _tax_included(total, Decimal(tax_rate))
    return Receipt.objects.create(
        number=number,
        prefix=prefix,
        sequence=sequence,
        purchase=purchase,
        customer=purchase.customer,
        corrects=corrects,
        issued_at=issued_at or timezone.now(),
        currency=purchase.currency,
        lines=lines,
        subtotal=total - tax,
        tax_rate=tax_rate,
        tax_amount=tax,
        total=total,
        **billing_snapshot(purchase.customer),
    )


@transaction.atomic
def access_grant(*, customer: Customer, product: Product, purchase: Purchase | None = None, by=None) -> AccessGrant:
    """Give the customer access to the product (idempotent per purchase).

    A subscription's payment never gives back what staff revoked from that subscription: the revoked grant
    is returned instead (staff grant it again by hand if they change their mind)."""
    if purchase is not None and purchase.customer_id != customer.pk:
        raise PurchaseError(GRANT_PURCHASE_OF_ANOTHER_CUSTOMER)
    if purchase is not None and purchase.stripe_subscription_id:
        revoked = (
            AccessGrant.objects.filter(
                customer=customer,
                product=product,
                purchase__stripe_subscription_id=purchase.stripe_subscription_id,
                revoked_by__is_staff=True,
            )
            .order_by("-revoked_at")
            .first()
        )
        if revoked is not None:
            audit_record(
                action="access.not_regranted",
                customer=customer,
                actor=by,
                changes={"product": product.name, "purchase": purchase.pk, "revoked_by": str(revoked.revoked_by)},
            )
            return revoked
    grant, created = AccessGrant.objects.get_or_create(
        customer=customer, product=product, purchase=purchase, revoked_at=None, defaults={"granted_by": by}
    )
    if created:
        audit_record(
            action="access.granted",
            customer=customer,
            actor=by,
            changes={"product": product.name, "purchase": purchase.pk if purchase else None},
        )
    return grant


@transaction.atomic
def access_revoke(*, grant: AccessGrant, by=None, reason: str = "") -> AccessGrant:
    grant = AccessGrant.objects.select_for_update().get(pk=grant.pk)
    if grant.revoked_at is None:
        grant.revoked_at = timezone.now()
        grant.revoked_by = by
        grant.revoke_reason = reason
        grant.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
        audit_record(
            action="access.revoked",
            customer=grant.customer,
            actor=by,
            changes={"product": grant.product.name, "reason": reason},
        )
    return grant


@transaction.atomic
def purchase_record(
    *,
    customer: Customer,
    offer: Offer,
    amount: int | None = None,
    purchased_at: datetime | None = None,
    tax_rate: Decimal = Decimal(0),
    by=None,
    **stripe_ids,
) -> Purchase:
    """Record a paid purchase: the purchase, access to the offer's products, its receipt, and the receipt
    email (sent once the transaction commits)."""
    purchase = Purchase.objects.create(
        customer=customer,
        offer=offer,
        amount=offer.price_amount if amount is None else amount,
        currency=offer.currency,
        purchased_at=purchased_at or timezone.now(),
        **stripe_ids,
    )
    for product in offer.products.all():
        access_grant(customer=customer, product=product, purchase=purchase, by=by)
    receipt = receipt_issue(purchase=purchase, tax_rate=tax_rate, issued_at=purchase.purchased_at)
    audit_record(
        action="purchase.recorded",
        customer=customer,
        actor=by,
        changes={"offer": offer.name, "amount": purchase.amount, "currency": purchase.currency},
    )
    customer_record_activity(user_id=customer.user_id, at=purchase.purchased_at)
    # Corrected copies (receipt_issue_correction) are not emailed: the customer asked for them on the page.
    email_queue(
        customer=customer,
        kind=EmailKind.RECEIPT,
        key=f"receipt:{receipt.number}",
        context={"receipt_number": receipt.number},
    )
    return purchase


def refund_check(*, purchase: Purchase, amount: int) -> None:
    """Refuse a refund of nothing, or of more than is left on the purchase."""
    if amount <= 0:
        raise PurchaseError(REFUND_NOT_POSITIVE)
    if amount > purchase.amount_remaining:
        raise PurchaseError(
            REFUND_TOO_LARGE,
            {
                "amount": format_money(amount, purchase.currency),
                "remaining": format_money(purchase.amount_remaining, purchase.currency),
            },
        )


def _purchase_refunded_total(purchase: Purchase, delta: int) -> None:
    purchase.amount_refunded += delta
    if purchase.status == PurchaseStatus.CANCELLED:
        pass  # a cancelled purchase stays so; only the refunded total moves
    elif purchase.amount_refunded == 0:
        purchase.status = PurchaseStatus.PAID
    else:
        purchase.status = (
            PurchaseStatus.REFUNDED
            if purchase.amount_refunded == purchase.amount
            else PurchaseStatus.PARTIALLY_REFUNDED
        )
    purchase.save(update_fields=["amount_refunded", "status"])


@transaction.atomic
def refund_record(
    *,
    purchase: Purchase,
    amount: int,
    reason: str = "",
    by=None,
    stripe_refund_id: str = "",
    status: str = RefundStatus.SUCCEEDED,
    failure_reason: str = "",
) -> Refund:
    """Record a refund against a purchase; a pending or made one never more than what is left."""
    purchase = Purchase.objects.select_for_update().get(pk=purchase.pk)
    counted = status in REFUND_COUNTED_STATUSES
    if counted:
        refund_check(purchase=purchase, amount=amount)
    refund = Refund.objects.create(
        purchase=purchase,
        amount=amount,
        currency=purchase.currency,
        reason=reason,
        created_by=by,
        stripe_refund_id=stripe_refund_id,
        status=status,
        failure_reason=failure_reason,
    )
    if counted:
        _purchase_refunded_total(purchase, amount)
    audit_record(
        action="purchase.refunded",
        customer=purchase.customer,
        actor=by,
        changes={"purchase": purchase.pk, "amount": amount, "reason": reason, "status": status},
    )
    return refund


@transaction.atomic
def refund_status_set(*, refund: Refund, status: str, failure_reason: str = "") -> Refund:
    """Follow the processor's word on a refund: a failed or cancelled one gives its amount back."""
    refund = Refund.objects.select_for_update().select_related("purchase__customer").get(pk=refund.pk)
    if refund.status == status:
        return refund
    purchase = Purchase.objects.select_for_update().get(pk=refund.purchase_id)
    was_counted, counted = refund.status in REFUND_COUNTED_STATUSES, status in REFUND_COUNTED_STATUSES
    if counted and not was_counted:
        refund_check(purchase=purchase, amount=refund.amount)
        _purchase_refunded_total(purchase, refund.amount)
    elif was_counted and not counted:
        _purchase_refunded_total(purchase, -refund.amount)
    audit_record(
        action="refund.status_changed",
        customer=refund.purchase.customer,
        actor_kind=ActorKind.STRIPE,
        changes={"refund": refund.stripe_refund_id or refund.pk, "status": [refund.status, status]},
    )
    refund.status, refund.failure_reason = status, failure_reason
    refund.save(update_fields=["status", "failure_reason"])
    return refund


def receipts_resync_billing(*, customer: Customer, by=None) -> int:
    """Rewrite the billing details of all the customer's receipts in one UPDATE (resync mode only)."""
    if site_settings_get().is_frozen:
        return 0
    count = Receipt.objects.filter(customer=customer).update(
        **billing_snapshot(customer), billing_updated_at=timezone.now()
    )
    if count:
        audit_record(action="receipts.resynced", customer=customer, actor=by, changes={"count": count})
    logger.info("customer %s: %s receipts resynced", customer.pk, count)
    return count


@transaction.atomic
def receipt_issue_correction(*, receipt: Receipt, by=None) -> Receipt:
    """Frozen mode: issue a corrected copy with the current details; the original stays as issued."""
    if not site_settings_get().is_frozen:
        raise PurchaseError(CORRECTION_NOT_FROZEN)
    receipt = Receipt.objects.select_for_update().get(pk=receipt.pk)  # one correction at a time per receipt
    current = billing_snapshot(receipt.customer)

    def shows_current(candidate: Receipt) -> bool:
        return all(getattr(candidate, column) == value for column, value in current.items())

    if shows_current(receipt):
        raise PurchaseError(CORRECTION_NOT_NEEDED)
    existing = next((copy for copy in receipt.corrections.all() if shows_current(copy)), None)
    if existing is not None:
        raise PurchaseError(CORRECTION_EXISTS, {"number": existing.number})
    correction = receipt_issue(
        purchase=receipt.purchase, tax_rate=receipt.tax_rate, lines=receipt.lines, corrects=receipt
    )
    audit_record(
        action="receipt.corrected",
        customer=receipt.customer,
        actor=by,
        changes={"original": receipt.number, "correction": correction.number},
    )
    return correction
