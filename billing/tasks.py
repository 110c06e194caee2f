"""Background work for billing: pushing contact changes to the payment processor, applying Stripe events."""

import logging

from django.conf import settings
from django.tasks import task

from .gateways.base import PaymentError, payment_deadline

logger = logging.getLogger(__name__)


@task
def customer_push(customer_id: int, idempotency_key: str = "", attempt: int = 1) -> bool:
    """Push the customer's contact change that waits (billing.services.pushes); on a refusal or timeout,
    queue the next attempt later. Any other error raises: the change stays recorded and the sweep queues
    it again. (`idempotency_key` and `attempt` come only from tasks queued before pushes were recorded.)"""
    from .services.pushes import customer_push_adopt, customer_push_failed, customer_push_send

    if idempotency_key:
        customer_push_adopt(customer_id=customer_id)
    try:
        with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
            return customer_push_send(customer_id=customer_id)
    except PaymentError as error:
        next_at = customer_push_failed(customer_id=customer_id, error=error)
        logger.warning(
            "customer %s: push to processor failed (%s); next attempt %s",
            customer_id,
            type(error).__name__,
            next_at.isoformat() if next_at else "none",
        )
        # A queue that cannot defer leaves the next attempt to the sweep, as the outbox does: queued now,
        # it would run again at once and keep Stripe busy with refusals until the push gives up.
        if next_at is not None and customer_push.get_backend().supports_defer:
            customer_push.using(run_after=next_at).enqueue(customer_id)
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
