"""Customer emails: recorded once per event (`portal.outbox.email_queue`), rendered and sent by a
background task after commit.

When the caller's transaction commits, `portal.signals.email_queued` makes `console.receivers` enqueue
`console.tasks.email_send`. The task locks the row, renders the email in the customer's language and
time zone, checks the customer's preference for non-transactional kinds, sends, and marks the row sent.

Each kind has templates under `templates/emails/<kind>/` (`subject.txt`, `body.txt`, `body.html`)
sharing `emails/base.txt` and `emails/base.html` (business name and logo).
"""

import hashlib
import logging
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from accounts.hub import hub_link_url
from accounts.models import Customer
from accounts.preferences import (
    BILLING_NOTICES,
    CARD_EXPIRY_REMINDERS,
    RENEWAL_REMINDERS,
    EmailCategory,
    customer_wants,
    unsubscribe_url,
)
from billing.models import BRAND_NAMES
from billing.services.reminders import renews_yearly
from portal.links import absolute_url
from portal.models import EmailKind, EmailStatus, OutboundEmail
from portal.outbox import email_branding, email_from_address
from portal.retries import backoff
from portal.selectors import site_settings_get
from purchases.models import Receipt
from purchases.money import format_money

logger = logging.getLogger(__name__)

# Non-transactional kinds, and the preference that lets a customer turn them off. Every other kind
# (receipts, payment failed, refunds, welcome and sign-in links) always goes out.
CATEGORY_OF_KIND: dict[str, EmailCategory] = {
    EmailKind.CARD_UPDATED: BILLING_NOTICES,
    EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED: BILLING_NOTICES,
    EmailKind.SUBSCRIPTION_CANCELED: BILLING_NOTICES,
    EmailKind.SUBSCRIPTION_PAUSED: BILLING_NOTICES,
    EmailKind.SUBSCRIPTION_RESUMED: BILLING_NOTICES,
    EmailKind.RETENTION_OFFER_APPLIED: BILLING_NOTICES,
    EmailKind.RENEWAL_REMINDER: RENEWAL_REMINDERS,  # but not for yearly plans: see email_category()
    EmailKind.CARD_EXPIRING: CARD_EXPIRY_REMINDERS,
}

# Paths of the billing app (see the URL map in DESIGN.md); emails may go out before it is installed.
BILLING_PATH = "/billing/"
UPDATE_CARD_PATH = "/billing/cards/new/"
CANCEL_PATH = "/billing/subscriptions/{pk}/cancel/"

# A failed send is tried again after 2, 4, 8 … minutes, at most two hours apart: 40 attempts are about
# three days, so a mail server's outage of a weekend loses nothing; then the email is marked failed.
EMAIL_MAX_ATTEMPTS = 40
EMAIL_RETRY_FIRST = timedelta(minutes=2)
EMAIL_RETRY_MAX_WAIT = timedelta(hours=2)

_BLANK_LINES = re.compile(r"\n\s*\n(\s*\n)+")  # template tags leave runs of blank lines in text bodies


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    headers: dict[str, str]


# --- queue and deliver ---------------------------------------------------------------------------


def email_requeue(*, email: OutboundEmail) -> bool:
    """Send a queued or failed email again (from admin); a sent or skipped one stays as it is."""
    with transaction.atomic():
        updated = OutboundEmail.objects.filter(pk=email.pk, status__in=[EmailStatus.QUEUED, EmailStatus.FAILED]).update(
            status=EmailStatus.QUEUED, attempts=0, next_attempt_at=None
        )
        if updated:
            transaction.on_commit(lambda: email_enqueue(email.pk), robust=True)
    return bool(updated)


def email_enqueue(email_id: int, *, delay: timedelta | None = None) -> None:
    """Hand the queued email to the sending task (now, or after `delay`)."""
    from .tasks import email_send

    task = email_send.using(run_after=timezone.now() + delay) if delay else email_send
    task.enqueue(email_id)


def email_deliver(*, email_id: int) -> str:
    """Send one queued email and mark it sent; return its status.

    The row stays locked while the message goes out, so a second worker given the same email waits,
    then finds it sent and does nothing.
    """
    with transaction.atomic():
        email = (
            OutboundEmail.objects.select_for_update(of=("self",))
            .select_related("customer__user")
            .filter(pk=email_id)
            .first()
        )
        if email is None:
            return "missing"
        if email.status != EmailStatus.QUEUED:
            return email.status
        category = email_category(kind=email.kind, context=email.context)
        if category is not None and not customer_wants(email.customer, category):
            email.status = EmailStatus.SKIPPED
            email.save(update_fields=["status"])
            return email.status
        email.attempts += 1
        try:
            with transaction.atomic():  # a failed render or send must not break the outer transaction
                message = email_message(email=email)
                message.send()
        except Exception as error:  # noqa: BLE001 - any failure is recorded on the row and retried
            _record_failure(email, error)
            return email.status
        email.status = EmailStatus.SENT
        email.sent_at = timezone.now()
        email.to = message.to[0]
        email.subject = message.subject[:255]
        email.last_error = ""
        email.next_attempt_at = None
        email.save(update_fields=["status", "sent_at", "to", "subject", "attempts", "last_error", "next_attempt_at"])
    logger.info("email %s (%s) sent to customer %s", email.key, email.kind, email.customer_id)
    return email.status


def _record_failure(email: OutboundEmail, error: Exception) -> None:
    """Keep the error and the time of the next attempt on the row. The task is deferred to that time when
    the queue can defer; the sweep sends any email whose attempt is overdue (a lost task, or a queue that
    cannot defer)."""
    from .tasks import email_send

    logger.exception("email %s (%s) failed on attempt %s", email.key, email.kind, email.attempts)
    email.last_error = f"{type(error).__name__}: {error}"[:2000]
    if email.attempts < EMAIL_MAX_ATTEMPTS:
        delay = backoff(email.attempts, first=EMAIL_RETRY_FIRST, longest=EMAIL_RETRY_MAX_WAIT)
        email.next_attempt_at = timezone.now() + delay
        if email_send.get_backend().supports_defer:
            transaction.on_commit(lambda: email_enqueue(email.pk, delay=delay), robust=True)
    else:
        email.status = EmailStatus.FAILED
        email.next_attempt_at = None
        logger.error(
            "email %s (%s) gave up after %s attempts since %s (%s); send it again from admin's Emails",
            email.key,
            email.kind,
            email.attempts,
            email.created_at.isoformat(),
            email.last_error,
        )
    email.save(update_fields=["status", "attempts", "last_error", "next_attempt_at"])


def email_category(*, kind: str, context: dict) -> EmailCategory | None:
    """The preference that may turn this email off; None when it always goes out.

    A yearly plan's renewal reminder is the notice automatic-renewal laws ask for, so no preference
    stops it; the reminders of shorter plans are a courtesy the customer may turn off."""
    if kind == EmailKind.RENEWAL_REMINDER and (
        renews_yearly(interval=context.get("interval", ""), interval_count=int(context.get("interval_count") or 1))
        or context.get("charge_interval") == "year"  # a monthly plan becoming a yearly one at this renewal
    ):
        return None
    return CATEGORY_OF_KIND.get(kind)


# --- render --------------------------------------------------------------------------------------


def email_message(*, email: OutboundEmail) -> EmailMultiAlternatives:
    """The queued email as a message ready to send (text with an HTML alternative)."""
    customer = email.customer
    rendered = email_render(customer=customer, kind=email.kind, context=email.context)
    site = site_settings_get()
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=email_from_address(),
        to=[customer.user.email],
        reply_to=[site.business_email] if site.business_email else None,
        headers={**rendered.headers, "Message-ID": email_message_id(email=email)},
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def email_message_id(*, email: OutboundEmail) -> str:
    """One Message-ID per outbox row, the same on every attempt: delivery is at least once (a worker
    killed between the mail server's answer and the sent mark sends again), and a repeat then carries
    the same Message-ID, which mail systems (Gmail, Outlook, list servers) use to show a message once."""
    address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or settings.DEFAULT_FROM_EMAIL
    domain = address.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(email.key.encode()).hexdigest()[:16]
    return f"<portal.{email.pk}.{digest}@{domain}>"


def email_render(*, customer: Customer, kind: str, context: dict | None = None) -> RenderedEmail:
    """Render an email of this kind for the customer: subject, text and HTML bodies, extra headers."""
    data = context or {}
    # The customer's language and time zone; a customer who chose no language gets the site's.
    with translation.override(_language(customer)), timezone.override(_time_zone(customer)):
        ctx = {**email_branding(), "customer": customer, "kind": kind, **_KIND_CONTEXT[kind](customer, data)}
        headers = {"Auto-Submitted": "auto-generated"}
        category = email_category(kind=kind, context=data)
        if category is not None:
            url = unsubscribe_url(customer=customer, category=category)
            ctx.update(category=category, unsubscribe_url=url)
            headers["List-Unsubscribe"] = f"<{url}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        subject = " ".join(render_to_string(f"emails/{kind}/subject.txt", ctx).split())
        text = _BLANK_LINES.sub("\n\n", render_to_string(f"emails/{kind}/body.txt", ctx)).strip() + "\n"
        html = render_to_string(f"emails/{kind}/body.html", ctx)
    return RenderedEmail(subject=subject, text=text, html=html, headers=headers)


def _language(customer: Customer) -> str:
    if customer.language and translation.check_for_language(customer.language):
        return customer.language
    return settings.LANGUAGE_CODE


def _time_zone(customer: Customer) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(customer.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def _datetime(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=UTC)


def _receipt_context(customer: Customer, data: dict) -> dict:
    receipt = Receipt.objects.select_related("purchase__offer").get(customer=customer, number=data["receipt_number"])
    return {
        "receipt": receipt,
        "receipt_url": absolute_url(receipt.get_absolute_url()),
        "hub_url": hub_link_url(customer=customer),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
    }


def _welcome_context(customer: Customer, data: dict) -> dict:
    return {
        "hub_url": hub_link_url(customer=customer, next_path=reverse("portal:home")),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
        "login_code_url": absolute_url(reverse("account_request_login_code")),
        "password_url": absolute_url(reverse("accounts:password")),
    }


def _hub_link_context(customer: Customer, data: dict) -> dict:
    return {"hub_url": hub_link_url(customer=customer), "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS}


def _money_context(data: dict) -> dict:
    return {"offer_name": data["offer_name"], "amount": format_money(int(data["amount"]), data["currency"])}


def _payment_failed_context(customer: Customer, data: dict) -> dict:
    """The hub link signs the customer in on the billing page, where "Pay now" retries the payment."""
    return {
        **_money_context(data),
        "hub_url": hub_link_url(customer=customer, next_path=BILLING_PATH),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
    }


def _card_update_link_context(customer: Customer, data: dict) -> dict:
    return {
        "hub_url": hub_link_url(customer=customer, next_path=UPDATE_CARD_PATH),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
    }


def _refund_issued_context(customer: Customer, data: dict) -> dict:
    number = data.get("receipt_number") or ""
    receipt_url = absolute_url(reverse("purchases:receipt", kwargs={"number": number})) if number else ""
    return {
        **_money_context(data),
        "receipt_number": number,
        "receipt_url": receipt_url,
        "pending": data.get("status") == "pending",
        "paid_outside_stripe": bool(data.get("paid_outside_stripe")),
        "business_email": site_settings_get().business_email,
    }


def _card_updated_context(customer: Customer, data: dict) -> dict:
    brand = str(data["brand"] or "")
    return {
        "brand": BRAND_NAMES.get(brand.lower(), brand.title() or gettext("Card")),
        "last4": data["last4"],
        "expiry": f"{int(data['exp_month']):02d}/{int(data['exp_year']) % 100:02d}",
        "billing_url": absolute_url(BILLING_PATH),
    }


def _subscription_context(customer: Customer, data: dict) -> dict:
    return {
        "offer_name": data["offer_name"],
        "ends_at": _datetime(data.get("ends_at")),
        "resumes_at": _datetime(data.get("resumes_at")),
        "billing_url": absolute_url(BILLING_PATH),
    }


def _plan_changed_context(customer: Customer, data: dict) -> dict:
    return {
        **_money_context(data),
        "previous_offer_name": data["previous_offer_name"],
        "interval": data["interval"],
        "next_renewal": _datetime(data.get("next_renewal")),
        "at_renewal": bool(data.get("at_renewal")),
        "billing_url": absolute_url(BILLING_PATH),
    }


def _plan_change_scheduled_context(customer: Customer, data: dict) -> dict:
    return {
        **_money_context(data),
        "previous_offer_name": data["previous_offer_name"],
        "interval": data["interval"],
        "changes_at": _datetime(data.get("changes_at")),
        "billing_url": absolute_url(BILLING_PATH),
    }


def _retention_offer_context(customer: Customer, data: dict) -> dict:
    return {
        "offer_name": data["offer_name"] or gettext("your subscription"),
        "offer_text": data["offer_text"],
        "billing_url": absolute_url(BILLING_PATH),
    }


def _reminder_context(customer: Customer, data: dict) -> dict:
    """What a renewal or trial reminder shows: the plan, what it will charge and when, and the ways to
    manage or cancel it (automatic-renewal laws ask that cancelling be explained with the reminder)."""
    site = site_settings_get()
    # The plan the charge pays for: a change scheduled for that date (billing.services.reminders) brings
    # its own price and term; without one, the current plan's.
    if "charge_interval" in data:
        interval, count = data["charge_interval"], 1
    else:
        interval, count = data["interval"], int(data["interval_count"] or 1)
    return {
        "amount": "" if data["amount"] is None else format_money(int(data["amount"]), data["currency"]),
        # "Your Clay Studio subscription renews …" reads well where "Your your subscription …" would not.
        "offer_name": data["offer_name"] or site.business_name,
        # A scheduled plan the portal does not sell has no name here.
        "changes_to": (data["changes_to"] or gettext("another plan")) if "changes_to" in data else "",
        "renews_at": _datetime(data.get("renews_at")),
        "trial_ends_at": _datetime(data.get("trial_ends_at")),
        # The term the charge pays for, in the words of a whole sentence (German inflects around it).
        "period": "year" if renews_yearly(interval=interval, interval_count=count) else interval if count == 1 else "",
        "hub_url": hub_link_url(customer=customer, next_path=BILLING_PATH),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
        "cancel_url": absolute_url(CANCEL_PATH.format(pk=int(data["subscription_id"])))
        if site.self_cancel_enabled
        else "",
        "cancel_instructions": "" if site.self_cancel_enabled else site.self_cancel_instructions,
    }


def _card_expiring_context(customer: Customer, data: dict) -> dict:
    exp_month, exp_year = int(data["exp_month"]), int(data["exp_year"])
    return {
        **_card_updated_context(customer, data),
        "expiry_month": date(exp_year, exp_month, 1),
        "hub_url": hub_link_url(customer=customer, next_path=UPDATE_CARD_PATH),
        "hub_link_days": settings.HUB_LINK_MAX_AGE_DAYS,
    }


_KIND_CONTEXT = {
    EmailKind.WELCOME: _welcome_context,
    EmailKind.HUB_LINK: _hub_link_context,
    EmailKind.RECEIPT: _receipt_context,
    EmailKind.PAYMENT_FAILED: _payment_failed_context,
    EmailKind.CARD_UPDATE_LINK: _card_update_link_context,
    EmailKind.REFUND_ISSUED: _refund_issued_context,
    EmailKind.REFUND_FAILED: _refund_issued_context,
    EmailKind.CARD_UPDATED: _card_updated_context,
    EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED: _subscription_context,
    EmailKind.SUBSCRIPTION_CANCELED: _subscription_context,
    EmailKind.SUBSCRIPTION_PAUSED: _subscription_context,
    EmailKind.SUBSCRIPTION_RESUMED: _subscription_context,
    EmailKind.PLAN_CHANGED: _plan_changed_context,
    EmailKind.PLAN_CHANGE_SCHEDULED: _plan_change_scheduled_context,
    EmailKind.RETENTION_OFFER_APPLIED: _retention_offer_context,
    EmailKind.RENEWAL_REMINDER: _reminder_context,
    EmailKind.TRIAL_ENDING: _reminder_context,
    EmailKind.CARD_EXPIRING: _card_expiring_context,
}


def outbox_requeue(*, older_than: timedelta) -> int:
    """Queue again every email still waiting `older_than` after it was queued or its next attempt was
    due: its task was lost (a worker killed mid-send rolls the row back to queued). An email waiting for
    a later attempt is left to it. Sending twice is prevented by the row lock and status."""
    from .tasks import email_send

    overdue = timezone.now() - older_than
    waiting = list(
        OutboundEmail.objects.filter(status=EmailStatus.QUEUED)
        .filter(Q(next_attempt_at__isnull=True, created_at__lt=overdue) | Q(next_attempt_at__lt=overdue))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for email_id in waiting:
        email_send.enqueue(email_id)
    if waiting:
        logger.warning("outbox: %s email(s) waited longer than %s; queued again", len(waiting), older_than)
    return len(waiting)
