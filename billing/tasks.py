"""Background work for billing: pushing contact changes to the payment processor, applying Stripe events."""

import logging
from datetime import timedelta

from django.conf import settings
from django.tasks import task
from django.utils import timezone

from .gateways.base import PaymentError, payment_deadline

logger = logging.getLogger(__name__)

# Waits between attempts: 1, 2, 4 … minutes, at most 6 hours; a push is retried until it lands.
RETRY_BASE_SECONDS = 60
RETRY_MAX_SECONDS = 6 * 60 * 60


def retry_delay(attempt: int) -> timedelta:
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** (attempt - 1), RETRY_MAX_SECONDS))


@task
def customer_push(customer_id: int, idempotency_key: str, attempt: int = 1) -> bool:
    """Push one customer's current contact details to the processor; on failure, queue the next attempt."""
    from .services import stripe_customer_push

    try:
        with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
            return stripe_customer_push(customer_id=customer_id, idempotency_key=idempotency_key)
    except PaymentError as error:
        delay = retry_delay(attempt)
        logger.warning(
            "customer %s: push to processor failed (%s, attempt %s); retrying in %s",
            customer_id,
            type(error).__name__,
            attempt,
            delay,
        )
        next_attempt = customer_push
        if next_attempt.get_backend().supports_defer:
            next_attempt = next_attempt.using(run_after=timezone.now() + delay)
        next_attempt.enqueue(customer_id, idempotency_key, attempt + 1)
        return False


@task
def webhook_apply(event_id: int) -> str:
    """Apply one stored Stripe event (billing.webhooks); returns its status. A failure is kept on the
    event row, not raised: the sweep and admin's "Retry" apply it again, and a re-run never applies twice."""
    from .models import WebhookEvent
    from .webhooks import webhook_event_apply

    event = WebhookEvent.objects.filter(pk=event_id).first()
    if event is None:
        return "missing"  # removed in admin since it was queued
    with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
        return webhook_event_apply(event=event).status


@task
def reminders_send() -> dict[str, int]:
    """Queue the reminders that are due (billing.services.reminders): renewals, trials ending, cards
    expiring. Run daily by `manage.py send_reminders`; a rerun queues nothing twice."""
    from .services.reminders import reminders_queue

    return reminders_queue()
