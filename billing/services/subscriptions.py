"""Subscriptions: the one upsert of the mirror (`subscription_sync`), cancel, keep, pause and resume, and a
customer's subscriptions synced or ended when the processor deleted them."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, User
from accounts.services import customer_record_activity
from portal.models import ActorKind
from portal.selectors import site_settings_get
from portal.services import audit_record
from purchases.models import Offer, Purchase

from ..gateways.base import (
    GatewaySubscription,
    get_gateway,
)
from ..models import LIVE_STATUSES, Card, Subscription, SubscriptionStatus
from .cards import customer_cards_sync
from .common import BillingError, _actor_kind, _email, _key
from .customers import customer_for_stripe_id
from .schedules import scheduled_change_follow, subscription_schedule_let_go

SELF_CANCEL_OFF = _("Subscriptions cannot be cancelled online. Please contact us.")
SUBSCRIPTION_NOT_CANCELLABLE = _("This subscription is %(status)s, so it cannot be cancelled.")
SUBSCRIPTION_ALREADY_CANCELLING = _("This subscription is already set to end on %(date)s.")
SUBSCRIPTION_NOT_CANCELLING = _("This subscription is not set to end, so there is nothing to undo.")
SUBSCRIPTION_CANCELLED_BY_STAFF = _(
    "Our team set this subscription to end, so it cannot be kept from here. Please contact %(contact)s."
)
SUBSCRIPTION_NOT_PAUSABLE = _("Only an active subscription can be paused.")
SUBSCRIPTION_NOT_PAUSED = _("This subscription is not paused.")
SUBSCRIPTION_STILL_PAUSED = _(
    "Stripe kept this subscription paused (for example, its payment did not go through). Nothing was changed here."
)


# ---------------------------------------------------------------------------------------------
# Subscriptions
# ---------------------------------------------------------------------------------------------


def _offer_for_price(price_id: str) -> Offer | None:
    return Offer.objects.filter(stripe_price_id=price_id).first() if price_id else None


@transaction.atomic
def subscription_sync(*, remote: GatewaySubscription, by: User | None = None) -> Subscription:
    """Upsert the mirror from the processor's subscription; audit, revoke and email on each transition."""
    customer = customer_for_stripe_id(stripe_customer_id=remote.customer_id)
    subscription = Subscription.objects.select_for_update().filter(stripe_subscription_id=remote.id).first()
    if subscription is None:
        # Stripe sends created and updated together for a new subscription: two deliveries may both
        # find none. The unique id makes the second insert wait for the first, then fail; it then
        # takes the row the first made, locked, and applies itself as an update.
        try:
            with transaction.atomic():
                Subscription.objects.create(
                    stripe_subscription_id=remote.id,
                    customer=customer,
                    status=SubscriptionStatus.INCOMPLETE,
                    created_at=timezone.now(),
                    # An invoice may be paid and recorded before its subscription is first mirrored.
                    payments_recorded=Purchase.objects.filter(stripe_subscription_id=remote.id).count(),
                )
            is_new = True
        except IntegrityError:
            is_new = False
        subscription = Subscription.objects.select_for_update().get(stripe_subscription_id=remote.id)
    else:
        is_new = False
    before = {
        "status": subscription.status,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "cancel_at": subscription.cancel_at,
        "paused": subscription.paused,
    }
    schedule_before = subscription.stripe_schedule_id
    offer_before = subscription.offer.name if subscription.offer else ""
    subscription.customer = customer
    subscription.offer = _offer_for_price(remote.price_id) or subscription.offer
    subscription.stripe_price_id = remote.price_id
    subscription.status = remote.status if remote.status in SubscriptionStatus.values else SubscriptionStatus.INCOMPLETE
    subscription.amount = remote.amount
    subscription.currency = remote.currency or subscription.currency
    subscription.interval = remote.interval
    subscription.interval_count = remote.interval_count
    subscription.current_period_end = remote.current_period_end
    subscription.cancel_at_period_end = remote.cancel_at_period_end
    subscription.cancel_at = remote.cancel_at
    subscription.canceled_at = remote.canceled_at
    subscription.paused = remote.paused
    subscription.paused_by_customer = subscription.paused_by_customer and remote.paused
    subscription.resumes_at = remote.resumes_at
    subscription.default_payment_method_id = remote.default_payment_method_id
    subscription.stripe_schedule_id = remote.schedule_id
    scheduled_change_follow(
        subscription=subscription, schedule_before=schedule_before, previous_offer_name=offer_before, by=by
    )
    subscription.synced_at = timezone.now()
    subscription.save()
    after = {k: getattr(subscription, k) for k in before}
    changes = {k: [_json_value(before[k]), _json_value(after[k])] for k in before if before[k] != after[k]}
    if is_new:
        audit_record(
            action="subscription.created",
            customer=customer,
            actor=by,
            actor_kind=_actor_kind(by),
            changes={"subscription": remote.id, "status": subscription.status},
        )
    elif changes:
        entry = audit_record(
            action="subscription.changed",
            customer=customer,
            actor=by,
            actor_kind=_actor_kind(by),
            changes={"subscription": remote.id, **changes},
        )
        _subscription_notify(subscription=subscription, before=before, revision=entry.pk)
    return subscription


def _subscription_notify(*, subscription: Subscription, before: dict, revision: int) -> None:
    """Email the customer about a transition and, when the subscription has ended, end its access."""
    name = subscription.offer.name if subscription.offer else str(_("your subscription"))
    customer, sid = subscription.customer, subscription.stripe_subscription_id
    if subscription.status == SubscriptionStatus.CANCELED and before["status"] != SubscriptionStatus.CANCELED:
        _subscription_access_end(subscription=subscription)
        _email(
            customer=customer,
            kind="subscription_canceled",
            key=f"subscription_canceled:{sid}",
            context={"offer_name": name},
        )
    elif _newly_set_to_end(before=before, subscription=subscription):
        ends = subscription.ends_at.isoformat() if subscription.ends_at else None
        _email(
            customer=customer,
            kind="subscription_cancel_scheduled",
            key=f"subscription_cancel_scheduled:{sid}:{revision}",
            context={"offer_name": name, "ends_at": ends},
        )
    if subscription.paused and not before["paused"]:
        resumes = subscription.resumes_at.isoformat() if subscription.resumes_at else None
        _email(
            customer=customer,
            kind="subscription_paused",
            key=f"subscription_paused:{sid}:{revision}",
            context={"offer_name": name, "resumes_at": resumes},
        )
    elif before["paused"] and not subscription.paused and subscription.status != SubscriptionStatus.CANCELED:
        _email(
            customer=customer,
            kind="subscription_resumed",
            key=f"subscription_resumed:{sid}:{revision}",
            context={"offer_name": name},
        )


def _json_value(value):
    """A value as the audit trail's JSON keeps it (dates as ISO 8601)."""
    return value.isoformat() if isinstance(value, datetime) else value


def _newly_set_to_end(*, before: dict, subscription: Subscription) -> bool:
    """Set to end now and not before, or set to end on another date than before.

    A subscription ends at its period end (`cancel_at_period_end`) or on a date of its own (`cancel_at`,
    set in Stripe's dashboard or resolved from `min_period_end`/`max_period_end`); both are an end.
    """
    if not (subscription.cancel_at_period_end or subscription.cancel_at):
        return False
    if not (before["cancel_at_period_end"] or before["cancel_at"]):
        return True
    return not subscription.cancel_at_period_end and before["cancel_at"] != subscription.cancel_at


def _subscription_access_end(*, subscription: Subscription) -> int:
    """Revoke the access that this subscription's payments granted."""
    from purchases.models import AccessGrant
    from purchases.services import access_revoke

    grants = AccessGrant.objects.filter(
        purchase__stripe_subscription_id=subscription.stripe_subscription_id, revoked_at=None
    ).select_related("product", "customer")
    count = 0
    for grant in grants:
        access_revoke(grant=grant, reason="subscription ended")
        count += 1
    return count


def _lock_subscription(subscription: Subscription) -> Subscription:
    return (
        Subscription.objects.select_for_update(of=("self",)).select_related("customer", "offer").get(pk=subscription.pk)
    )


@transaction.atomic
def subscription_cancel(
    *,
    subscription: Subscription,
    by: User | None,
    at_period_end: bool = True,
    attempt: str = "",
    feedback: str = "",
    comment: str = "",
) -> Subscription:
    """Cancel at the end of the paid period (access kept until then) or, for staff, now (access ends now).

    `feedback` (one of Stripe's feedback codes) and `comment` are the customer's reason, sent to Stripe with it.
    """
    subscription = _lock_subscription(subscription)
    self_service = by is not None and not by.is_staff
    if self_service and not site_settings_get().self_cancel_enabled:
        raise BillingError(SELF_CANCEL_OFF)
    if subscription.status not in LIVE_STATUSES and not (subscription.paused and not self_service):
        raise BillingError(SUBSCRIPTION_NOT_CANCELLABLE, {"status": subscription.display_status.lower()})
    gateway = get_gateway()
    if at_period_end or self_service:
        if subscription.is_set_to_end:
            date = subscription.ends_at
            raise BillingError(SUBSCRIPTION_ALREADY_CANCELLING, {"date": date.date() if date else "-"})
        # Leaving wins over a change of plan not yet begun; Stripe refuses an end while a schedule manages it.
        subscription_schedule_let_go(subscription=subscription, by=by, attempt=attempt)
        remote = gateway.subscription_set_cancel_at_period_end(
            subscription_id=subscription.stripe_subscription_id,
            cancel=True,
            idempotency_key=_key(
                "subscription-cancel-at-period-end", subscription.stripe_subscription_id, attempt=attempt
            ),
            feedback=feedback,
            comment=comment,
        )
    else:
        # Ending is final, so one key per subscription: pressing again replays the first answer.
        remote = gateway.subscription_cancel_now(
            subscription_id=subscription.stripe_subscription_id,
            idempotency_key=f"portal:subscription-cancel-now:{subscription.stripe_subscription_id}",
        )
    if self_service:
        customer_record_activity(user_id=by.pk)
    synced = subscription_sync(remote=remote, by=by)
    if at_period_end or self_service:  # who scheduled it: the customer may not undo what staff decided
        synced.cancel_requested_by = None if self_service else by
        synced.save(update_fields=["cancel_requested_by"])
    if synced.status == SubscriptionStatus.CANCELED:
        # "Cancel now" promises that the access it paid for ends now, whatever the mirror held before.
        _subscription_access_end(subscription=synced)
    return synced


@transaction.atomic
def subscription_cancel_undo(*, subscription: Subscription, by: User | None, attempt: str = "") -> Subscription:
    """Keep a subscription that was set to end, at the period end or on a date of its own."""
    subscription = _lock_subscription(subscription)
    if not subscription.is_set_to_end:
        raise BillingError(SUBSCRIPTION_NOT_CANCELLING)
    if subscription.cancel_requested_by_id and not (by is not None and by.is_staff):
        raise BillingError(SUBSCRIPTION_CANCELLED_BY_STAFF, {"contact": site_settings_get().business_email or _("us")})
    Subscription.objects.filter(pk=subscription.pk).update(cancel_requested_by=None)  # kept again: nobody's decision
    key = _key("subscription-keep", subscription.stripe_subscription_id, attempt=attempt)
    gateway = get_gateway()
    if subscription.cancel_at_period_end:
        remote = gateway.subscription_set_cancel_at_period_end(
            subscription_id=subscription.stripe_subscription_id, cancel=False, idempotency_key=key
        )
    else:
        remote = gateway.subscription_cancel_at_clear(
            subscription_id=subscription.stripe_subscription_id, idempotency_key=key
        )
    if by is not None and not by.is_staff:
        customer_record_activity(user_id=by.pk)
    return subscription_sync(remote=remote, by=by)


@transaction.atomic
def subscription_pause(
    *, subscription: Subscription, by: User | None, resumes_at: datetime | None = None, attempt: str = ""
) -> Subscription:
    """Pause collection: no charges until resumed, or until `resumes_at` (staff; customers via billing.plans)."""
    subscription = _lock_subscription(subscription)
    if not subscription.is_live:
        raise BillingError(SUBSCRIPTION_NOT_PAUSABLE)
    remote = get_gateway().subscription_pause(
        subscription_id=subscription.stripe_subscription_id,
        resumes_at=resumes_at,
        idempotency_key=_key("subscription-pause", subscription.stripe_subscription_id, attempt=attempt),
    )
    return subscription_sync(remote=remote, by=by)


@transaction.atomic
def subscription_resume(*, subscription: Subscription, by: User | None, attempt: str = "") -> Subscription:
    """Resume a paused subscription: collection paused, or the subscription itself paused (Stripe's
    pause endpoint, or a trial that ended without a card), which has an endpoint of its own."""
    subscription = _lock_subscription(subscription)
    if not subscription.paused and subscription.status != SubscriptionStatus.PAUSED:
        raise BillingError(SUBSCRIPTION_NOT_PAUSED)
    remote = get_gateway().subscription_resume(
        subscription_id=subscription.stripe_subscription_id,
        status_paused=subscription.status == SubscriptionStatus.PAUSED,
        idempotency_key=_key("subscription-resume", subscription.stripe_subscription_id, attempt=attempt),
    )
    synced = subscription_sync(remote=remote, by=by)
    if synced.paused or synced.status == SubscriptionStatus.PAUSED:
        raise BillingError(SUBSCRIPTION_STILL_PAUSED)
    return synced


@transaction.atomic
def customer_processor_deleted(*, stripe_customer_id: str) -> int:
    """The processor customer was deleted: forget the link, its cards, and end its subscriptions here.

    Stripe cancels a deleted customer's subscriptions; their mirrors end with their access. Purchases
    and receipts stay. The next card entry creates a new processor customer.
    """
    count = 0
    for customer in Customer.objects.select_for_update().filter(stripe_customer_id=stripe_customer_id):
        for subscription in customer.subscriptions.select_for_update().exclude(status=SubscriptionStatus.CANCELED):
            subscription.status = SubscriptionStatus.CANCELED
            subscription.canceled_at = subscription.canceled_at or timezone.now()
            subscription.save(update_fields=["status", "canceled_at"])
            _subscription_access_end(subscription=subscription)
        customer.cards.all().delete()
        customer.stripe_customer_id = ""
        customer.save(update_fields=["stripe_customer_id"])
        audit_record(
            action="stripe.customer_deleted",
            customer=customer,
            actor_kind=ActorKind.STRIPE,
            changes={"stripe_customer_id": [stripe_customer_id, ""]},
        )
        count += 1
    return count


@transaction.atomic
def customer_subscriptions_sync(*, customer: Customer) -> list[Subscription]:
    if not customer.stripe_customer_id:
        return []
    remotes = get_gateway().subscriptions_list(customer_id=customer.stripe_customer_id)
    return [subscription_sync(remote=remote) for remote in remotes]


def customer_sync_from_processor(*, customer: Customer) -> tuple[list[Card], list[Subscription]]:
    """Backfill one customer's cards and subscriptions from the processor (used by `stripe_sync`)."""
    with transaction.atomic():
        cards = customer_cards_sync(customer=customer)
        subscriptions = customer_subscriptions_sync(customer=customer)
    return cards, subscriptions
