"""Stripe webhooks: verify, store once, apply by re-reading the object from the processor.

An event is stored under its unique Stripe id before anything else happens, so a duplicate
delivery (or five at once) finds the row and does nothing. Handlers never trust the event's
copy of the object: they fetch the current object through the gateway, so deliveries out of
order end in the processor's current state. A handler runs inside one transaction; if it
fails, its writes roll back, the error is kept on the event row, and a redelivery by Stripe or
"retry" in admin applies it again.
"""

import logging
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Customer

from .gateways.base import GatewayEvent, get_gateway
from .models import WebhookEvent, WebhookStatus
from .services import (
    charge_refunds_sync,
    customer_cards_sync,
    customer_processor_deleted,
    invoice_record_failed,
    invoice_record_paid,
    refund_sync,
    subscription_sync,
)

logger = logging.getLogger(__name__)


def _subscription(event: WebhookEvent) -> None:
    subscription_sync(remote=get_gateway().subscription_retrieve(subscription_id=event.object_id))


def _invoice_paid(event: WebhookEvent) -> None:
    invoice = get_gateway().invoice_retrieve(invoice_id=event.object_id)
    if invoice.subscription_id:
        subscription_sync(remote=get_gateway().subscription_retrieve(subscription_id=invoice.subscription_id))
    invoice_record_paid(invoice=invoice)


def _invoice_failed(event: WebhookEvent) -> None:
    invoice_record_failed(invoice=get_gateway().invoice_retrieve(invoice_id=event.object_id))


def _payment_method(event: WebhookEvent) -> None:
    """Attached, detached or updated: re-read the owner's cards (a detached card names no customer)."""
    data = event.payload.get("data") or {}
    named = {(data.get("object") or {}).get("customer"), (data.get("previous_attributes") or {}).get("customer")}
    named.discard(None)
    owners = Customer.objects.filter(stripe_customer_id__in=named)
    if not named:
        # Detached: Stripe's copy no longer names the customer; find the card's owner in our mirror.
        owners = Customer.objects.filter(cards__stripe_payment_method_id=event.object_id).distinct()
    for customer in owners:
        customer_cards_sync(customer=customer)


def _customer_updated(event: WebhookEvent) -> None:
    for customer in Customer.objects.filter(stripe_customer_id=event.object_id):
        customer_cards_sync(customer=customer)  # the default card may have changed


def _charge_refunded(event: WebhookEvent) -> None:
    charge = (event.payload.get("data") or {}).get("object") or {}
    payment_intent = charge.get("payment_intent")
    payment_intent_id = payment_intent if isinstance(payment_intent, str) else (payment_intent or {}).get("id", "")
    charge_refunds_sync(charge_id=event.object_id, payment_intent_id=payment_intent_id or "")


def _refund(event: WebhookEvent) -> None:
    """Created, updated (pending → succeeded) or failed: follow the refund as Stripe has it now."""
    refund_sync(remote=get_gateway().refund_retrieve(refund_id=event.object_id))


def _customer_deleted(event: WebhookEvent) -> None:
    customer_processor_deleted(stripe_customer_id=event.object_id)


HANDLERS: dict[str, Callable[[WebhookEvent], None]] = {
    "customer.subscription.created": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.deleted": _subscription,
    "customer.subscription.paused": _subscription,
    "customer.subscription.resumed": _subscription,
    "invoice.paid": _invoice_paid,
    "invoice.payment_succeeded": _invoice_paid,  # what localstripe (and older accounts) send
    "invoice.payment_failed": _invoice_failed,
    "payment_method.attached": _payment_method,
    "payment_method.detached": _payment_method,
    "payment_method.updated": _payment_method,
    "payment_method.automatically_updated": _payment_method,
    "customer.updated": _customer_updated,
    "charge.refunded": _charge_refunded,
    "refund.created": _refund,
    "refund.updated": _refund,
    "refund.failed": _refund,
    "customer.deleted": _customer_deleted,
}


def webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent:
    """Verify and store one delivery, then apply it unless it was applied before. Raises SignatureInvalid."""
    event: GatewayEvent = get_gateway().event_construct(
        payload=payload, signature=signature, secret=settings.STRIPE_WEBHOOK_SECRET
    )
    status = WebhookStatus.RECEIVED if event.type in HANDLERS else WebhookStatus.IGNORED
    try:
        with transaction.atomic():
            row = WebhookEvent.objects.create(
                stripe_event_id=event.id,
                type=event.type,
                object_id=event.object_id,
                payload=event.payload,
                status=status,
            )
    except IntegrityError:
        row = WebhookEvent.objects.get(stripe_event_id=event.id)
        if row.status != WebhookStatus.FAILED:
            logger.info("webhook %s (%s): duplicate delivery", event.id, event.type)
            return row
    if row.status == WebhookStatus.IGNORED:
        return row
    return webhook_event_apply(event=row)


def webhook_event_apply(*, event: WebhookEvent) -> WebhookEvent:
    """Apply a stored event in one transaction; keep the error on the row if it fails."""
    handler = HANDLERS.get(event.type)
    try:
        with transaction.atomic():
            locked = WebhookEvent.objects.select_for_update().get(pk=event.pk)
            if locked.status in (WebhookStatus.PROCESSED, WebhookStatus.IGNORED):
                return locked  # another delivery or worker applied it meanwhile
            if handler is None:
                locked.status = WebhookStatus.IGNORED
            else:
                handler(locked)
                locked.status = WebhookStatus.PROCESSED
                locked.error = ""
            locked.attempts += 1
            locked.processed_at = timezone.now()
            locked.save(update_fields=["status", "error", "attempts", "processed_at"])
            return locked
    except Exception as error:  # recorded on the row for a retry; the caller answers 500 so Stripe retries too
        logger.exception("webhook %s (%s) failed", event.stripe_event_id, event.type)
        WebhookEvent.objects.filter(pk=event.pk).update(
            status=WebhookStatus.FAILED,
            error=f"{type(error).__name__}: {error}"[:2000],
            attempts=F("attempts") + 1,
        )
        event.refresh_from_db()
        return event


def webhook_events_retry(*, older_than: timedelta, max_attempts: int = 5) -> int:
    """Apply again the events left received or failed for longer than `older_than` (a worker or node
    that died mid-apply, a Stripe outage during the re-read); each is applied at most once more here."""
    stale = WebhookEvent.objects.filter(
        status__in=[WebhookStatus.RECEIVED, WebhookStatus.FAILED],
        received_at__lt=timezone.now() - older_than,
        attempts__lt=max_attempts,
    ).order_by("received_at", "pk")
    applied = 0
    for event in stale:
        if webhook_event_apply(event=event).status == WebhookStatus.PROCESSED:
            applied += 1
    return applied
