"""Contact changes pushed to the processor's customer record, with a durable record of each one until it lands.

A contact change writes a `CustomerPush` row in its own transaction (`customer_push_record`); the push
task sends the customer's details as they are then and deletes the row only if no newer change came
in meanwhile (`customer_push_send`). A push refused or timed out is retried by the task later with
backoff (`customer_push_failed`); a push whose task raised, was lost with its worker or its queue, or
could not queue its next attempt is queued again by the sweep (`customer_pushes_requeue`) once its
next attempt is overdue. After `PUSH_RETRY_FOR` the retries give up with an ERROR log (Sentry) and the
row stays in admin (*Pending Stripe pushes*, filter "gave up"), where "Push now" sends it; the
customer's next change starts over.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Case, F, Value, When
from django.utils import timezone

from accounts.models import Customer
from portal.retries import backoff

from ..gateways.base import PaymentError, get_gateway, payment_deadline
from ..models import CustomerPush
from .common import _digest
from .customers import customer_details

logger = logging.getLogger(__name__)

# Waits between attempts: 1, 2, 4 … minutes, at most 6 hours; given up 3 days after the change
# (Stripe's own retry span for webhooks).
PUSH_RETRY_FIRST = timedelta(minutes=1)
PUSH_RETRY_MAX_WAIT = timedelta(hours=6)
PUSH_RETRY_FOR = timedelta(days=3)


def retry_delay(attempt: int) -> timedelta:
    return backoff(attempt, first=PUSH_RETRY_FIRST, longest=PUSH_RETRY_MAX_WAIT)


def customer_push_record(*, customer: Customer) -> None:
    """Record, in the caller's transaction, that the customer's processor record must be pushed now.

    The customer's own row is locked by the contact save that calls this, so two changes of one customer
    take turns and the second finds the first's row. A push that had given up starts over.
    """
    now = timezone.now()
    changed = CustomerPush.objects.filter(customer=customer).update(
        key=uuid.uuid4().hex,
        since=Case(When(next_attempt_at__isnull=True, then=Value(now)), default=F("since")),
        attempts=0,
        next_attempt_at=now,
        error="",
    )
    if not changed:
        CustomerPush.objects.create(customer=customer, key=uuid.uuid4().hex, since=now, next_attempt_at=now)


def customer_push_adopt(*, customer_id: int) -> None:
    """Record a push for a task queued before pushes were recorded (it carries its own key), unless one waits."""
    customer = Customer.objects.filter(pk=customer_id).exclude(stripe_customer_id="").first()
    if customer is not None and not CustomerPush.objects.filter(customer=customer).exists():
        customer_push_record(customer=customer)


def customer_push_send(*, customer_id: int) -> bool:
    """Send the customer's current details if a change waits; False when nothing waits.

    The row and the details are read in one query, so the row's key is that of the last change the
    details include; the row is deleted only if that is still the last change. Raises PaymentError.
    """
    push = CustomerPush.objects.select_related("customer__user").filter(customer_id=customer_id).first()
    if push is None:
        return False
    customer = push.customer
    if not customer.stripe_customer_id:  # the processor customer was deleted; a new one gets current details
        CustomerPush.objects.filter(pk=push.pk, key=push.key).delete()
        return False
    details = customer_details(customer)
    get_gateway().customer_update(
        customer_id=customer.stripe_customer_id,
        details=details,
        idempotency_key=f"portal:customer-push:{customer.pk}:{push.key}:{_digest(details)}",
    )
    CustomerPush.objects.filter(pk=push.pk, key=push.key).delete()
    return True


def _next_attempt(push: CustomerPush, now: datetime) -> datetime | None:
    """When to try again after `push.attempts` attempts, or None past PUSH_RETRY_FOR (logged at ERROR)."""
    at = now + retry_delay(push.attempts)
    if at <= push.since + PUSH_RETRY_FOR:
        return at
    logger.error(
        "customer %s: push to processor gave up after %s attempts since %s (%s); "
        "send it with 'Push now' under Pending Stripe pushes in admin",
        push.customer_id,
        push.attempts,
        push.since.isoformat(),
        push.error or "its task did not finish",
    )
    return None


def customer_push_failed(*, customer_id: int, error: Exception) -> datetime | None:
    """Count a failed attempt and set the next one; return its time (None: gave up, or nothing waits)."""
    push = CustomerPush.objects.filter(customer_id=customer_id).first()
    if push is None:
        return None
    now = timezone.now()
    push.attempts += 1
    push.error = f"{type(error).__name__}: {error}"[:2000]
    push.next_attempt_at = _next_attempt(push, now)
    push.save(update_fields=["attempts", "error", "next_attempt_at"])
    return push.next_attempt_at


def customer_pushes_requeue(*, older_than: timedelta) -> int:
    """Queue again the pushes whose next attempt is overdue by `older_than`: the task that should have
    made it raised, or was lost with its worker or queue. Each counts as an attempt, so a push whose task
    keeps failing waits longer each time and gives up like any other."""
    from ..tasks import customer_push

    now = timezone.now()
    overdue = list(CustomerPush.objects.filter(next_attempt_at__lt=now - older_than).order_by("pk"))
    requeued = 0
    for push in overdue:
        push.attempts += 1
        push.next_attempt_at = _next_attempt(push, now)
        push.save(update_fields=["attempts", "next_attempt_at"])
        if push.next_attempt_at is not None:
            customer_push.enqueue(push.customer_id)
            requeued += 1
    if requeued:
        logger.warning("pushes: %s contact push(es) overdue by %s; queued again", requeued, older_than)
    return requeued


def customer_push_now(*, customer_id: int) -> bool:
    """Send a waiting push here and now (admin's "Push now"); a refusal is counted like a task's and
    answered False. True when nothing is left to push."""
    try:
        with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
            customer_push_send(customer_id=customer_id)
    except PaymentError as error:
        customer_push_failed(customer_id=customer_id, error=error)
        return False
    return True
