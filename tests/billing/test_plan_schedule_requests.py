"""A downgrade at the period's end on the wire: the subscription schedule made from the subscription, its two
phases, its release, through the real SDK on the stand-in; then the portal following it by webhooks."""

import pytest

from billing.gateways.base import InvalidRequest
from billing.gateways.stripe import API_VERSION
from billing.models import Subscription
from billing.services import subscription_sync
from portal.models import OutboundEmail
from tests.factories import CustomerFactory, OfferFactory


@pytest.fixture
def member(standin):
    """A customer with a card on a £15 monthly membership, and the cheaper prices they could move to."""
    customer = standin.customer_create(email="ada@example.com", name="Ada")
    card = standin.card_create(customer=customer, default=True)
    monthly = standin.price_create(amount=1500, product_name="Membership")
    subscription = standin.subscription_create(customer=customer, prices=[(monthly, 1)], default_payment_method=card)
    return {
        "customer": customer,
        "subscription": subscription,
        "monthly": monthly,
        "lite": standin.price_create(amount=900, product_name="Membership lite"),
        "yearly": standin.price_create(amount=15000, interval="year", product_name="Membership yearly"),
    }


def period(standin, subscription_id: str) -> tuple[int, int]:
    item = standin.get(subscription_id)["items"]["data"][0]
    return item["current_period_start"], item["current_period_end"]


def test_the_schedule_keeps_the_current_phase_and_starts_the_new_price_at_the_period_end(
    standin_gateway, standin, member
):
    start, end = period(standin, member["subscription"])

    schedule = standin_gateway.subscription_schedule_change(
        subscription_id=member["subscription"], price_id=member["lite"], idempotency_key="portal:plan-schedule:t1"
    )

    assert (schedule.status, schedule.next_price_id, int(schedule.next_phase_at.timestamp())) == (
        "active",
        member["lite"],
        end,
    )
    create, update = standin.requests("POST", "/v1/subscription_schedules.*")
    assert create.params == {"from_subscription": member["subscription"]}
    assert update.path == f"/v1/subscription_schedules/{schedule.id}"
    assert update.params["end_behavior"] == "release"
    first, following = update.params["phases"]
    assert first == {
        "start_date": str(start),
        "end_date": str(end),
        "items": [{"price": member["monthly"], "quantity": "1"}],
    }
    assert following == {"items": [{"price": member["lite"], "quantity": "1"}], "proration_behavior": "none"}
    assert {create.idempotency_key, update.idempotency_key} == {
        "portal:plan-schedule:t1:create",
        "portal:plan-schedule:t1:phases",
    }
    assert all(request.stripe_version == API_VERSION and request.status == 200 for request in (create, update))
    stored = standin.get(member["subscription"])
    assert stored["schedule"] == schedule.id and stored["items"]["data"][0]["price"]["id"] == member["monthly"]
    assert standin_gateway.subscription_retrieve(subscription_id=member["subscription"]).schedule_id == schedule.id


def test_a_retry_with_the_same_key_replays_both_requests_and_makes_one_schedule(standin_gateway, standin, member):
    kwargs = {"subscription_id": member["subscription"], "price_id": member["lite"], "idempotency_key": "k:same"}

    first = standin_gateway.subscription_schedule_change(**kwargs)
    again = standin_gateway.subscription_schedule_change(**kwargs)

    assert again == first
    assert [request.replayed for request in standin.requests("POST", "/v1/subscription_schedules.*")] == [
        False,
        False,
        True,
        True,
    ]
    assert len([o for o in standin.objects.values() if o["object"] == "subscription_schedule"]) == 1


def test_stripe_refuses_a_second_schedule_and_an_end_while_one_manages_the_subscription(
    standin_gateway, standin, member
):
    standin_gateway.subscription_schedule_change(
        subscription_id=member["subscription"], price_id=member["lite"], idempotency_key="k:1"
    )

    with pytest.raises(InvalidRequest, match="already attached to a schedule"):
        standin_gateway.subscription_schedule_change(
            subscription_id=member["subscription"], price_id=member["yearly"], idempotency_key="k:2"
        )
    with pytest.raises(InvalidRequest, match="managed by the subscription schedule"):
        standin_gateway.subscription_set_cancel_at_period_end(
            subscription_id=member["subscription"], cancel=True, idempotency_key="k:3"
        )


def test_released_the_subscription_renews_on_its_own_price_and_may_be_cancelled(standin_gateway, standin, member):
    schedule = standin_gateway.subscription_schedule_change(
        subscription_id=member["subscription"], price_id=member["lite"], idempotency_key="k:1"
    )

    released = standin_gateway.subscription_schedule_release(schedule_id=schedule.id, idempotency_key="k:release")

    assert (released.status, released.next_price_id, released.subscription_id) == (
        "released",
        "",
        member["subscription"],
    )
    assert standin.get(member["subscription"])["schedule"] is None
    with pytest.raises(InvalidRequest, match="currently in the `released` status"):
        standin_gateway.subscription_schedule_release(schedule_id=schedule.id, idempotency_key="k:release-2")
    ending = standin_gateway.subscription_set_cancel_at_period_end(
        subscription_id=member["subscription"], cancel=True, idempotency_key="k:end"
    )
    assert ending.cancel_at_period_end


def test_the_stand_in_refuses_a_current_phase_moved_and_phases_that_do_not_follow(standin, member):
    import stripe

    client = stripe.StripeClient("sk_test_standin_0123456789", base_addresses={"api": standin.url})
    schedule = client.v1.subscription_schedules.create(params={"from_subscription": member["subscription"]})
    start, end = period(standin, member["subscription"])

    with pytest.raises(stripe.InvalidRequestError, match="start date of the current phase"):
        client.v1.subscription_schedules.update(
            schedule.id, params={"phases": [{"start_date": start + 1, "items": [{"price": member["lite"]}]}]}
        )
    with pytest.raises(stripe.InvalidRequestError, match="must equal the end_date"):
        client.v1.subscription_schedules.update(
            schedule.id,
            params={
                "phases": [
                    {"start_date": start, "end_date": end, "items": [{"price": member["monthly"]}]},
                    {"start_date": end + 60, "items": [{"price": member["lite"]}]},
                ]
            },
        )
    assert len(standin.get(schedule.id)["phases"]) == 1  # a refused update keeps the phases it had


@pytest.fixture
def portal_member(db, standin_gateway, standin, member):
    """The same subscription mirrored in the portal, with the offers its prices belong to."""
    customer = CustomerFactory(stripe_customer_id=member["customer"])
    offers = {
        name: OfferFactory(
            name=label,
            kind="subscription",
            interval=interval,
            price_amount=amount,
            stripe_price_id=member[name],
            switch_group="membership",
        )
        for name, label, amount, interval in [
            ("monthly", "Membership", 1500, "month"),
            ("lite", "Membership lite", 900, "month"),
        ]
    }
    subscription = subscription_sync(
        remote=standin_gateway.subscription_retrieve(subscription_id=member["subscription"])
    )
    return {"customer": customer, "subscription": subscription, "offers": offers}


def test_the_portal_follows_the_schedule_to_the_new_price_by_webhooks(
    portal_member, standin_gateway, standin, member, deliver
):
    schedule = standin_gateway.subscription_schedule_change(
        subscription_id=member["subscription"], price_id=member["lite"], idempotency_key="k:1"
    )
    deliver("subscription_schedule.created", standin.get(schedule.id))
    row = Subscription.objects.get(stripe_subscription_id=member["subscription"])
    assert (row.scheduled_offer, row.stripe_schedule_id) == (portal_member["offers"]["lite"], schedule.id)

    standin.schedule_phase_start(schedule.id)
    deliver("customer.subscription.updated", standin.get(member["subscription"]))
    deliver("subscription_schedule.updated", standin.get(schedule.id))

    row.refresh_from_db()
    assert (row.offer, row.amount, row.has_scheduled_change) == (portal_member["offers"]["lite"], 900, False)
    assert OutboundEmail.objects.filter(kind="plan_changed", customer=portal_member["customer"]).count() == 1


def test_a_schedule_released_in_stripe_clears_the_pending_change(
    portal_member, standin_gateway, standin, member, deliver
):
    schedule = standin_gateway.subscription_schedule_change(
        subscription_id=member["subscription"], price_id=member["lite"], idempotency_key="k:1"
    )
    deliver("subscription_schedule.created", standin.get(schedule.id))
    standin_gateway.subscription_schedule_release(schedule_id=schedule.id, idempotency_key="dashboard")

    deliver("subscription_schedule.released", standin.get(schedule.id))

    row = Subscription.objects.get(stripe_subscription_id=member["subscription"])
    assert (row.stripe_schedule_id, row.scheduled_price_id, row.offer) == ("", "", portal_member["offers"]["monthly"])
