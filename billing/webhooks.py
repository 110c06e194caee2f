"""Stripe webhooks: verify and store in the request, apply in a task by re-reading the object.

The request only checks the signature, stores the event under its unique Stripe id (so a
duplicate delivery, or five at once, finds the row and does nothing) and queues
`billing.tasks.webhook_apply` on commit; it answers 200 without calling the processor, so a
burst of events never holds web workers behind Stripe's answers or rate limits.

The task applies the event. Handlers never trust the event's copy of the object: they fetch the
current object through the gateway. Appliers of one processor object take a lock on its id
(PostgreSQL advisory lock, held to the end of the transaction) before that read, so they run one
after another and the last to write has read last: deliveries late or out of order end in the
processor's current state. An event whose object a newer event of the same kind has already been
applied for is marked processed without a read (the newer read came after this event's change).
A handler runs inside one transaction with the event row locked; if it fails, its writes roll
back, the error is kept on the row with the time of its next attempt, and the sweep
(`webhook_events_retry`, with backoff for 3 days: `webhook_retry_at`), "Retry" in admin or a
redelivery by Stripe applies it again.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import Customer
from portal.retries import backoff

from .gateways.base import GatewayEvent, get_gateway, payment_deadline
from .models import WebhookEvent, WebhookStatus
from .services import (
    charge_refunds_sync,
    customer_cards_sync,
    customer_processor_deleted,
    invoice_record_failed,
    invoice_record_paid,
    refund_sync,
    subscription_schedule_sync,
    subscription_sync,
)

logger = logging.getLogger(__name__)

# First key of the two-key advisory locks taken per processor object ("STRW"), so they never meet
# another feature's advisory locks.
OBJECT_LOCK_NAMESPACE = 0x53545257

# Retries of a failed event (webhook_retry_at): Stripe retries a delivery for up to 3 days.
WEBHOOK_RETRY_FIRST = timedelta(minutes=10)
WEBHOOK_RETRY_MAX_WAIT = timedelta(hours=12)
WEBHOOK_RETRY_FOR = timedelta(days=3)


def _object_lock(object_id: str) -> None:
    """Wait for, and hold until the transaction ends, the lock that puts appliers of one processor
    object in a row. Only PostgreSQL has it; SQLite (the embedded default) runs one task worker."""
    if object_id and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s::int4, hashtext(%s))", [OBJECT_LOCK_NAMESPACE, object_id])


def _subscription(event: WebhookEvent) -> None:
    subscription_sync(remote=get_gateway().subscription_retrieve(subscription_id=event.object_id))


def _subscription_schedule(event: WebhookEvent) -> None:
    """A schedule made, changed, released, completed or cancelled: its subscription first (a phase that
    began moved its price), then what the schedule still has to change."""
    gateway = get_gateway()
    schedule = gateway.subscription_schedule_retrieve(schedule_id=event.object_id)
    if schedule.subscription_id:
        _object_lock(schedule.subscription_id)  # the subscription's own events may be applying now
        subscription_sync(remote=gateway.subscription_retrieve(subscription_id=schedule.subscription_id))
    subscription_schedule_sync(remote=schedule)


def _invoice_paid(event: WebhookEvent) -> None:
    invoice = get_gateway().invoice_retrieve(invoice_id=event.object_id)
    if invoice.subscription_id:
        _object_lock(invoice.subscription_id)  # its subscription's own events may be applying now
        subscription_sync(remote=get_gateway().subscription_retrieve(subscription_id=invoice.subscription_id))
    invoice_record_paid(invoice=invoice)


def _invoice_failed(event: WebhookEvent) -> None:
    invoice = get_gateway().invoice_retrieve(invoice_id=event.object_id)
    if invoice.subscription_id:
        _object_lock(invoice.subscription_id)  # it re-reads the subscription too
    invoice_record_failed(invoice=invoice)


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
        _object_lock(customer.stripe_customer_id)  # other card events of this customer re-read the same list
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
    "subscription_schedule.created": _subscription_schedule,
    "subscription_schedule.updated": _subscription_schedule,
    "subscription_schedule.released": _subscription_schedule,
    "subscription_schedule.completed": _subscription_schedule,
    "subscription_schedule.canceled": _subscription_schedule,
    "subscription_schedule.aborted": _subscription_schedule,
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


# Handlers that write only the processor's current state, read by the event's object id, so a newer
# event of the same handler, once applied, has already brought in what an older one would. (A failed
# payment is not among them: each one is audited.)
REREAD_ONLY: frozenset[Callable[[WebhookEvent], None]] = frozenset(
    {_subscription, _subscription_schedule, _invoice_paid, _refund}
)


def webhook_receive(*, payload: bytes, signature: str) -> WebhookEvent:
    """Verify and store one delivery and queue its application (on commit); no processor call.
    A redelivery of a failed event queues it again. Raises SignatureInvalid."""
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
                next_attempt_at=timezone.now() if status == WebhookStatus.RECEIVED else None,
            )
    except IntegrityError:
        row = WebhookEvent.objects.get(stripe_event_id=event.id)
        if row.status != WebhookStatus.FAILED:
            logger.info("webhook %s (%s): duplicate delivery", event.id, event.type)
            return row
    if row.status != WebhookStatus.IGNORED:
        webhook_event_enqueue(event=row)
    return row


def webhook_event_enqueue(*, event: WebhookEvent) -> None:
    """Queue the application of a stored event once the current transaction commits."""
    transaction.on_commit(lambda: _enqueue(event_id=event.pk, stripe_event_id=event.stripe_event_id))


def _enqueue(*, event_id: int, stripe_event_id: str) -> None:
    from .tasks import webhook_apply

    try:
        webhook_apply.enqueue(event_id)
    except Exception:  # the event is stored; the sweep applies events left received, so Stripe still hears 200
        logger.exception("webhook %s: could not be queued; the sweep will apply it", stripe_event_id)


def _newer_applied(event: WebhookEvent) -> WebhookEvent | None:
    """A newer event of the same handler and object, applied already (call with the object locked)."""
    handler = HANDLERS.get(event.type)
    if handler not in REREAD_ONLY or not event.object_id:
        return None
    return (
        WebhookEvent.objects.filter(
            object_id=event.object_id,
            type__in=[kind for kind, other in HANDLERS.items() if other is handler],
            status=WebhookStatus.PROCESSED,
            received_at__gt=event.received_at,
        )
        .order_by("-received_at")
        .first()
    )


def webhook_event_apply(*, event: WebhookEvent) -> WebhookEvent:
    """Apply a stored event in one transaction, in turn with the other events of its object; keep the
    error on the row if it fails. Applying an event already applied does nothing."""
    handler = HANDLERS.get(event.type)
    try:
        with transaction.atomic():
            locked = WebhookEvent.objects.select_for_update().get(pk=event.pk)
            if locked.status in (WebhookStatus.PROCESSED, WebhookStatus.IGNORED):
                return locked  # another delivery or worker applied it meanwhile
            if handler is None:
                locked.status = WebhookStatus.IGNORED
            else:
                _object_lock(locked.object_id)
                newer = _newer_applied(locked)
                if newer is None:
                    handler(locked)
                else:
                    logger.info(
                        "webhook %s (%s): %s was applied after it, nothing to read",
                        locked.stripe_event_id,
                        locked.type,
                        newer.stripe_event_id,
                    )
                locked.status = WebhookStatus.PROCESSED
                locked.error = ""
            locked.attempts += 1
            locked.processed_at = timezone.now()
            locked.next_attempt_at = None
            locked.save(update_fields=["status", "error", "attempts", "processed_at", "next_attempt_at"])
            return locked
    except Exception as error:  # recorded on the row; the sweep or admin applies it again
        logger.exception("webhook %s (%s) failed", event.stripe_event_id, event.type)
        with transaction.atomic():
            failed = WebhookEvent.objects.select_for_update().get(pk=event.pk)
            failed.status = WebhookStatus.FAILED
            failed.error = f"{type(error).__name__}: {error}"[:2000]
            failed.attempts += 1
            failed.next_attempt_at = webhook_retry_at(event=failed, now=timezone.now())
            failed.save(update_fields=["status", "error", "attempts", "next_attempt_at"])
        return failed


def webhook_retry_at(*, event: WebhookEvent, now: datetime) -> datetime | None:
    """When the sweep applies a failed event again: 10 minutes after its first failure, doubling up to 12
    hours between attempts, for 3 days after it was received, as Stripe retries a delivery; then None,
    logged at ERROR (Sentry), and the event waits in admin ("gave up") for its "Retry"."""
    at = now + backoff(event.attempts, first=WEBHOOK_RETRY_FIRST, longest=WEBHOOK_RETRY_MAX_WAIT)
    if at <= event.received_at + WEBHOOK_RETRY_FOR:
        return at
    logger.error(
        "webhook %s (%s): retries gave up after %s attempts since %s (%s); apply it with Retry in admin",
        event.stripe_event_id,
        event.type,
        event.attempts,
        event.received_at.isoformat(),
        event.error,
    )
    return None


def webhook_events_retry(*, older_than: timedelta) -> int:
    """Apply again the events left received for longer than `older_than` (a task lost with its worker or
    never queued) and the failed ones whose next attempt is due (a Stripe outage during the re-read);
    each once here, with the same per-object order and deadline as the task."""
    now = timezone.now()
    stale = WebhookEvent.objects.filter(
        status__in=[WebhookStatus.RECEIVED, WebhookStatus.FAILED],
        received_at__lt=now - older_than,
        next_attempt_at__lte=now,
    ).order_by("received_at", "pk")
    applied = 0
    for event in stale:
        with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
            if webhook_event_apply(event=event).status == WebhookStatus.PROCESSED:
                applied += 1
    return applied
