"""A change of plan on the wire: the invoice preview, then the change, through the real SDK on the stand-in.

Only the gateway's part of issue #19's "change plan" (no page yet): the preview and the change prorate as of
the same moment, so what a customer is shown is what they are charged.
"""

from datetime import UTC, datetime

import pytest

from billing.gateways.base import InvalidRequest, NotFound
from billing.gateways.stripe import API_VERSION


@pytest.fixture
def member(standin):
    """A customer with a card on a £15 monthly membership, and the prices they could move to."""
    customer = standin.customer_create(email="ada@example.com", name="Ada")
    card = standin.card_create(customer=customer, default=True)
    monthly = standin.price_create(amount=1500, product_name="Membership")
    subscription = standin.subscription_create(customer=customer, prices=[(monthly, 1)], default_payment_method=card)
    return {
        "customer": customer,
        "subscription": subscription,
        "premium": standin.price_create(amount=3000, product_name="Premium"),
        "yearly": standin.price_create(amount=15000, interval="year", product_name="Membership yearly"),
    }


def halfway(standin, subscription_id: str) -> datetime:
    item = standin.get(subscription_id)["items"]["data"][0]
    return datetime.fromtimestamp((item["current_period_start"] + item["current_period_end"]) // 2, UTC)


def test_the_preview_of_an_upgrade_credits_the_unused_half_and_charges_the_new_half_changing_nothing(
    standin_gateway, standin, member
):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])
    invoices_before = standin.requests("POST")

    preview = standin_gateway.subscription_price_change_preview(
        subscription_id=subscription.id,
        item_id=subscription.item_id,
        price_id=member["premium"],
        proration_date=halfway(standin, subscription.id),
    )

    assert [(line.price_id, line.amount) for line in preview.lines] == [
        (subscription.price_id, -750),
        (member["premium"], 1500),
    ]
    assert preview.amount_due == 750 and preview.currency == "gbp"
    assert preview.lines[0].description.startswith("Unused time on Membership after ")
    (request,) = standin.requests("POST", "/v1/invoices/create_preview")
    assert request.stripe_version == API_VERSION and request.status == 200
    assert standin.get(subscription.id)["items"]["data"][0]["price"]["id"] == subscription.price_id
    assert standin.requests("POST") == [*invoices_before, request]


def test_the_change_charges_what_the_preview_showed_and_moves_the_subscription(standin_gateway, standin, member):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])
    moment = halfway(standin, subscription.id)
    preview = standin_gateway.subscription_price_change_preview(
        subscription_id=subscription.id, item_id=subscription.item_id, price_id=member["premium"], proration_date=moment
    )

    changed = standin_gateway.subscription_price_change(
        subscription_id=subscription.id,
        item_id=subscription.item_id,
        price_id=member["premium"],
        proration_date=moment,
        idempotency_key="portal:plan-change:test",
    )

    assert (changed.price_id, changed.amount, changed.interval) == (member["premium"], 3000, "month")
    assert changed.current_period_end == subscription.current_period_end  # same interval: the cycle stays
    invoice = standin_gateway.invoice_retrieve(invoice_id=changed.latest_invoice_id)
    assert invoice.status == "paid" and invoice.amount_paid == preview.amount_due == 750
    update = standin.requests("POST", f"/v1/subscriptions/{subscription.id}")[-1]
    assert update.params["payment_behavior"] == "error_if_incomplete"
    assert update.params["proration_behavior"] == "always_invoice"


def test_monthly_to_yearly_restarts_the_cycle_and_charges_the_year_less_the_unused_month(
    standin_gateway, standin, member
):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])
    moment = halfway(standin, subscription.id)

    preview = standin_gateway.subscription_price_change_preview(
        subscription_id=subscription.id, item_id=subscription.item_id, price_id=member["yearly"], proration_date=moment
    )
    changed = standin_gateway.subscription_price_change(
        subscription_id=subscription.id,
        item_id=subscription.item_id,
        price_id=member["yearly"],
        proration_date=moment,
        idempotency_key="portal:plan-change:yearly",
    )

    assert preview.amount_due == 15000 - 750
    assert changed.interval == "year" and changed.current_period_end.year == moment.year + 1


def test_the_same_change_sent_again_with_its_key_is_replayed_and_charged_once(standin_gateway, standin, member):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])
    change = {
        "subscription_id": subscription.id,
        "item_id": subscription.item_id,
        "price_id": member["premium"],
        "proration_date": halfway(standin, subscription.id),
        "idempotency_key": "portal:plan-change:twice",
    }

    first = standin_gateway.subscription_price_change(**change)
    again = standin_gateway.subscription_price_change(**change)

    assert again.latest_invoice_id == first.latest_invoice_id
    assert [r.replayed for r in standin.requests("POST", f"/v1/subscriptions/{subscription.id}")] == [False, True]


def test_a_proration_moment_outside_the_period_is_refused_and_nothing_changes(standin_gateway, standin, member):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])

    with pytest.raises(InvalidRequest):
        standin_gateway.subscription_price_change(
            subscription_id=subscription.id,
            item_id=subscription.item_id,
            price_id=member["premium"],
            proration_date=datetime(2020, 1, 1, tzinfo=UTC),
            idempotency_key="portal:plan-change:past",
        )

    assert standin.get(subscription.id)["items"]["data"][0]["price"]["id"] == subscription.price_id


def test_an_item_of_another_subscription_is_not_found(standin_gateway, standin, member):
    subscription = standin_gateway.subscription_retrieve(subscription_id=member["subscription"])

    with pytest.raises((NotFound, InvalidRequest)):
        standin_gateway.subscription_price_change_preview(
            subscription_id=subscription.id,
            item_id="si_not_this_one",
            price_id=member["premium"],
            proration_date=halfway(standin, subscription.id),
        )
