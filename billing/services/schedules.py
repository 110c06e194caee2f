"""A change of plan at a later renewal, made by a processor subscription schedule: the mirror's side.

The subscription row keeps the schedule that manages it (`stripe_schedule_id`) and the change it will
make (`scheduled_offer`, `scheduled_price_id`, `scheduled_change_at`). `subscription_sync` keeps both
true from the subscription (its `schedule` field, and its price once the change began);
`subscription_schedule_sync` does from the schedule's own events (released, canceled, completed).
"""

from django.db import transaction

from accounts.models import User
from portal.services import audit_record
from purchases.models import Offer

from ..gateways.base import GatewaySchedule, get_gateway
from ..models import Subscription
from .common import _actor_kind, _email, _key

SCHEDULED_FIELDS = ["scheduled_offer", "scheduled_price_id", "scheduled_change_at"]


def _offer_for_price(price_id: str) -> Offer | None:
    return Offer.objects.filter(stripe_price_id=price_id).first() if price_id else None


def scheduled_change_clear(*, subscription: Subscription) -> list[str]:
    """Forget the pending change on the row (not saved); return the fields to save."""
    subscription.scheduled_offer = None
    subscription.scheduled_price_id = ""
    subscription.scheduled_change_at = None
    return list(SCHEDULED_FIELDS)


def scheduled_change_follow(
    *, subscription: Subscription, schedule_before: str, previous_offer_name: str, by: User | None
) -> bool:
    """Called by `subscription_sync` on the row it holds locked, with the processor's state already copied.

    A schedule that no longer manages the subscription, or another schedule, ends the pending change; a
    price that became the scheduled one means the change began: the customer gets the usual
    plan_changed email, once per schedule. Returns whether the row changed (not saved).
    """
    if not subscription.scheduled_price_id:
        return False
    if subscription.stripe_price_id == subscription.scheduled_price_id:
        offer = subscription.scheduled_offer or subscription.offer
        audit_record(
            action="subscription.scheduled_change_began",
            customer=subscription.customer,
            actor=by,
            actor_kind=_actor_kind(by),
            changes={"subscription": subscription.stripe_subscription_id, "price": subscription.stripe_price_id},
        )
        _email(
            customer=subscription.customer,
            kind="plan_changed",
            key=f"plan_changed:{subscription.stripe_subscription_id}:schedule:{schedule_before}",
            context={
                "offer_name": offer.name if offer else "",
                "previous_offer_name": previous_offer_name,
                "amount": subscription.amount,
                "currency": subscription.currency,
                "interval": subscription.interval,
                "at_renewal": True,
                "next_renewal": (
                    subscription.current_period_end.isoformat() if subscription.current_period_end else None
                ),
            },
        )
        if offer is not None:
            subscription.offer = offer
        scheduled_change_clear(subscription=subscription)
        return True
    if subscription.stripe_schedule_id != schedule_before:
        scheduled_change_clear(subscription=subscription)
        return True
    return False


@transaction.atomic
def subscription_schedule_sync(*, remote: GatewaySchedule, by: User | None = None) -> Subscription | None:
    """Follow one schedule's current state onto its subscription's row (webhooks, after the subscription)."""
    if not remote.subscription_id:
        return None
    subscription = (
        Subscription.objects.select_for_update(of=("self",))
        .filter(stripe_subscription_id=remote.subscription_id)
        .first()
    )
    if subscription is None:
        return None
    fields: list[str] = []
    if remote.manages_subscription:
        if subscription.stripe_schedule_id != remote.id:
            subscription.stripe_schedule_id = remote.id
            fields.append("stripe_schedule_id")
        if remote.next_price_id and remote.next_price_id != subscription.stripe_price_id:
            subscription.scheduled_offer = _offer_for_price(remote.next_price_id)
            subscription.scheduled_price_id = remote.next_price_id
            subscription.scheduled_change_at = remote.next_phase_at
            fields += SCHEDULED_FIELDS
        elif subscription.scheduled_price_id:
            fields += scheduled_change_clear(subscription=subscription)
    elif subscription.stripe_schedule_id == remote.id:
        subscription.stripe_schedule_id = ""
        fields += ["stripe_schedule_id", *scheduled_change_clear(subscription=subscription)]
    if fields:
        subscription.save(update_fields=sorted(set(fields)))
    return subscription


def subscription_schedule_record(*, subscription: Subscription, remote: GatewaySchedule) -> Subscription:
    """Mirror a schedule this portal just made, on the row the caller holds locked."""
    subscription.stripe_schedule_id = remote.id
    subscription.scheduled_offer = _offer_for_price(remote.next_price_id)
    subscription.scheduled_price_id = remote.next_price_id
    subscription.scheduled_change_at = remote.next_phase_at
    subscription.save(update_fields=["stripe_schedule_id", *SCHEDULED_FIELDS])
    return subscription


def subscription_schedule_let_go(*, subscription: Subscription, by: User | None, attempt: str = "") -> Subscription:
    """Release the schedule that manages the subscription, on the row the caller holds locked.

    Stripe refuses to cancel a subscription at its period end, or to make another schedule for it, while a
    schedule manages it; releasing keeps the subscription as it is and drops the phases not yet begun.
    """
    if not subscription.stripe_schedule_id:
        return subscription
    schedule_id = subscription.stripe_schedule_id
    dropped = subscription.scheduled_price_id
    get_gateway().subscription_schedule_release(
        schedule_id=schedule_id,
        idempotency_key=_key("schedule-release", schedule_id, attempt=attempt),
    )
    subscription.stripe_schedule_id = ""
    subscription.save(update_fields=["stripe_schedule_id", *scheduled_change_clear(subscription=subscription)])
    if dropped:
        audit_record(
            action="subscription.scheduled_change_cancelled",
            customer=subscription.customer,
            actor=by,
            actor_kind=_actor_kind(by),
            changes={"subscription": subscription.stripe_subscription_id, "schedule": schedule_id, "price": dropped},
        )
    return subscription
