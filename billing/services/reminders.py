"""Reminders before a card is charged: a subscription about to renew, a trial about to end, the card that
pays a subscription about to expire. `reminders_queue()` runs daily (the `send_reminders` task) and queues
what is due through the outbox.

Each reminder is keyed by what it is about and when (`renewal_reminder:<subscription>:<period end>`,
`card_expiring:<payment method>:<expiry month>`), so a rerun, an overlapping worker or a retried task
queues nothing twice; a run that was missed catches up the next day, as long as the date is still ahead.

- Renewal: active subscriptions that will renew (not paused, not set to end, not a payment plan, whose
  instalments are not renewals). Yearly plans always get one `SiteSettings.renewal_reminder_days`
  before (automatic-renewal laws ask for it); shorter plans only when the creator turned them on, and
  the customer may turn them off (`notify_renewal_reminders`).
- Trial ending: trialing subscriptions that will convert, `TRIAL_REMINDER_DAYS` before the trial ends
  (Stripe's own `customer.subscription.trial_will_end` comes as early). While trialing, Stripe's current
  period is the trial, so its end is the trial's end. Always sent: card networks ask merchants to remind
  before a trial turns into a charge.
- Card expiring: a card that expires at the end of this month or the next and pays a subscription that
  is still charging (its own default card, or the customer's default when it has none); the customer
  may turn them off (`notify_card_expiry_reminders`).

Nothing is sent while the payment processor is detached (`SiteSettings.processor_attached`): the
business bills directly then, and the billing pages the reminders link to are hidden.
"""

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from portal.models import EmailKind, OutboundEmail, SiteSettings
from portal.outbox import emails_queue, emails_unqueued
from portal.selectors import site_settings_get
from purchases.models import OfferKind

from ..gateways.base import PaymentError, get_gateway
from ..models import LIVE_STATUSES, Card, Subscription, SubscriptionStatus

logger = logging.getLogger(__name__)

TRIAL_REMINDER_DAYS = 3
REMINDER_KINDS = (EmailKind.RENEWAL_REMINDER, EmailKind.TRIAL_ENDING, EmailKind.CARD_EXPIRING)
# Rows read and emails inserted per transaction: the queries of a run grow with the batches, never
# with the customers in one.
REMINDER_BATCH_SIZE = 500
# Seconds a run may spend asking Stripe for renewal previews; the reminders left then keep the mirror's
# figure. A slow Stripe (each call may take its retries) must not hold the run past its task's time limit
# (RQ's 300 s), which would queue nothing of the batch in hand and nothing after it.
PREVIEW_BUDGET_SECONDS = 120


def renews_yearly(*, interval: str, interval_count: int) -> bool:
    """A plan whose term is a year or longer: its renewal reminder is the one the law asks for."""
    return interval == "year" or (interval == "month" and interval_count >= 12)


_YEARLY = Q(interval="year") | Q(interval="month", interval_count__gte=12)


def reminders_queue(*, now: datetime | None = None, batch_size: int = REMINDER_BATCH_SIZE) -> dict[str, int]:
    """Queue every reminder that is due and was not queued before; return how many of each kind now."""
    now = now or timezone.now()
    site = site_settings_get()
    if not site.processor_attached:
        # The business bills directly for now: the pages the reminders link to are hidden.
        return {str(kind): 0 for kind in REMINDER_KINDS}
    previews = _PreviewBudget(time.monotonic() + PREVIEW_BUDGET_SECONDS)
    counts = {
        EmailKind.RENEWAL_REMINDER: _queue_all(_renewals_due(site=site, now=now), _renewal_email, batch_size, previews),
        EmailKind.TRIAL_ENDING: _queue_all(_trials_ending(now=now), _trial_email, batch_size, previews),
        EmailKind.CARD_EXPIRING: _queue_all(_cards_expiring(now=now), _card_email, batch_size),
    }
    if previews.skipped:
        logger.warning(
            "reminders: %s reminder(s) state the plan's price: Stripe's previews took the run's %s s",
            previews.skipped,
            PREVIEW_BUDGET_SECONDS,
        )
    if any(counts.values()):
        logger.info("reminders queued: %s", ", ".join(f"{count} {kind}" for kind, count in counts.items()))
    return {str(kind): count for kind, count in counts.items()}


@dataclass
class _PreviewBudget:
    deadline: float  # time.monotonic()
    skipped: int = 0


def _queue_all(rows: QuerySet, make_email, batch_size: int, previews: _PreviewBudget | None = None) -> int:
    queued = 0
    for batch in _batches(rows, batch_size):
        made = [(row, make_email(row)) for row in batch]
        fresh = {email.key for email in emails_unqueued([email for _, email in made])}
        made = [(row, email) for row, email in made if email.key in fresh]
        if previews is not None:
            _charges_preview(made, previews)  # Stripe's calls, outside the transaction
        with transaction.atomic():  # each batch's emails go to the sending task when it commits
            queued += emails_queue(emails=[email for _, email in made])
    return queued


def _charges_preview(made: list[tuple[Subscription, OutboundEmail]], budget: _PreviewBudget) -> None:
    """Put in each new reminder the amount Stripe will charge, from its preview of the renewal's invoice:
    the mirror knows the plan's price, not a retention offer's discount, tax or the customer's credit.
    When Stripe cannot answer, the reminder keeps the mirror's figure (the plan's price, or the scheduled
    plan's) and a warning is logged: a notice the law asks for goes out on time rather than not at all."""
    gateway = get_gateway()
    for subscription, email in made:
        if time.monotonic() > budget.deadline:
            budget.skipped += 1
            continue
        try:
            invoice = gateway.subscription_renewal_preview(
                subscription_id=subscription.stripe_subscription_id, schedule_id=subscription.stripe_schedule_id
            )
        except PaymentError as error:
            logger.warning(
                "reminders: Stripe did not preview the renewal of %s (%s); the reminder states the plan's price",
                subscription.stripe_subscription_id,
                error,
            )
            continue
        email.context |= {"amount": invoice.amount_due, "currency": invoice.currency}


def _batches(rows: QuerySet, size: int) -> Iterator[list]:
    """The rows in pages by primary key (keyset pagination: each page costs the same one query)."""
    last = 0
    while True:
        page = list(rows.filter(pk__gt=last).order_by("pk")[:size])
        if page:
            yield page
        if len(page) < size:
            return
        last = page[-1].pk


def _will_renew() -> Q:
    """Not paused, not set to end before the period does."""
    return Q(paused=False, cancel_at_period_end=False) & (
        Q(cancel_at__isnull=True) | Q(cancel_at__gt=F("current_period_end"))
    )


# A change scheduled no later than this after the period's end takes effect at that renewal (the
# schedule's phase starts the same second; the slack keeps a rounding from deciding it).
AT_THE_RENEWAL = timedelta(minutes=1)
# A plan scheduled to become a yearly one at this renewal: that renewal charges for a year.
_BECOMING_YEARLY = (
    Q(scheduled_offer__interval="year")
    & ~Q(scheduled_price_id="")
    & (Q(scheduled_change_at__isnull=True) | Q(scheduled_change_at__lte=F("current_period_end") + AT_THE_RENEWAL))
)


def _renewals_due(*, site: SiteSettings, now: datetime) -> QuerySet:
    windows = (_YEARLY | _BECOMING_YEARLY) & Q(current_period_end__lte=now + timedelta(days=site.renewal_reminder_days))
    if site.monthly_renewal_reminders_enabled:
        shorter = ~_YEARLY & Q(current_period_end__lte=now + timedelta(days=site.monthly_renewal_reminder_days))
        windows |= shorter
    return (
        Subscription.objects.filter(
            _will_renew(), windows, status=SubscriptionStatus.ACTIVE, current_period_end__gt=now
        )
        .exclude(interval="")
        .exclude(offer__kind=OfferKind.PAYMENT_PLAN)
        .select_related("offer", "scheduled_offer")
    )


def _trials_ending(*, now: datetime) -> QuerySet:
    return (
        Subscription.objects.filter(
            _will_renew(),
            status=SubscriptionStatus.TRIALING,
            current_period_end__gt=now,
            current_period_end__lte=now + timedelta(days=TRIAL_REMINDER_DAYS),
        )
        .exclude(offer__kind=OfferKind.PAYMENT_PLAN)
        .select_related("offer", "scheduled_offer")
    )


def _cards_expiring(*, now: datetime) -> QuerySet:
    today = timezone.localdate(now)
    this_month = date(today.year, today.month, 1)
    next_month = _month_after(this_month)
    # A subscription that is still charging pays with its own default card, or the customer's default
    # when it has none.
    charging = Subscription.objects.filter(
        Q(cancel_at__isnull=True) | Q(cancel_at__gte=now),
        customer=OuterRef("customer"),
        status__in=LIVE_STATUSES,
        paused=False,
        cancel_at_period_end=False,
    )
    own = charging.filter(default_payment_method_id=OuterRef("stripe_payment_method_id"))
    through_default = charging.filter(default_payment_method_id="")
    return Card.objects.filter(
        Q(exp_year=this_month.year, exp_month=this_month.month)
        | Q(exp_year=next_month.year, exp_month=next_month.month)
    ).filter(Exists(own) | (Q(is_default=True) & Exists(through_default)))


def _month_after(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


def _offer_name(subscription: Subscription) -> str:
    return subscription.offer.name if subscription.offer else ""  # the email says "your subscription"


def _subscription_email(kind: EmailKind, date_field: str, subscription: Subscription) -> OutboundEmail:
    """A renewal or trial reminder, keyed by its subscription and the period end it is about."""
    ends = subscription.current_period_end
    return OutboundEmail(
        customer_id=subscription.customer_id,
        kind=kind,
        key=f"{kind}:{subscription.stripe_subscription_id}:{ends.date().isoformat()}",
        context={**_plan_context(subscription), date_field: ends.isoformat()},
    )


_renewal_email = partial(_subscription_email, EmailKind.RENEWAL_REMINDER, "renews_at")
_trial_email = partial(_subscription_email, EmailKind.TRIAL_ENDING, "trial_ends_at")


def _plan_context(subscription: Subscription) -> dict:
    context = {
        "subscription_id": subscription.pk,
        "offer_name": _offer_name(subscription),
        "amount": subscription.amount,
        "currency": subscription.currency,
        "interval": subscription.interval,
        "interval_count": subscription.interval_count,
    }
    if _changes_at_the_period_end(subscription):
        # The charge the reminder announces is the scheduled plan's: saying the current amount would be
        # untrue (and the notice the law asks for must state what will be charged). `interval` stays the
        # current term's, which decides whether the reminder is the one the law asks for.
        scheduled = subscription.scheduled_offer
        context |= {
            "changes_to": scheduled.name if scheduled else "",
            "amount": scheduled.price_amount if scheduled else None,  # a price the portal does not sell
            "currency": scheduled.currency if scheduled else subscription.currency,
            "charge_interval": scheduled.interval if scheduled else "",
        }
    return context


def _changes_at_the_period_end(subscription: Subscription) -> bool:
    """A plan change scheduled for this renewal (or the trial's end), not for a later one."""
    if not subscription.has_scheduled_change:
        return False
    at = subscription.scheduled_change_at
    return at is None or at <= subscription.current_period_end + AT_THE_RENEWAL


def _card_email(card: Card) -> OutboundEmail:
    return OutboundEmail(
        customer_id=card.customer_id,
        kind=EmailKind.CARD_EXPIRING,
        key=f"card_expiring:{card.stripe_payment_method_id}:{card.exp_year:04d}-{card.exp_month:02d}",
        context={"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year},
    )
