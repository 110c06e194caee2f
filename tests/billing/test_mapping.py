"""The mappers read Stripe's objects in the current shape of the pinned API version.

The objects are our own files in tests/contract/shapes/, written from Stripe's API reference for that
version (see its README): expanded and unexpanded forms, several lines and payments, paused and
scheduled subscriptions, refunds that are pending or failed, a deleted customer. Each is turned into
the SDK's typed object exactly as the SDK does with an answer, then mapped.
"""

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import stripe

from billing.gateways.stripe import (
    API_VERSION,
    map_card,
    map_customer,
    map_event,
    map_invoice,
    map_refund,
    map_schedule,
    map_setup_intent,
    map_subscription,
)

SHAPES = Path(__file__).resolve().parents[1] / "contract" / "shapes"


def shape(name: str) -> dict:
    return json.loads((SHAPES / f"{name}.json").read_text())


def sdk(cls, data: dict):
    """The SDK's typed object for a JSON answer, built the way the SDK builds it from a response."""
    return cls.construct_from(copy.deepcopy(data), "sk_test_shapes", api_mode="V1")


def at(timestamp: int) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def test_the_pinned_sdk_is_the_version_the_shapes_were_written_for():
    assert API_VERSION == "2026-10-28.endive"
    assert stripe.VERSION == "16.1.0"


# Subscriptions -----------------------------------------------------------------------------------


def test_an_active_subscription_takes_its_period_from_its_items_and_sums_them():
    data = shape("subscription_active")
    subscription = map_subscription(sdk(stripe.Subscription, data))

    member, seats = data["items"]["data"]
    assert subscription.id == data["id"]
    assert subscription.status == "active"
    assert subscription.amount == 1500 * 1 + 250 * 2  # every item, times its quantity
    assert subscription.price_id == member["price"]["id"]
    assert (subscription.currency, subscription.interval) == ("gbp", "month")
    assert subscription.current_period_end == at(member["current_period_end"])
    assert subscription.cancel_at_period_end is False and subscription.cancel_at is None
    assert subscription.paused is False
    # The SDK reads decimal strings as Decimal: the mapper must not depend on them.
    assert isinstance(sdk(stripe.Subscription, data).items.data[0].price.unit_amount_decimal, Decimal)


def test_a_schedule_made_from_a_subscription_has_no_next_phase_until_one_is_added():
    data = shape("subscription_schedule_from_subscription")

    made = map_schedule(sdk(stripe.SubscriptionSchedule, data))
    current = data["phases"][0]
    following = {**copy.deepcopy(current), "start_date": current["end_date"], "end_date": current["end_date"] + 86400}
    following["items"] = [{**current["items"][0], "price": "price_lite", "plan": "price_lite"}]
    two_phases = map_schedule(sdk(stripe.SubscriptionSchedule, {**data, "phases": [current, following]}))
    released = map_schedule(
        sdk(
            stripe.SubscriptionSchedule,
            {
                **data,
                "phases": [current, following],
                "status": "released",
                "subscription": None,
                "released_subscription": data["subscription"],
                "current_phase": None,
            },
        )
    )

    assert (made.id, made.subscription_id, made.status, made.next_price_id) == (
        data["id"],
        data["subscription"],
        "active",
        "",
    )
    assert (two_phases.next_price_id, two_phases.next_phase_at) == ("price_lite", at(current["end_date"]))
    assert (released.subscription_id, released.next_price_id, released.manages_subscription) == (
        data["subscription"],
        "",
        False,
    )


def test_a_subscription_names_the_schedule_that_manages_it():
    data = {**shape("subscription_active"), "schedule": "sub_sched_1"}

    assert map_subscription(sdk(stripe.Subscription, data)).schedule_id == "sub_sched_1"
    assert map_subscription(sdk(stripe.Subscription, shape("subscription_active"))).schedule_id == ""


def test_a_subscription_set_to_end_on_a_date_of_its_own_reads_cancel_at():
    data = shape("subscription_cancel_at")
    subscription = map_subscription(sdk(stripe.Subscription, data))

    assert subscription.cancel_at == at(data["cancel_at"])
    assert subscription.cancel_at_period_end is False
    assert subscription.status == "active"


def test_a_period_end_cancellation_carries_its_date_too():
    data = shape("subscription_cancel_at_period_end")
    subscription = map_subscription(sdk(stripe.Subscription, data))

    assert subscription.cancel_at_period_end is True
    assert subscription.cancel_at == subscription.current_period_end == at(data["cancel_at"])


def test_paused_collection_and_a_paused_subscription_both_read_as_paused():
    collection = map_subscription(sdk(stripe.Subscription, shape("subscription_pause_collection")))
    assert collection.paused is True and collection.status == "active"
    assert collection.resumes_at == at(shape("subscription_pause_collection")["pause_collection"]["resumes_at"])

    paused = map_subscription(sdk(stripe.Subscription, shape("subscription_paused")))
    assert paused.paused is True and paused.status == "paused" and paused.resumes_at is None


def test_a_trialing_subscription_keeps_its_status():
    assert map_subscription(sdk(stripe.Subscription, shape("subscription_trialing"))).status == "trialing"


# Invoices ----------------------------------------------------------------------------------------


def test_an_unexpanded_invoice_has_no_payment_to_refund():
    """Since 2025-03-31 an invoice names no charge or PaymentIntent; `payments` comes only when expanded."""
    data = shape("invoice_paid")
    assert "payments" not in data and "charge" not in data and "payment_intent" not in data

    invoice = map_invoice(sdk(stripe.Invoice, data))

    assert invoice.payments == ()
    assert invoice.charge_id == "" and invoice.payment_intent_id == ""


def test_an_invoice_with_payments_expanded_reads_every_line_and_the_paid_payment():
    data = shape("invoice_paid_payments_expanded")
    invoice = map_invoice(sdk(stripe.Invoice, data))

    assert invoice.status == "paid" and invoice.amount_paid == 2400
    assert invoice.subscription_id == data["parent"]["subscription_details"]["subscription"]
    assert invoice.price_ids == ["price_1QhT5aLkdIwHu7ixMember", "price_1QhT5bLkdIwHu7ixSeats0"]
    assert [line.amount for line in invoice.lines] == [1500, 500]
    assert invoice.tax == 400
    assert invoice.paid_at == at(data["status_transitions"]["paid_at"])
    # Two payments: a failed first attempt and the one that paid; the paid one is the refundable one.
    assert [p.status for p in invoice.payments] == ["paid", "canceled"]
    assert invoice.payment_intent_id == "pi_3QhT8hLkdIwHu7ix0Paid001"
    assert invoice.charge_id == ""


def test_an_invoice_paid_by_a_bare_charge_names_the_charge():
    invoice = map_invoice(sdk(stripe.Invoice, shape("invoice_paid_by_charge_payments_expanded")))

    assert invoice.charge_id == "ch_1QhT9cLkdIwHu7ixCharge01"
    assert invoice.payment_intent_id == ""


def test_the_paid_payment_is_the_default_one_else_the_largest():
    data = shape("invoice_paid_payments_expanded")
    paid, failed = data["payments"]["data"]
    second = copy.deepcopy(paid)
    second.update(id="inpay_second", is_default=False, amount_paid=100)
    second["payment"]["payment_intent"] = "pi_small"
    paid["is_default"] = False
    data["payments"]["data"] = [second, paid, failed]

    assert map_invoice(sdk(stripe.Invoice, data)).payment_intent_id == "pi_3QhT8hLkdIwHu7ix0Paid001"


# Refunds, customers, cards, setup intents ---------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "failure"),
    [
        ("refund_succeeded", "succeeded", ""),
        ("refund_pending", "pending", ""),
        ("refund_failed", "failed", "expired_or_canceled_card"),
    ],
)
def test_a_refund_reads_its_status_payment_and_failure(name, status, failure):
    refund = map_refund(sdk(stripe.Refund, shape(name)))

    assert (refund.status, refund.failure_reason, refund.amount) == (status, failure, 500)
    assert refund.payment_intent_id == "pi_3QhT8hLkdIwHu7ix0Paid001"
    assert refund.charge_id == "ch_3QhT8hLkdIwHu7ix0Paid001"


def test_a_customer_reads_its_default_payment_method_expanded_or_not():
    data = shape("customer")
    data["invoice_settings"]["default_payment_method"] = "pm_123"
    assert map_customer(sdk(stripe.Customer, data)).default_payment_method_id == "pm_123"

    data["invoice_settings"]["default_payment_method"] = shape("payment_method_card")
    expected = shape("payment_method_card")["id"]
    assert map_customer(sdk(stripe.Customer, data)).default_payment_method_id == expected


def test_a_deleted_customer_reads_as_deleted():
    customer = map_customer(sdk(stripe.Customer, shape("customer_deleted")))

    assert customer.deleted is True and customer.id == shape("customer_deleted")["id"]


def test_a_payment_method_maps_to_a_card():
    data = shape("payment_method_card")
    card = map_card(sdk(stripe.PaymentMethod, data))

    source = data["card"]
    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (
        source["brand"],
        source["last4"],
        source["exp_month"],
        source["exp_year"],
    )


def test_a_setup_intent_before_and_after_confirmation():
    before = map_setup_intent(sdk(stripe.SetupIntent, shape("setup_intent_requires_payment_method")))
    after = map_setup_intent(sdk(stripe.SetupIntent, shape("setup_intent_succeeded")))

    assert before.status == "requires_payment_method" and before.payment_method_id == ""
    assert before.client_secret.startswith(before.id)
    assert after.status == "succeeded" and after.payment_method_id.startswith("pm_")


# Events ------------------------------------------------------------------------------------------


def test_an_event_is_kept_as_plain_json_whatever_its_object_holds():
    """Stripe's decimal strings stay strings: the stored payload serialises as it came."""
    body = shape("event_invoice_paid")
    event = map_event(json.loads(json.dumps(body)))

    assert (event.type, event.object_type, event.object_id) == ("invoice.paid", "invoice", body["data"]["object"]["id"])
    assert json.loads(json.dumps(event.payload)) == body
