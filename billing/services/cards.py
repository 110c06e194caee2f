"""Cards: the SetupIntent, the default card (the customer's and their subscriptions'), removal, the mirror."""

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, User
from accounts.services import customer_record_activity
from portal.models import ActorKind
from portal.services import audit_record

from ..gateways.base import (
    GatewaySetupIntent,
    NotFound,
    get_gateway,
)
from ..models import LIVE_STATUSES, Card, Subscription
from .common import BillingError, _email, _key
from .customers import stripe_customer_ensure

CARD_IS_DEFAULT = _("This is your default card. Add another card or make another one the default first.")
CARD_ONLY_ONE_FOR_SUBSCRIPTION = _(
    "This is the only card paying for your active subscription, so it cannot be removed. Add another card first."
)
CARD_SETUP_NOT_FOUND = _("That card setup was not found. Please enter your card again.")
CARD_SETUP_INCOMPLETE = _("Your card was not confirmed, so nothing was changed. Please enter it again.")


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


def card_update_link_send(*, customer: Customer, by: User) -> None:
    """Email the customer a sign-in link that opens the card form (staff's "send card-update link")."""
    from accounts.services import sign_in_email_refuse_staff

    sign_in_email_refuse_staff(customer=customer)
    _email(customer=customer, kind="card_update_link", key=_key("card_update_link", customer.pk))
    audit_record(action="card.update_link_sent", customer=customer, actor=by)
