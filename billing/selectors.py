"""Reads for the billing pages: one query shape whatever the number of cards or subscriptions."""

from django.db.models import Count, QuerySet

from accounts.models import Customer
from purchases.models import Purchase

from .models import LIVE_STATUSES, Card, Subscription, SubscriptionStatus


def cards_for_customer(*, customer: Customer) -> list[Card]:
    return list(customer.cards.all())


def subscriptions_for_customer(*, customer: Customer) -> QuerySet[Subscription]:
    """The customer's subscriptions, newest first, with their offers."""
    return (
        customer.subscriptions.select_related("offer")
        .exclude(status=SubscriptionStatus.INCOMPLETE_EXPIRED)
        .order_by("-created_at", "-pk")
    )


def installments_paid(*, subscriptions: list[Subscription]) -> dict[str, int]:
    """Payments recorded per subscription id, in one query."""
    rows = (
        Purchase.objects.filter(stripe_subscription_id__in=[s.stripe_subscription_id for s in subscriptions])
        .values("stripe_subscription_id")
        .annotate(count=Count("pk"))
    )
    return {row["stripe_subscription_id"]: row["count"] for row in rows}


def customer_has_live_subscription(*, customer: Customer) -> bool:
    return customer.subscriptions.filter(status__in=LIVE_STATUSES, paused=False).exists()


def subscription_for_customer(*, customer: Customer, pk: int) -> Subscription:
    return Subscription.objects.select_related("offer").get(customer=customer, pk=pk)


def card_for_customer(*, customer: Customer, pk: int) -> Card:
    return Card.objects.get(customer=customer, pk=pk)
