"""The mappers must read what real Stripe sends (shared/stripe/fixtures3.json), not only localstripe's dialect."""

import copy
from datetime import UTC, datetime

import stripe

from billing.gateways.stripe import map_card, map_customer, map_event, map_refund, map_setup_intent, map_subscription


def test_a_current_shape_subscription_takes_its_period_end_from_the_item(stripe_resources):
    data = copy.deepcopy(stripe_resources["subscription"])
    item = data["items"]["data"][0]
    item["current_period_end"] = 1_800_000_000
    data.pop("current_period_end", None)

    subscription = map_subscription(stripe.Subscription.construct_from(data, "sk_test"))

    assert subscription.id == data["id"]
    assert subscription.current_period_end == datetime.fromtimestamp(1_800_000_000, tz=UTC)
    assert subscription.amount == item["price"]["unit_amount"] * item["quantity"]
    assert subscription.currency == item["price"]["currency"]
    assert subscription.interval == item["price"]["recurring"]["interval"]
    assert subscription.price_id == item["price"]["id"]


def test_an_old_shape_subscription_with_a_plan_and_top_level_period_end(stripe_resources):
    data = copy.deepcopy(stripe_resources["subscription"])
    item = data["items"]["data"][0]
    item.pop("price")
    item.pop("current_period_end", None)
    item["plan"] = {"id": "plan_123", "amount": 1200, "currency": "gbp", "interval": "month"}
    data["current_period_end"] = 1_790_000_000
    data["pause_collection"] = None
    data["status"] = "active"

    subscription = map_subscription(data)

    assert (subscription.amount, subscription.currency, subscription.interval) == (
        1200 * item["quantity"],
        "gbp",
        "month",
    )
    assert subscription.price_id == "plan_123"
    assert subscription.current_period_end == datetime.fromtimestamp(1_790_000_000, tz=UTC)
    assert subscription.paused is False


def test_pause_collection_reads_as_paused(stripe_resources):
    data = copy.deepcopy(stripe_resources["subscription"])
    data["pause_collection"] = {"behavior": "void", "resumes_at": None}

    assert map_subscription(data).paused is True


def test_a_payment_method_maps_to_a_card(stripe_resources):
    card = map_card(stripe_resources["payment_method"])

    source = stripe_resources["payment_method"]["card"]
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        source["brand"],
        source["last4"],
        source["exp_month"],
        source["exp_year"],
    )


def test_a_customer_reads_its_default_payment_method_expanded_or_not(stripe_resources):
    data = copy.deepcopy(stripe_resources["customer"])
    data["invoice_settings"]["default_payment_method"] = "pm_123"
    assert map_customer(data).default_payment_method_id == "pm_123"

    data["invoice_settings"]["default_payment_method"] = {"id": "pm_456", "object": "payment_method"}
    assert map_customer(data).default_payment_method_id == "pm_456"


def test_setup_intent_refund_and_event(stripe_resources):
    intent = map_setup_intent(stripe_resources["setup_intent"])
    assert intent.id == stripe_resources["setup_intent"]["id"]

    refund = map_refund(stripe_resources["refund"])
    assert refund.amount == stripe_resources["refund"]["amount"]

    envelope = copy.deepcopy(stripe_resources["event"])
    envelope["type"] = "customer.subscription.updated"
    envelope["data"] = {"object": stripe_resources["subscription"]}
    event = map_event(envelope)
    assert (event.type, event.object_type, event.object_id) == (
        "customer.subscription.updated",
        "subscription",
        stripe_resources["subscription"]["id"],
    )
