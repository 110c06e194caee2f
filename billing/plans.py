"""What a customer may change about their own subscription, when the creator allows it: pause it.

Each service checks the creator's setting and the subscription's state, then reuses the staff
service of `billing.services` that talks to the processor and updates the mirror through
`subscription_sync`, which audits the transition and emails the customer once per transition.
"""

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta
from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import customer_record_activity
from portal.selectors import site_settings_get

from . import services
from .models import Subscription, SubscriptionStatus
from .services import BillingError

SELF_PAUSE_OFF = _("Subscriptions cannot be paused online. Please contact us.")
PAUSE_CYCLES_INVALID = _("Choose a pause of one, two or three billing periods.")
SUBSCRIPTION_ENDING_NOT_PAUSABLE = _("This subscription is set to end, so it cannot be paused. Keep it first.")
SUBSCRIPTION_NOT_SELF_PAUSABLE = _("Only an active subscription can be paused.")
SUBSCRIPTION_ALREADY_PAUSED = _("This subscription is already paused.")
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
