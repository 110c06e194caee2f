"""Reads for the billing pages: one query shape whatever the number of cards or subscriptions."""

from accounts.models import Customer

from .models import LIVE_STATUSES, Card, RetentionOfferRedemption, Subscription, SubscriptionStatus

# One customer has a few cards and subscriptions: their pages sort them here, in the models' order, as that
# costs less than the ORM resolving the ordering's field names into SQL on every request (docs/benchmarks.md).


def cards_for_customer(*, customer: Customer) -> list[Card]:
    """The customer's cards, the default first, then newest first (Card.Meta.ordering)."""
    cards = Card.objects.filter(customer=customer).order_by()
    return sorted(cards, key=lambda card: (card.is_default, card.created_at, card.pk), reverse=True)


def subscriptions_for_customer(*, customer: Customer) -> list[Subscription]:
    """The customer's subscriptions, newest first, with their offers (each row carries its stored
    `payments_recorded`, what a payment plan's instalments left are counted from)."""
    subscriptions = (
        Subscription.objects.filter(customer=customer)
        .select_related("offer", "scheduled_offer")
        .exclude(status=SubscriptionStatus.INCOMPLETE_EXPIRED)
        .order_by()
    )
    return sorted(subscriptions, key=lambda subscription: (subscription.created_at, subscription.pk), reverse=True)


def customer_has_live_subscription(*, customer: Customer) -> bool:
    return customer.subscriptions.filter(status__in=LIVE_STATUSES, paused=False).exists()


def subscription_for_customer(*, customer: Customer, pk: int) -> Subscription:
    return Subscription.objects.select_related("offer", "scheduled_offer").get(customer=customer, pk=pk)


def card_for_customer(*, customer: Customer, pk: int) -> Card:
    return Card.objects.get(customer=customer, pk=pk)


def retention_offer_text(*, customer: Customer, subscription: Subscription, site) -> str:
    """The creator's retention offer as the cancel page shows it, or "" when there is none for this customer."""
    if not site.retention_offer_on or not subscription.is_active or subscription.is_set_to_end:
        return ""
    if RetentionOfferRedemption.objects.filter(customer=customer).exists():
        return ""
    return site.retention_offer_text
