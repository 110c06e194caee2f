"""The current-shape files name only fields the pinned SDK knows, and every field Stripe returns unexpanded."""

from decimal import Decimal
from pathlib import Path

import pytest
import stripe
from stripe.billing_portal import Session as BillingPortalSession

from tests.contract.standin import shape

SHAPES = sorted(path.stem for path in (Path(__file__).parent / "shapes").glob("*.json"))
RESOURCES = {
    cls.OBJECT_NAME: cls
    for cls in (
        stripe.Customer,
        stripe.PaymentMethod,
        stripe.SetupIntent,
        stripe.Subscription,
        stripe.SubscriptionItem,
        stripe.SubscriptionSchedule,
        stripe.Price,
        stripe.Plan,
        stripe.Product,
        stripe.Invoice,
        stripe.InvoiceLineItem,
        stripe.InvoicePayment,
        stripe.PaymentIntent,
        stripe.Charge,
        stripe.Refund,
        stripe.TaxId,
        stripe.Event,
        BillingPortalSession,
    )
}
# Fields the SDK's class has that Stripe leaves out unless expanded (includable) or unless they apply.
ABSENT_UNLESS = {
    "customer": {"cash_balance", "invoice_credit_balance", "sources", "subscriptions", "tax", "tax_ids", "deleted"},
    "invoice": {"payments", "deleted"},
    "charge": {"refunds"},
    "price": {"currency_options", "tiers", "deleted"},
    "plan": {"tiers", "deleted"},
    "product": {"deleted"},
    "tax_id": {"deleted"},
    "event": {"account", "context"},
}
PAYMENT_METHOD_COMMON = {
    "id",
    "object",
    "allow_redisplay",
    "billing_details",
    "created",
    "customer",
    "customer_account",
    "livemode",
    "metadata",
    "radar_options",
    "type",
}


def fields(cls) -> set[str]:
    return {name for name in getattr(cls, "__annotations__", {}) if not name.isupper()}


def unknown_fields(obj: dict, cls, path: str) -> list[str]:
    """Every key of obj (and of its nested hashes and embedded objects) that the SDK's class does not name."""
    found = []
    inner = getattr(cls, "_inner_class_types", {})
    for name, value in obj.items():
        if name not in fields(cls):
            found.append(f"{path}.{name}")
            continue
        kind = value.get("object") if isinstance(value, dict) else None
        if isinstance(kind, str) and kind in RESOURCES:
            found += unknown_fields(value, RESOURCES[kind], f"{path}.{name}")
        elif kind == "list":
            for index, item in enumerate(value["data"]):
                found += unknown_fields(item, RESOURCES[item["object"]], f"{path}.{name}.data[{index}]")
        elif name in inner and isinstance(value, dict):
            found += unknown_fields(value, inner[name], f"{path}.{name}")
        elif name in inner and isinstance(value, list):
            for index, item in enumerate(value):
                found += unknown_fields(item, inner[name], f"{path}.{name}[{index}]")
    return found


@pytest.mark.parametrize("name", SHAPES)
def test_a_shape_names_only_fields_the_pinned_sdk_knows(name):
    obj = shape(name)
    objects = [obj, obj["data"]["object"]] if obj["object"] == "event" else [obj]

    for each in objects:
        assert unknown_fields(each, RESOURCES[each["object"]], name) == []


@pytest.mark.parametrize("name", [name for name in SHAPES if name != "customer_deleted"])
def test_a_shape_has_every_field_stripe_returns_unexpanded(name):
    obj = shape(name)
    expected = fields(RESOURCES[obj["object"]]) - ABSENT_UNLESS.get(obj["object"], set())
    if obj["object"] == "payment_method":
        expected = PAYMENT_METHOD_COMMON | {obj["type"]}
    if obj["object"] == "invoice" and "payments" in obj:
        expected |= {"payments"}

    assert set(obj) == expected


def test_a_deleted_customer_is_only_its_tombstone():
    assert shape("customer_deleted") == {"id": shape("customer")["id"], "object": "customer", "deleted": True}


def test_an_unexpanded_invoice_names_its_subscription_under_parent_and_its_prices_under_pricing():
    invoice = shape("invoice_paid")

    assert {"charge", "payment_intent", "payments", "subscription"}.isdisjoint(invoice)
    assert invoice["parent"]["subscription_details"]["subscription"] == shape("subscription_active")["id"]
    prices = [line["pricing"]["price_details"]["price"] for line in invoice["lines"]["data"]]
    assert prices == [item["price"]["id"] for item in shape("subscription_active")["items"]["data"]]
    assert sum(tax["amount"] for tax in invoice["total_taxes"]) == invoice["total"] - invoice["subtotal"]
    assert sum(line["amount"] for line in invoice["lines"]["data"]) == invoice["subtotal"]


def test_the_expanded_payments_say_which_payment_paid_the_invoice():
    payments = shape("invoice_paid_payments_expanded")["payments"]["data"]
    paid = [payment for payment in payments if payment["status"] == "paid"]

    assert len(payments) == 2 and len(paid) == 1 and paid[0]["is_default"]
    assert paid[0]["payment"] == {"payment_intent": shape("payment_intent_succeeded")["id"], "type": "payment_intent"}
    assert shape("payment_intent_succeeded")["latest_charge"] == shape("charge_succeeded")["id"]
    by_charge = shape("invoice_paid_by_charge_payments_expanded")["payments"]["data"][0]["payment"]
    assert by_charge["type"] == "charge" and by_charge["charge"].startswith("ch_")


def test_the_sdk_reads_decimal_strings_as_decimals():
    invoice = stripe.Invoice.construct_from(shape("invoice_paid"), "sk_test")
    subscription = stripe.Subscription.construct_from(shape("subscription_active"), "sk_test")

    assert invoice.lines.data[0].pricing.unit_amount_decimal == Decimal("1500")
    assert subscription["items"].data[0].price.unit_amount_decimal == Decimal("1500")
    assert shape("invoice_paid")["lines"]["data"][0]["pricing"]["unit_amount_decimal"] == "1500"  # a string on the wire


def test_the_status_variants_differ_from_the_active_subscription_only_where_they_say():
    active = shape("subscription_active")

    def changed(name):
        return {key for key, value in shape(name).items() if active[key] != value}

    assert changed("subscription_paused") == {"status", "status_details"}
    assert changed("subscription_pause_collection") == {"pause_collection"}
    assert changed("subscription_cancel_at") == {"cancel_at"}
    assert changed("subscription_cancel_at_period_end") == {
        "cancel_at",
        "cancel_at_period_end",
        "canceled_at",
        "cancellation_details",
    }
    assert changed("subscription_trialing") == {"status", "trial_start", "trial_end", "items", "latest_invoice"}
