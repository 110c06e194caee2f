"""Customer emails, the part every app writes: one row per event in the outbox, and the business's branding.

`email_queue()` is the one way to email a customer about something that happened. It stores an
`OutboundEmail` row under a unique event key (so a repeated webhook or a retried request sends
nothing twice) and, when the caller's transaction commits, sends `portal.signals.email_queued`; the
console (`console.receivers`) enqueues its sending task for it, and `console.emails` renders and sends.
"""

import logging
from email.utils import formataddr, parseaddr

from django.conf import settings
from django.db import IntegrityError, transaction
from django.urls import reverse

from .links import absolute_url
from .models import EmailKind, OutboundEmail
from .selectors import site_settings_get
from .signals import email_queued

logger = logging.getLogger(__name__)

# The context each kind needs from its caller (plain JSON data).
CONTEXT_KEYS: dict[str, frozenset[str]] = {
    EmailKind.WELCOME: frozenset(),
    EmailKind.HUB_LINK: frozenset(),
    EmailKind.RECEIPT: frozenset({"receipt_number"}),
    EmailKind.PAYMENT_FAILED: frozenset({"offer_name", "amount", "currency"}),
    EmailKind.CARD_UPDATE_LINK: frozenset(),
    EmailKind.REFUND_ISSUED: frozenset({"offer_name", "amount", "currency", "receipt_number"}),
    EmailKind.REFUND_FAILED: frozenset({"offer_name", "amount", "currency", "receipt_number"}),
    EmailKind.CARD_UPDATED: frozenset({"brand", "last4", "exp_month", "exp_year"}),
    EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED: frozenset({"offer_name", "ends_at"}),
    EmailKind.SUBSCRIPTION_CANCELED: frozenset({"offer_name"}),
    EmailKind.SUBSCRIPTION_PAUSED: frozenset({"offer_name", "resumes_at"}),
    EmailKind.SUBSCRIPTION_RESUMED: frozenset({"offer_name"}),
    EmailKind.RETENTION_OFFER_APPLIED: frozenset({"offer_name", "offer_text"}),
    EmailKind.PLAN_CHANGED: frozenset(
        {"offer_name", "previous_offer_name", "amount", "currency", "interval", "next_renewal"}
    ),
    EmailKind.RENEWAL_REMINDER: frozenset(
        {"subscription_id", "offer_name", "amount", "currency", "interval", "interval_count", "renews_at"}
    ),
    EmailKind.TRIAL_ENDING: frozenset(
        {"subscription_id", "offer_name", "amount", "currency", "interval", "interval_count", "trial_ends_at"}
    ),
    EmailKind.CARD_EXPIRING: frozenset({"brand", "last4", "exp_month", "exp_year"}),
    EmailKind.PLAN_CHANGE_SCHEDULED: frozenset(
        {"offer_name", "previous_offer_name", "amount", "currency", "interval", "changes_at"}
    ),
}


def email_queue(*, customer, kind: str, key: str, context: dict | None = None) -> bool:
    """Record the email for this event and send it after the current transaction commits; a key seen
    before (the same event again) does nothing. True when it was queued now."""
    context = context or {}
    _email_check(kind, context)
    return _email_create(OutboundEmail(customer=customer, kind=kind, key=key, context=context))


def emails_unqueued(emails: list[OutboundEmail]) -> list[OutboundEmail]:
    """The unsaved emails whose keys were not queued before (one query): what `emails_queue` is for."""
    fresh = {email.key: email for email in emails}
    for key in OutboundEmail.objects.filter(key__in=list(fresh)).values_list("key", flat=True):
        del fresh[key]
    return list(fresh.values())


def emails_queue(*, emails: list[OutboundEmail]) -> int:
    """Queue many unsaved emails at once (scheduled reminders, found new by `emails_unqueued`): one insert
    records them, each is sent after the current transaction commits. Return how many were new.

    A run that raced another one to the same keys (or a key queued before) falls back to one insert per
    email, so that each key is still queued once, by whichever run inserts it first.
    """
    for email in emails:
        _email_check(email.kind, email.context)
    if not emails:
        return 0
    try:
        with transaction.atomic():
            created = OutboundEmail.objects.bulk_create(emails)
    except IntegrityError:
        return sum(_email_create(email) for email in emails)
    for email in created:
        _email_announce(email.pk)
    return len(created)


def _email_check(kind: str, context: dict) -> None:
    if kind not in EmailKind.values:
        raise ValueError(f"Unknown email kind: {kind!r}")
    missing = CONTEXT_KEYS[kind] - context.keys()
    if missing:
        raise ValueError(f"Email {kind!r} needs context keys {sorted(missing)}")


def _email_create(email: OutboundEmail) -> bool:
    try:
        with transaction.atomic():
            email.save(force_insert=True)
    except IntegrityError:
        if not OutboundEmail.objects.filter(key=email.key).exists():
            raise
        logger.info("email %s was queued before; not again", email.key)
        return False
    _email_announce(email.pk)
    return True


def _email_announce(email_id: int) -> None:
    transaction.on_commit(lambda: email_queued.send(sender=OutboundEmail, email_id=email_id), robust=True)


def email_from_address() -> str:
    """DEFAULT_FROM_EMAIL's address under the business's own name, which is what customers recognise."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    return formataddr((site_settings_get().business_name, address))


def email_branding() -> dict:
    """What every email shows of the business: name, logo, address, support address, the portal."""
    site = site_settings_get()
    return {
        "business_name": site.business_name,
        "business_address": site.business_address,
        "support_email": site.business_email,
        "logo_url": absolute_url(site.logo.url) if site.logo else "",
        "site_url": absolute_url("/"),
        "preferences_url": absolute_url(reverse("accounts:profile")),
    }
