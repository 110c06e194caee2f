"""What a customer may change about their own subscription, when the creator allows it: pause it, or
change its plan to another offer of the same switch group.

Each service checks the creator's setting and the subscription's state, then reuses the staff
service of `billing.services` that talks to the processor and updates the mirror through
`subscription_sync`, which audits the transition and emails the customer once per transition.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.core import signing
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import customer_record_activity
from portal.selectors import site_settings_get
from portal.services import audit_record
from purchases.models import Offer, OfferKind

from . import services
from .gateways.base import get_gateway
from .models import Subscription, SubscriptionStatus
from .services import BillingError
from .services.common import _email, _key

SELF_PAUSE_OFF = _("Subscriptions cannot be paused online. Please contact us.")
PAUSE_CYCLES_INVALID = _("Choose a pause of one, two or three billing periods.")
SUBSCRIPTION_ENDING_NOT_PAUSABLE = _("This subscription is set to end, so it cannot be paused. Keep it first.")
SUBSCRIPTION_NOT_SELF_PAUSABLE = _("Only an active subscription can be paused.")
SUBSCRIPTION_ALREADY_PAUSED = _("This subscription is already paused.")
SUBSCRIPTION_CHANGE_SCHEDULED_NOT_PAUSABLE = _(
    "A change of plan is scheduled for this subscription, so it cannot be paused. Cancel the change first."
)
SUBSCRIPTION_PAUSED_BY_STAFF = _(
    "Our team paused this subscription, so it cannot be resumed from here. Please contact %(contact)s."
)

PAUSE_CYCLES = (1, 2, 3)

# A pause ends this long before the first renewal that is charged again, so that renewal's invoice is
# created with collection on (Stripe voids the invoices created while `pause_collection` holds).
RESUME_MARGIN = timedelta(minutes=1)

_INTERVALS = {
    "day": lambda n: relativedelta(days=n),
    "week": lambda n: relativedelta(weeks=n),
    "month": lambda n: relativedelta(months=n),
    "year": lambda n: relativedelta(years=n),
}


def pause_resumes_at(*, subscription: Subscription, cycles: int) -> datetime | None:
    """When a pause of `cycles` renewals ends: just before the first renewal that is charged again.

    The renewals skipped are the next `cycles` ones, starting at the current period's end; the paid
    period in progress is not touched. None when the subscription has no period to count from.
    """
    step = _INTERVALS.get(subscription.interval)
    if step is None or subscription.current_period_end is None:
        return None
    charged_again = subscription.current_period_end + step(cycles * max(subscription.interval_count, 1))
    return charged_again - RESUME_MARGIN


def subscription_can_self_pause(*, subscription: Subscription) -> bool:
    """Whether the customer is offered a pause of this subscription (the creator's setting aside)."""
    return (
        subscription.status == SubscriptionStatus.ACTIVE
        and not subscription.paused
        and not subscription.is_set_to_end
        and not subscription.has_scheduled_change
        and pause_resumes_at(subscription=subscription, cycles=1) is not None
    )


@transaction.atomic
def subscription_pause_by_customer(
    *, subscription: Subscription, by: User, cycles: int, attempt: str = ""
) -> Subscription:
    """The customer pauses collection for one to three billing periods; they may resume it any time."""
    if not site_settings_get().self_pause_enabled:
        raise BillingError(SELF_PAUSE_OFF)
    if cycles not in PAUSE_CYCLES:
        raise BillingError(PAUSE_CYCLES_INVALID)
    subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
    if subscription.paused:
        raise BillingError(SUBSCRIPTION_ALREADY_PAUSED)
    if subscription.is_set_to_end:
        raise BillingError(SUBSCRIPTION_ENDING_NOT_PAUSABLE)
    if subscription.has_scheduled_change:
        raise BillingError(SUBSCRIPTION_CHANGE_SCHEDULED_NOT_PAUSABLE)
    if not subscription_can_self_pause(subscription=subscription):
        raise BillingError(SUBSCRIPTION_NOT_SELF_PAUSABLE)
    paused = services.subscription_pause(
        subscription=subscription,
        by=by,
        resumes_at=pause_resumes_at(subscription=subscription, cycles=cycles),
        attempt=attempt,
    )
    paused.paused_by_customer = paused.paused
    paused.save(update_fields=["paused_by_customer"])
    customer_record_activity(user_id=by.pk)
    return paused


@transaction.atomic
def subscription_resume_by_customer(*, subscription: Subscription, by: User, attempt: str = "") -> Subscription:
    """The customer resumes a pause of their own, whether or not the creator still offers pausing."""
    subscription = Subscription.objects.select_for_update(of=("self",)).get(pk=subscription.pk)
    if subscription.paused and not subscription.paused_by_customer:
        raise BillingError(SUBSCRIPTION_PAUSED_BY_STAFF, {"contact": site_settings_get().business_email or _("us")})
    resumed = services.subscription_resume(subscription=subscription, by=by, attempt=attempt)
    customer_record_activity(user_id=by.pk)
    return resumed


# ---------------------------------------------------------------------------------------------
# A change of plan: to another offer of the same switch group, previewed, then confirmed
# ---------------------------------------------------------------------------------------------

PLAN_CHANGES_OFF = _("Plans cannot be changed online. Please contact us.")
PLAN_NOT_SWITCHABLE = _("This subscription cannot be changed to that plan.")
PLAN_PREVIEW_EXPIRED = _("The price shown has expired. Please look at the new price again, then confirm.")
PLAN_ALREADY_CHANGED = _("This subscription is already on that plan.")

# How long a previewed price may be confirmed: the proration moment it was computed for travels in the
# form, signed, so the customer pays what they were shown and cannot choose another moment.
PLAN_PREVIEW_MAX_AGE = timedelta(minutes=15)
_PLAN_PREVIEW_SALT = "billing.plans.plan_change"


@dataclass(frozen=True)
class PlanChangePreview:
    """What a change to `offer` costs now, as Stripe's invoice preview prorates it, and when it renews."""

    offer: Offer
    amount_due: int
    currency: str
    next_renewal: datetime | None
    token: str  # the signed proration moment the confirmation must carry


def switchable_offers() -> list[Offer]:
    """Every subscription offer on sale that belongs to a switch group and has a Stripe price."""
    return list(
        Offer.objects.filter(is_active=True, kind=OfferKind.SUBSCRIPTION)
        .exclude(switch_group="")
        .exclude(stripe_price_id="")
        .order_by("price_amount", "pk")
    )


def subscription_plan_switches(*, subscription: Subscription, offers: list[Offer] | None = None) -> list[Offer]:
    """The offers this subscription may change to: same group and currency, another price (setting aside)."""
    current = subscription.offer
    if (
        current is None
        or not current.switch_group
        or not subscription.is_active
        or subscription.is_set_to_end
        or not subscription.stripe_price_id
    ):
        return []
    candidates = switchable_offers() if offers is None else offers
    return [
        offer
        for offer in candidates
        if offer.switch_group == current.switch_group
        and offer.currency == subscription.currency
        and offer.pk != current.pk
        and offer.stripe_price_id != subscription.stripe_price_id
    ]


def _switch_target(*, subscription: Subscription, offer: Offer) -> Offer:
    if not site_settings_get().plan_changes_enabled:
        raise BillingError(PLAN_CHANGES_OFF)
    if subscription.offer_id == offer.pk or subscription.stripe_price_id == offer.stripe_price_id:
        raise BillingError(PLAN_ALREADY_CHANGED)
    if offer not in subscription_plan_switches(subscription=subscription):
        raise BillingError(PLAN_NOT_SWITCHABLE)
    return offer


def _next_renewal(*, subscription: Subscription, offer: Offer, moment: datetime) -> datetime | None:
    """Another interval restarts the billing cycle at the change (Stripe's rule); the same one keeps it."""
    if offer.interval == subscription.interval:
        return subscription.current_period_end
    step = _INTERVALS.get(offer.interval)
    return moment + step(1) if step else None


def subscription_plan_change_preview(*, subscription: Subscription, offer: Offer) -> PlanChangePreview:
    """Ask Stripe what a change to `offer` now would charge, changing nothing; sign the moment it used."""
    _switch_target(subscription=subscription, offer=offer)
    moment = timezone.now().replace(microsecond=0)
    gateway = get_gateway()
    remote = gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    invoice = gateway.subscription_price_change_preview(
        subscription_id=remote.id, item_id=remote.item_id, price_id=offer.stripe_price_id, proration_date=moment
    )
    token = signing.dumps(
        {"subscription": subscription.pk, "offer": offer.pk, "at": int(moment.timestamp())}, salt=_PLAN_PREVIEW_SALT
    )
    return PlanChangePreview(
        offer=offer,
        amount_due=invoice.amount_due,
        currency=invoice.currency or subscription.currency,
        next_renewal=_next_renewal(subscription=subscription, offer=offer, moment=moment),
        token=token,
    )


def _preview_moment(*, token: str, subscription: Subscription, offer: Offer) -> datetime:
    try:
        data = signing.loads(token, salt=_PLAN_PREVIEW_SALT, max_age=PLAN_PREVIEW_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        raise BillingError(PLAN_PREVIEW_EXPIRED) from None
    if data.get("subscription") != subscription.pk or data.get("offer") != offer.pk:
        raise BillingError(PLAN_PREVIEW_EXPIRED)
    return datetime.fromtimestamp(int(data["at"]), UTC)


@transaction.atomic
def subscription_plan_change(
    *, subscription: Subscription, offer: Offer, token: str, by: User, attempt: str = ""
) -> Subscription:
    """Move the subscription to `offer` now, prorated as of the moment its preview was shown.

    Stripe charges the difference at once; a declined card refuses the whole change (the plan stays).
    Audited, and confirmed by one email.
    """
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("offer").get(pk=subscription.pk)
    moment = _preview_moment(token=token, subscription=subscription, offer=offer)
    _switch_target(subscription=subscription, offer=offer)
    previous = {
        "offer": subscription.offer.name if subscription.offer else "",
        "price": subscription.stripe_price_id,
        "amount": subscription.amount,
        "interval": subscription.interval,
    }
    # A change now replaces one scheduled for later; the schedule would otherwise undo it at the renewal.
    services.subscription_schedule_let_go(subscription=subscription, by=by, attempt=attempt)
    gateway = get_gateway()
    remote = gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    changed = gateway.subscription_price_change(
        subscription_id=remote.id,
        item_id=remote.item_id,
        price_id=offer.stripe_price_id,
        proration_date=moment,
        idempotency_key=_key("plan-change", remote.id, offer.stripe_price_id, attempt=attempt),
    )
    synced = services.subscription_sync(remote=changed, by=by)
    if synced.offer_id != offer.pk:  # the price maps to the offer (Offer.stripe_price_id); keep the choice
        synced.offer = offer
        synced.save(update_fields=["offer"])
    after = {"offer": offer.name, "price": synced.stripe_price_id, "amount": synced.amount, "interval": synced.interval}
    entry = audit_record(
        action="subscription.plan_changed",
        customer=synced.customer,
        actor=by,
        changes={
            "subscription": synced.stripe_subscription_id,
            "proration_date": moment.isoformat(),
            **{key: [previous[key], after[key]] for key in previous if previous[key] != after[key]},
        },
    )
    _email(
        customer=synced.customer,
        kind="plan_changed",
        key=f"plan_changed:{synced.stripe_subscription_id}:{entry.pk}",
        context={
            "offer_name": offer.name,
            "previous_offer_name": previous["offer"],
            "amount": synced.amount,
            "currency": synced.currency,
            "interval": synced.interval,
            "next_renewal": synced.current_period_end.isoformat() if synced.current_period_end else None,
        },
    )
    customer_record_activity(user_id=by.pk)
    return synced


# ---------------------------------------------------------------------------------------------
# A downgrade at the end of the period: a subscription schedule makes the change at the renewal
# ---------------------------------------------------------------------------------------------

PLAN_NOT_DOWNGRADE = _("Only a change to a cheaper plan can wait until the end of the period.")
PLAN_NO_PERIOD_END = _("This subscription has no current period to wait for. Change the plan now instead.")
PLAN_NO_CHANGE_SCHEDULED = _("No change of plan is scheduled for this subscription.")

# Periods in a year, to compare prices billed at different intervals ("cheaper" is cheaper per year).
_PER_YEAR = {"day": 365, "week": 52, "month": 12, "year": 1}


def _yearly_cost(*, amount: int, interval: str, interval_count: int = 1) -> float | None:
    periods = _PER_YEAR.get(interval)
    return amount * periods / max(interval_count, 1) if periods else None


def offer_is_downgrade(*, subscription: Subscription, offer: Offer) -> bool:
    """Whether `offer` costs less over a year than the subscription's current price: a downgrade.

    A downgrade may wait for the end of the paid period; a change to a dearer plan is made at once.
    """
    now = _yearly_cost(
        amount=subscription.amount, interval=subscription.interval, interval_count=subscription.interval_count
    )
    then = _yearly_cost(amount=offer.price_amount, interval=offer.interval)
    return now is not None and then is not None and then < now


@transaction.atomic
def subscription_plan_schedule(
    *, subscription: Subscription, offer: Offer, token: str, by: User, attempt: str = ""
) -> Subscription:
    """Move the subscription to a cheaper `offer` at the end of the current period: nothing is charged now.

    A schedule made from the subscription keeps the current price until the period ends, then bills the
    new one. A change scheduled before is replaced. Audited, and confirmed by one email.
    """
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("offer").get(pk=subscription.pk)
    _preview_moment(token=token, subscription=subscription, offer=offer)
    _switch_target(subscription=subscription, offer=offer)
    if not offer_is_downgrade(subscription=subscription, offer=offer):
        raise BillingError(PLAN_NOT_DOWNGRADE)
    if subscription.current_period_end is None:
        raise BillingError(PLAN_NO_PERIOD_END)
    if subscription.scheduled_price_id == offer.stripe_price_id:
        return subscription  # this very change is already waiting: pressing again changes nothing
    services.subscription_schedule_let_go(subscription=subscription, by=by, attempt=attempt)
    schedule = get_gateway().subscription_schedule_change(
        subscription_id=subscription.stripe_subscription_id,
        price_id=offer.stripe_price_id,
        idempotency_key=_key(
            "plan-schedule", subscription.stripe_subscription_id, offer.stripe_price_id, attempt=attempt
        ),
    )
    scheduled = services.subscription_schedule_record(subscription=subscription, remote=schedule)
    if scheduled.scheduled_offer_id != offer.pk:  # the price maps to the offer (Offer.stripe_price_id); keep the choice
        scheduled.scheduled_offer = offer
        scheduled.save(update_fields=["scheduled_offer"])
    entry = audit_record(
        action="subscription.plan_change_scheduled",
        customer=scheduled.customer,
        actor=by,
        changes={
            "subscription": scheduled.stripe_subscription_id,
            "schedule": schedule.id,
            "offer": [subscription.offer.name if subscription.offer else "", offer.name],
            "price": [scheduled.stripe_price_id, offer.stripe_price_id],
            "at": scheduled.scheduled_change_at.isoformat() if scheduled.scheduled_change_at else None,
        },
    )
    _email(
        customer=scheduled.customer,
        kind="plan_change_scheduled",
        key=f"plan_change_scheduled:{scheduled.stripe_subscription_id}:{entry.pk}",
        context={
            "offer_name": offer.name,
            "previous_offer_name": subscription.offer.name if subscription.offer else "",
            "amount": offer.price_amount,
            "currency": offer.currency,
            "interval": offer.interval,
            "changes_at": scheduled.scheduled_change_at.isoformat() if scheduled.scheduled_change_at else None,
        },
    )
    customer_record_activity(user_id=by.pk)
    return scheduled


@transaction.atomic
def subscription_scheduled_change_cancel(*, subscription: Subscription, by: User, attempt: str = "") -> Subscription:
    """The customer keeps their plan: the schedule lets go and the subscription renews as it is."""
    subscription = Subscription.objects.select_for_update(of=("self",)).select_related("offer").get(pk=subscription.pk)
    if not subscription.has_scheduled_change:
        raise BillingError(PLAN_NO_CHANGE_SCHEDULED)
    kept = services.subscription_schedule_let_go(subscription=subscription, by=by, attempt=attempt)
    customer_record_activity(user_id=by.pk)
    return kept
