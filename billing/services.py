"""Writes to billing: the processor customer, cards, subscriptions, paid invoices and refunds.

Every change goes to the payment processor first, through the gateway, inside our transaction:
if the processor refuses or times out, the transaction rolls back and our mirror stays as it
was (a later webhook or `stripe_sync` reconciles anything the processor did apply). The mirror
upserts (`subscription_sync`, `customer_cards_sync`, `invoice_record_paid`, `charge_refunds_sync`)
are shared by our own writes, the webhooks and the sync command.
"""

import hashlib
import json
import logging
import uuid
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, User
from accounts.services import customer_record_activity
from portal.errors import UserFacingError
from portal.models import ActorKind
from portal.selectors import site_settings_get
from portal.services import audit_record
from purchases.models import Offer, OfferKind, Purchase, Refund, RefundStatus
from purchases.services import purchase_record, refund_check, refund_record, refund_status_set

from .gateways.base import (
    Address,
    CustomerDetails,
    GatewayInvoice,
    GatewayRefund,
    GatewaySetupIntent,
    GatewaySubscription,
    NotFound,
    get_gateway,
)
from .models import LIVE_STATUSES, Card, Subscription, SubscriptionStatus

logger = logging.getLogger(__name__)

CARD_IS_DEFAULT = _("This is your default card. Add another card or make another one the default first.")
CARD_ONLY_ONE_FOR_SUBSCRIPTION = _(
    "This is the only card paying for your active subscription, so it cannot be removed. Add another card first."
)
CARD_SETUP_NOT_FOUND = _("That card setup was not found. Please enter your card again.")
CARD_SETUP_INCOMPLETE = _("Your card was not confirmed, so nothing was changed. Please enter it again.")
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
PROCESSOR_DETACHED = _("Billing is handled directly by the business at the moment.")
NO_OFFER_FOR_PRICE = "no offer has the Stripe price %(price)s; set it on the offer in admin, then retry this event"


class BillingError(UserFacingError):
    """A billing rule was broken; the message may be shown to the customer or staff."""


def _key(*parts, attempt: str = "") -> str:
    """The idempotency key of one intention: what it does, to what, and which attempt it is.

    `attempt` names one intention that may be sent more than once (the id a form carries, a SetupIntent,
    a queued task): its retries share the key, so the processor applies it once and replays its answer.
    Without one, every call is a new intention with a key of its own; the SDK still reuses that key on
    its own network retries. A key is never derived from the target alone, because the same change
    made again later (card A, B, then A again) is a new intention that an old key would swallow.
    """
    return ":".join(["portal", *map(str, parts), attempt or uuid.uuid4().hex])


def _digest(value) -> str:
    """A short fingerprint of what a request sends, so a changed body never reuses a key."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _actor_kind(by) -> str | None:
    return ActorKind.STRIPE if by is None else None


def _email(*, customer: Customer, kind: str, key: str, context: dict | None = None) -> None:
    from portal.emails import email_queue  # portal's mail outbox; imported late to keep app loading simple

    email_queue(customer=customer, kind=kind, key=key, context=context or {})


# ---------------------------------------------------------------------------------------------
# The processor's customer
# ---------------------------------------------------------------------------------------------


def customer_details(customer: Customer) -> CustomerDetails:
    """What the processor's customer record should say (tax IDs are stored in Stripe's form)."""
    return CustomerDetails(
        name=customer.full_name,
        email=customer.email or customer.user.email,
        address=Address(
            line1=customer.address_line1,
            line2=customer.address_line2,
            city=customer.city,
            region=customer.region,
            postal_code=customer.postal_code,
            country=str(customer.country or ""),
        ),
        tax_id_type=customer.tax_id_type if customer.tax_id_value else "",
        tax_id_value=customer.tax_id_value,
    )


def stripe_customer_ensure(*, customer: Customer) -> str:
    """Return the customer's processor id, creating the processor customer on first need."""
    if customer.stripe_customer_id:
        return customer.stripe_customer_id
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        if not locked.stripe_customer_id:
            details = customer_details(locked)
            created = get_gateway().customer_create(
                details=details, idempotency_key=f"portal:customer-create:{locked.pk}:{_digest(details)}"
            )
            locked.stripe_customer_id = created.id
            locked.save(update_fields=["stripe_customer_id"])
            audit_record(action="stripe.customer_created", customer=locked, changes={"stripe_customer_id": created.id})
    customer.stripe_customer_id = locked.stripe_customer_id
    return customer.stripe_customer_id


def stripe_customer_push(*, customer_id: int, idempotency_key: str) -> bool:
    """Send the customer's current contact details to the processor; False when there is nothing to push.

    The details are read at each attempt, so the key also names them: a retry of the same details
    replays, and details changed in between are a new request rather than an idempotency error.
    """
    customer = Customer.objects.select_related("user").filter(pk=customer_id).first()
    if customer is None or not customer.stripe_customer_id:
        return False  # no processor customer yet: it is created with current details when first needed
    details = customer_details(customer)
    get_gateway().customer_update(
        customer_id=customer.stripe_customer_id,
        details=details,
        idempotency_key=f"{idempotency_key}:{_digest(details)}",
    )
    return True


def customer_for_stripe_id(*, stripe_customer_id: str) -> Customer:
    """The portal customer behind a processor customer, linking or creating one by email if needed.

    People who buy through a Stripe checkout exist at Stripe before they ever sign in here.
    """
    customer = Customer.objects.select_related("user").filter(stripe_customer_id=stripe_customer_id).first()
    if customer:
        return customer
    remote = get_gateway().customer_retrieve(customer_id=stripe_customer_id)
    from accounts.services import customer_get_or_create, user_for_processor_email

    user = user_for_processor_email(email=remote.email)  # an account nobody verified loses its credentials first
    if user is None:
        if not remote.email:
            raise BillingError(f"Stripe customer {stripe_customer_id} has no email address")
        user = User.objects.create_user(email=remote.email, password=None)
    customer = customer_get_or_create(user=user)
    if customer.stripe_customer_id and customer.stripe_customer_id != stripe_customer_id:
        raise BillingError(
            f"{remote.email} is linked to Stripe customer {customer.stripe_customer_id}, not {stripe_customer_id}"
        )
    updates = {"stripe_customer_id": stripe_customer_id}
    if remote.name and not customer.full_name:
        updates["full_name"] = remote.name
    Customer.objects.filter(pk=customer.pk).update(**updates)
    for field, value in updates.items():
        setattr(customer, field, value)
    audit_record(action="stripe.customer_linked", customer=customer, actor_kind=ActorKind.STRIPE, changes=updates)
    return customer


# ---------------------------------------------------------------------------------------------
# Cards
# ---------------------------------------------------------------------------------------------


# A SetupIntent in one of these states can still be confirmed by the browser, so it is handed out again.
SETUP_INTENT_OPEN = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})


def card_setup_start(*, customer: Customer, reuse_id: str = "") -> GatewaySetupIntent:
    """Open a SetupIntent for the browser to confirm with Stripe.js; nothing is stored yet.

    `reuse_id` is the customer's last SetupIntent (the view keeps it in the session): while it is
    still open it is handed out again rather than minting another, so reloading the card form or
    trying card after card uses one intent.
    """
    stripe_id = stripe_customer_ensure(customer=customer)
    gateway = get_gateway()
    if reuse_id:
        try:
            open_intent = gateway.setup_intent_retrieve(setup_intent_id=reuse_id)
        except NotFound:
            open_intent = None
        if open_intent and open_intent.customer_id == stripe_id and open_intent.status in SETUP_INTENT_OPEN:
            return open_intent
    return gateway.setup_intent_create(customer_id=stripe_id, idempotency_key=_key("setup", customer.pk))


def _card_mirror(*, customer: Customer, remote, is_default: bool) -> Card:
    if is_default:
        customer.cards.filter(is_default=True).exclude(stripe_payment_method_id=remote.id).update(is_default=False)
    card, _ = Card.objects.update_or_create(
        stripe_payment_method_id=remote.id,
        defaults={
            "customer": customer,
            "brand": remote.brand,
            "last4": remote.last4,
            "exp_month": remote.exp_month,
            "exp_year": remote.exp_year,
            "is_default": is_default,
        },
    )
    return card


def _subscriptions_paying_by_own_card(customer: Customer) -> list[Subscription]:
    """Live subscriptions with a card of their own; the others follow the customer's default card."""
    return list(
        customer.subscriptions.select_for_update()
        .filter(status__in=LIVE_STATUSES)
        .exclude(default_payment_method_id="")
    )


@transaction.atomic
def card_set_default(*, customer: Customer, payment_method_id: str, by: User | None, attempt: str = "") -> Card:
    """Attach the payment method, make it the default for the customer and their live subscriptions, mirror it."""
    customer = Customer.objects.select_for_update().select_related("user").get(pk=customer.pk)
    own_card_subscriptions = _subscriptions_paying_by_own_card(customer)
    previous = customer.cards.filter(is_default=True).first()
    already = previous is not None and previous.stripe_payment_method_id == payment_method_id
    if already and all(s.default_payment_method_id == payment_method_id for s in own_card_subscriptions):
        return previous  # already the default everywhere (say, a webhook told us a timed-out change landed)
    remote = get_gateway().card_attach_as_default(
        customer_id=stripe_customer_ensure(customer=customer),
        payment_method_id=payment_method_id,
        subscription_ids=[s.stripe_subscription_id for s in own_card_subscriptions],
        idempotency_key=_key("card-default", customer.pk, payment_method_id, attempt=attempt),
    )
    card = _card_mirror(customer=customer, remote=remote, is_default=True)
    for subscription in own_card_subscriptions:
        subscription.default_payment_method_id = remote.id
        subscription.save(update_fields=["default_payment_method_id"])
    if previous is None or previous.pk != card.pk:
        audit_record(
            action="card.default_changed",
            customer=customer,
            actor=by,
            changes={"card": [str(previous or ""), str(card)], "subscriptions": len(own_card_subscriptions)},
        )
        _email(
            customer=customer,
            kind="card_updated",
            key=f"card_updated:{customer.pk}:{card.stripe_payment_method_id}",
            context={
                "brand": card.brand_display,
                "last4": card.last4,
                "exp_month": card.exp_month,
                "exp_year": card.exp_year,
            },
        )
    if by is not None and not by.is_staff:
        customer_record_activity(user_id=by.pk)
    return card


def card_save_from_setup(*, customer: Customer, setup_intent_id: str, by: User | None) -> Card:
    """Finish a card update the browser confirmed: check the SetupIntent is this customer's and succeeded."""
    intent = get_gateway().setup_intent_retrieve(setup_intent_id=setup_intent_id)
    if not customer.stripe_customer_id or intent.customer_id != customer.stripe_customer_id:
        raise BillingError(CARD_SETUP_NOT_FOUND)
    if intent.status != "succeeded" or not intent.payment_method_id:
        raise BillingError(CARD_SETUP_INCOMPLETE)
    # One confirmed SetupIntent is one intention: finishing it twice sends the same keys.
    return card_set_default(
        customer=customer, payment_method_id=intent.payment_method_id, by=by, attempt=f"{intent.id}"
    )


@transaction.atomic
def card_remove(*, card: Card, by: User | None) -> None:
    """Detach a card that is not the default; never the only card of a live subscription."""
    card = Card.objects.select_for_update().select_related("customer").get(pk=card.pk)
    customer = card.customer
    has_live = customer.subscriptions.filter(status__in=LIVE_STATUSES).exists()
    if has_live and customer.cards.count() == 1:
        raise BillingError(CARD_ONLY_ONE_FOR_SUBSCRIPTION)
    if card.is_default:
        raise BillingError(CARD_IS_DEFAULT)
    if Subscription.objects.filter(
        customer=customer, status__in=LIVE_STATUSES, default_payment_method_id=card.stripe_payment_method_id
    ).exists():
        raise BillingError(CARD_ONLY_ONE_FOR_SUBSCRIPTION)
    get_gateway().card_detach(
        payment_method_id=card.stripe_payment_method_id,
        idempotency_key=f"portal:card-detach:{card.stripe_payment_method_id}",
    )
    audit_record(action="card.removed", customer=customer, actor=by, changes={"card": str(card)})
    card.delete()


@transaction.atomic
def customer_cards_sync(*, customer: Customer) -> list[Card]:
    """Make the card mirror exactly the processor's cards and default for this customer."""
    if not customer.stripe_customer_id:
        return []
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    gateway = get_gateway()
    remote_customer = gateway.customer_retrieve(customer_id=customer.stripe_customer_id)
    remote_cards = gateway.cards_list(customer_id=customer.stripe_customer_id)
    default_id = remote_customer.default_payment_method_id
    stale = customer.cards.exclude(stripe_payment_method_id__in=[c.id for c in remote_cards])
    if removed := [str(card) for card in stale]:
        audit_record(action="card.removed", customer=customer, actor_kind=ActorKind.STRIPE, changes={"cards": removed})
    stale.delete()
    customer.cards.update(is_default=False)
    return [_card_mirror(customer=customer, remote=c, is_default=c.id == default_id) for c in remote_cards]


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
    subscription.customer = customer
    subscription.offer = _offer_for_price(remote.price_id) or subscription.offer
    subscription.stripe_price_id = remote.price_id
    subscription.status = remote.status if remote.status in SubscriptionStatus.values else SubscriptionStatus.INCOMPLETE
    subscription.amount = remote.amount
    subscription.currency = remote.currency or subscription.currency
    subscription.interval = remote.interval
    subscription.current_period_end = remote.current_period_end
    subscription.cancel_at_period_end = remote.cancel_at_period_end
    subscription.cancel_at = remote.cancel_at
    subscription.canceled_at = remote.canceled_at
    subscription.paused = remote.paused
    subscription.resumes_at = remote.resumes_at
    subscription.default_payment_method_id = remote.default_payment_method_id
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
    *, subscription: Subscription, by: User | None, at_period_end: bool = True, attempt: str = ""
) -> Subscription:
    """Cancel at the end of the paid period (access kept until then) or, for staff, now (access ends now)."""
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
        remote = gateway.subscription_set_cancel_at_period_end(
            subscription_id=subscription.stripe_subscription_id,
            cancel=True,
            idempotency_key=_key(
                "subscription-cancel-at-period-end", subscription.stripe_subscription_id, attempt=attempt
            ),
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
def subscription_pause(*, subscription: Subscription, by: User | None, resumes_at: datetime | None = None):
    """Pause collection (staff): no charges until resumed, or until `resumes_at`."""
    subscription = _lock_subscription(subscription)
    if not subscription.is_live:
        raise BillingError(SUBSCRIPTION_NOT_PAUSABLE)
    remote = get_gateway().subscription_pause(
        subscription_id=subscription.stripe_subscription_id,
        resumes_at=resumes_at,
        idempotency_key=_key("subscription-pause", subscription.stripe_subscription_id),
    )
    return subscription_sync(remote=remote, by=by)


@transaction.atomic
def subscription_resume(*, subscription: Subscription, by: User | None) -> Subscription:
    """Resume a paused subscription: collection paused, or the subscription itself paused (Stripe's
    pause endpoint, or a trial that ended without a card), which has an endpoint of its own."""
    subscription = _lock_subscription(subscription)
    if not subscription.paused and subscription.status != SubscriptionStatus.PAUSED:
        raise BillingError(SUBSCRIPTION_NOT_PAUSED)
    remote = get_gateway().subscription_resume(
        subscription_id=subscription.stripe_subscription_id,
        status_paused=subscription.status == SubscriptionStatus.PAUSED,
        idempotency_key=_key("subscription-resume", subscription.stripe_subscription_id),
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


# ---------------------------------------------------------------------------------------------
# Invoices and refunds
# ---------------------------------------------------------------------------------------------


def _tax_rate(invoice: GatewayInvoice) -> Decimal:
    net = invoice.amount_paid - invoice.tax
    if not invoice.tax or net <= 0:
        return Decimal(0)
    return (Decimal(invoice.tax) * 100 / net).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@transaction.atomic
def invoice_record_paid(*, invoice: GatewayInvoice) -> Purchase | None:
    """A paid invoice becomes one purchase, its receipt and its access grants, exactly once."""
    if invoice.status != "paid" or invoice.amount_paid <= 0:
        return None
    existing = Purchase.objects.filter(stripe_invoice_id=invoice.id).first()
    if existing:
        return existing
    # The offer is that of the first line whose price is an offer's (an invoice may also carry
    # prorations, tax or one-off items).
    offer = next(filter(None, map(_offer_for_price, invoice.price_ids)), None)
    if offer is None:
        raise BillingError(NO_OFFER_FOR_PRICE % {"price": ", ".join(invoice.price_ids) or "(none)"})
    customer = customer_for_stripe_id(stripe_customer_id=invoice.customer_id)
    try:
        with transaction.atomic():
            purchase = purchase_record(
                customer=customer,
                offer=offer,
                amount=invoice.amount_paid,
                purchased_at=invoice.paid_at,
                tax_rate=_tax_rate(invoice),
                stripe_invoice_id=invoice.id,
                stripe_charge_id=invoice.charge_id,  # from the invoice's expanded payments
                stripe_payment_intent_id=invoice.payment_intent_id,
                stripe_subscription_id=invoice.subscription_id,
                card_brand=invoice.card_brand,
                card_last4=invoice.card_last4,
            )
    except IntegrityError:
        # Another delivery of the same invoice won the race; its purchase is the one.
        return Purchase.objects.get(stripe_invoice_id=invoice.id)
    Customer.objects.filter(pk=customer.pk).update(last_activity_at=timezone.now())
    if offer.kind == OfferKind.PAYMENT_PLAN and invoice.subscription_id:
        _payment_plan_finish_if_paid(offer=offer, subscription_id=invoice.subscription_id)
    return purchase


def _payment_plan_finish_if_paid(*, offer: Offer, subscription_id: str) -> None:
    """After the last instalment, a payment plan's subscription ends instead of charging again."""
    paid = Purchase.objects.filter(stripe_subscription_id=subscription_id).count()
    if offer.installments and paid >= offer.installments:
        subscription = Subscription.objects.filter(stripe_subscription_id=subscription_id).first()
        if subscription and not subscription.cancel_at_period_end and subscription.status in LIVE_STATUSES:
            remote = get_gateway().subscription_set_cancel_at_period_end(
                subscription_id=subscription_id,
                cancel=True,
                idempotency_key=f"portal:payment-plan-complete:{subscription_id}",
            )
            subscription_sync(remote=remote)


@transaction.atomic
def invoice_record_failed(*, invoice: GatewayInvoice) -> None:
    """A failed payment: refresh the subscription, record it, and tell the customer how to fix it (once)."""
    customer = customer_for_stripe_id(stripe_customer_id=invoice.customer_id)
    offer_name = ""
    if invoice.subscription_id:
        subscription = subscription_sync(
            remote=get_gateway().subscription_retrieve(subscription_id=invoice.subscription_id)
        )
        offer_name = subscription.offer.name if subscription.offer else ""
    audit_record(
        action="payment.failed",
        customer=customer,
        actor_kind=ActorKind.STRIPE,
        changes={"invoice": invoice.id, "amount": invoice.amount_due, "currency": invoice.currency},
    )
    _email(
        customer=customer,
        kind="payment_failed",
        key=f"payment_failed:{invoice.id}",
        context={"offer_name": offer_name, "amount": invoice.amount_due, "currency": invoice.currency},
    )


# Stripe's refund statuses in ours: requires_action waits on the customer, so it is on its way too.
REFUND_STATUSES = {
    "pending": RefundStatus.PENDING,
    "requires_action": RefundStatus.PENDING,
    "succeeded": RefundStatus.SUCCEEDED,
    "failed": RefundStatus.FAILED,
    "canceled": RefundStatus.CANCELED,
}


def _refund_status(remote: GatewayRefund) -> str:
    return REFUND_STATUSES.get(remote.status, RefundStatus.PENDING)


def _purchase_for_payment(*, charge_id: str = "", payment_intent_id: str = "") -> Purchase | None:
    purchases = Purchase.objects.select_related("offer", "customer")
    if payment_intent_id and (found := purchases.filter(stripe_payment_intent_id=payment_intent_id).first()):
        return found
    return purchases.filter(stripe_charge_id=charge_id).first() if charge_id else None


def _refund_email(*, refund: Refund, purchase: Purchase) -> None:
    """Tell the customer what happened to their money, in the words that are true for this refund."""
    receipt = purchase.receipts.order_by("issued_at", "pk").first()
    failed = refund.status in (RefundStatus.FAILED, RefundStatus.CANCELED)
    _email(
        customer=purchase.customer,
        kind="refund_failed" if failed else "refund_issued",
        key=f"{'refund_failed' if failed else 'refund_issued'}:{refund.stripe_refund_id or f'portal-{refund.pk}'}",
        context={
            "offer_name": purchase.offer.name,
            "amount": refund.amount,
            "currency": purchase.currency,
            "receipt_number": receipt.number if receipt else "",
            "status": refund.status,
            "paid_outside_stripe": not (purchase.stripe_charge_id or purchase.stripe_payment_intent_id),
        },
    )


@transaction.atomic
def refund_sync(*, remote: GatewayRefund) -> Refund | None:
    """Upsert one processor refund: record a new one, or follow it from pending to made or failed."""
    status = _refund_status(remote)
    refund = Refund.objects.select_related("purchase").filter(stripe_refund_id=remote.id).first()
    if refund is not None:
        if refund.status == status:
            return refund
        refund = refund_status_set(refund=refund, status=status, failure_reason=remote.failure_reason)
        if status != RefundStatus.PENDING:  # made, or did not go through: news for the customer
            _refund_email(refund=refund, purchase=refund.purchase)
        return refund
    purchase = _purchase_for_payment(charge_id=remote.charge_id, payment_intent_id=remote.payment_intent_id)
    if purchase is None or status not in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        return None  # not a payment of ours, or a refund that never moved money
    refund = refund_record(
        purchase=purchase, amount=remote.amount, reason="Stripe", stripe_refund_id=remote.id, status=status
    )
    _refund_email(refund=refund, purchase=purchase)
    return refund


def charge_refunds_sync(*, charge_id: str = "", payment_intent_id: str = "") -> list[Refund]:
    """Record the processor's refunds of one payment that we have not recorded yet, and follow the others."""
    if _purchase_for_payment(charge_id=charge_id, payment_intent_id=payment_intent_id) is None:
        return []
    remotes = get_gateway().refunds_list(charge_id=charge_id, payment_intent_id=payment_intent_id)
    known = set(
        Refund.objects.filter(stripe_refund_id__in=[r.id for r in remotes]).values_list("stripe_refund_id", "status")
    )
    changed = []
    for remote in remotes:
        if (remote.id, _refund_status(remote)) in known:
            continue
        if refund := refund_sync(remote=remote):
            changed.append(refund)
    return changed


def customer_sync_from_processor(*, customer: Customer) -> tuple[list[Card], list[Subscription]]:
    """Backfill one customer's cards and subscriptions from the processor (used by `stripe_sync`)."""
    with transaction.atomic():
        cards = customer_cards_sync(customer=customer)
        subscriptions = customer_subscriptions_sync(customer=customer)
    return cards, subscriptions


# ---------------------------------------------------------------------------------------------
# Staff actions on a purchase (the console in admin)
# ---------------------------------------------------------------------------------------------


REFUND_NEEDS_REASON = _("Say why you are refunding; the reason is kept with the refund.")
REFUND_REFUSED = _("Stripe did not make this refund (%(reason)s). Nothing was recorded.")


@transaction.atomic
def purchase_refund(*, purchase: Purchase, amount: int, reason: str, by: User, attempt: str = "") -> Refund:
    """Refund part or all of what is left: at the processor first (when it was paid there), then here.

    `attempt` names one refund someone set out to make (the staff page puts a fresh one in each form
    it shows) and keys the processor call: pressing Refund again after a timeout repeats that refund
    at Stripe, never makes a second one, even when the webhook has recorded the first in between.
    Without it, the key names the state the refund acts on (what was refunded so far).
    """
    purchase = Purchase.objects.select_for_update().select_related("customer", "offer").get(pk=purchase.pk)
    if not reason.strip():
        raise BillingError(REFUND_NEEDS_REASON)
    refund_check(purchase=purchase, amount=amount)
    if not (purchase.stripe_charge_id or purchase.stripe_payment_intent_id):
        # Paid outside Stripe (added by hand, imported): the business returns the money itself.
        refund = refund_record(purchase=purchase, amount=amount, reason=reason, by=by)
        _refund_email(refund=refund, purchase=purchase)
        return refund
    act = attempt or f"{purchase.amount_refunded}:{amount}"
    remote = get_gateway().refund_create(
        charge_id=purchase.stripe_charge_id,
        payment_intent_id=purchase.stripe_payment_intent_id,
        amount=amount,
        reason="requested_by_customer",
        idempotency_key=f"portal:refund:{purchase.pk}:{act}",
    )
    if known := purchase.refunds.filter(stripe_refund_id=remote.id).first():
        return known  # made before an answer was lost, and already recorded from its webhook
    status = _refund_status(remote)
    if status not in (RefundStatus.PENDING, RefundStatus.SUCCEEDED):
        raise BillingError(REFUND_REFUSED, {"reason": remote.failure_reason or remote.status})
    refund = refund_record(
        purchase=purchase, amount=amount, reason=reason, by=by, stripe_refund_id=remote.id, status=status
    )
    _refund_email(refund=refund, purchase=purchase)
    return refund


@transaction.atomic
def purchase_access_revoke(*, purchase: Purchase, by: User, reason: str = "") -> int:
    """Revoke the product access this purchase granted; billing goes on."""
    from purchases.services import access_revoke

    count = 0
    for grant in purchase.grants.filter(revoked_at=None).select_related("product", "customer"):
        access_revoke(grant=grant, by=by, reason=reason or "revoked by staff")
        count += 1
    return count


def purchase_subscription(*, purchase: Purchase) -> Subscription | None:
    if not purchase.stripe_subscription_id:
        return None
    return Subscription.objects.filter(stripe_subscription_id=purchase.stripe_subscription_id).first()


def card_update_link_send(*, customer: Customer, by: User) -> None:
    """Email the customer a sign-in link that opens the card form (staff's "send card-update link")."""
    from accounts.services import sign_in_email_refuse_staff

    sign_in_email_refuse_staff(customer=customer)
    _email(customer=customer, kind="card_update_link", key=_key("card_update_link", customer.pk))
    audit_record(action="card.update_link_sent", customer=customer, actor=by)
