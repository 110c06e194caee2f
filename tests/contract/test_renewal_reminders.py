"""A renewal reminder states what Stripe will charge, over the real SDK and HTTP against the Stripe stand-in:
the renewal's invoice previewed (`POST /v1/invoices/create_preview`), so a retention offer's discount or a
cheaper plan scheduled for the renewal is in the amount, where the mirror knows only the plan's price."""

from datetime import UTC, datetime, timedelta

import pytest

from billing.gateways.base import get_gateway
from billing.services.reminders import reminders_queue
from billing.services.schedules import subscription_schedule_sync
from portal.models import EmailKind, OutboundEmail
from portal.services import site_settings_update
from tests.contract.test_findings import mirrored, refused_by_stripe, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def membership(standin, standin_gateway, customer):
    """A £15 monthly membership at Stripe, mirrored, with the creator's monthly reminders on."""
    site_settings_update(data={"monthly_renewal_reminders_enabled": True})
    _, subscription_id, _ = subscribe(standin, customer)
    return mirrored(subscription_id)


def reminders_before_the_renewal(subscription) -> list[OutboundEmail]:
    reminders_queue(now=subscription.current_period_end - timedelta(days=2))
    return list(OutboundEmail.objects.filter(kind=EmailKind.RENEWAL_REMINDER))


def previews(standin) -> list:
    return standin.requests("POST", "/v1/invoices/create_preview")


def test_a_retention_offers_discount_is_in_the_amount_the_reminder_states(membership, standin):
    coupon = standin.coupon_create("stay-with-us", percent_off=40)
    get_gateway().subscription_coupon_add(
        subscription_id=membership.stripe_subscription_id, coupon_id=coupon, idempotency_key="retention-test"
    )

    [email] = reminders_before_the_renewal(membership)

    assert (email.context["amount"], email.context["currency"]) == (900, "gbp")  # £15 less 40%
    [preview] = previews(standin)
    assert preview.params == {"subscription": membership.stripe_subscription_id}
    assert refused_by_stripe(standin) == []


def test_a_cheaper_plan_scheduled_for_the_renewal_is_previewed_through_its_schedule(membership, standin):
    cheaper = standin.price_create(amount=900, product_name="Membership lite")
    schedule = get_gateway().subscription_schedule_change(
        subscription_id=membership.stripe_subscription_id, price_id=cheaper, idempotency_key="downgrade-test"
    )
    membership = subscription_schedule_sync(remote=schedule)

    [email] = reminders_before_the_renewal(membership)

    assert email.context["amount"] == 900
    [preview] = previews(standin)
    assert preview.params == {"schedule": schedule.id}  # Stripe refuses `subscription` beside `schedule`
    assert refused_by_stripe(standin) == []


def test_without_discount_or_change_the_preview_is_the_plans_price_and_a_rerun_asks_stripe_nothing(membership, standin):
    [email] = reminders_before_the_renewal(membership)
    reminders_before_the_renewal(membership)

    assert email.context["amount"] == 1500
    assert len(previews(standin)) == 1  # the day after, the reminder already queued: no second preview


def test_when_stripe_cannot_preview_the_reminder_goes_out_with_the_plans_price(membership, standin, caplog):
    standin.fail("/v1/invoices/create_preview", status=500, times=3, method="POST")  # the SDK tries three times

    [email] = reminders_before_the_renewal(membership)

    assert email.context["amount"] == 1500
    assert "did not preview the renewal" in caplog.text


def test_the_stand_in_applies_a_repeating_coupon_only_while_its_months_last(standin, standin_gateway, customer):
    _, subscription_id, _ = subscribe(standin, customer)
    standin.coupon_create("three-months", percent_off=50)  # repeating, 3 months
    get_gateway().subscription_coupon_add(
        subscription_id=subscription_id, coupon_id="three-months", idempotency_key="coupon-test"
    )
    discount = standin.get(subscription_id)["discounts"][0]
    standin.objects[discount]["start"] = int((datetime.now(UTC) - timedelta(days=120)).timestamp())

    invoice = get_gateway().subscription_renewal_preview(subscription_id=subscription_id)

    assert invoice.amount_due == 1500


def test_once_the_runs_time_for_previews_is_spent_the_rest_keep_the_plans_price(
    membership, standin, caplog, monkeypatch
):
    """A slow Stripe must not hold the daily run past its task's time limit (which would queue nothing)."""
    monkeypatch.setattr("billing.services.reminders.PREVIEW_BUDGET_SECONDS", -1)

    [email] = reminders_before_the_renewal(membership)

    assert email.context["amount"] == 1500
    assert previews(standin) == []
    assert "1 reminder(s) state the plan's price: Stripe's previews took the run's -1 s" in caplog.text


def test_the_stand_in_applies_a_once_coupon_redeemed_since_the_last_invoice_and_the_customers_credit(
    standin, standin_gateway, customer
):
    stripe_customer, subscription_id, _ = subscribe(standin, customer)
    standin.coupon_create("welcome-back", percent_off=20)
    standin.objects["welcome-back"].update(duration="once", duration_in_months=None)
    get_gateway().subscription_coupon_add(
        subscription_id=subscription_id, coupon_id="welcome-back", idempotency_key="once-test"
    )
    standin.objects[stripe_customer]["balance"] = -500  # £5 of credit

    invoice = get_gateway().subscription_renewal_preview(subscription_id=subscription_id)

    assert invoice.amount_due == 1500 - 300 - 500
