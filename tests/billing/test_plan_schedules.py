"""A downgrade at the end of the period (billing.plans.subscription_plan_schedule) against the fake gateway:
the schedule, its mirror on the subscription row, the renewal that makes the change, and the pages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from billing import plans, services
from billing.gateways.base import InvalidRequest
from billing.models import Subscription
from console.emails import email_render
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from tests.billing.conftest import calls, stripe_event
from tests.factories import CustomerFactory, OfferFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 18, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def plan_changes_allowed(db):
    SiteSettings.objects.update_or_create(
        pk=1, defaults={"plan_changes_enabled": True, "self_cancel_enabled": True, "self_pause_enabled": True}
    )


@pytest.fixture
def offers(subscription_offer, gateway):
    """The £15 monthly membership's switch group: a £9 monthly lite plan, £150 a year, and £30 premium."""
    subscription_offer.switch_group = "membership"
    subscription_offer.name = "Membership"
    subscription_offer.save(update_fields=["switch_group", "name"])
    gateway.prices.update(
        {
            "price_member": (1500, "month"),
            "price_lite": (900, "month"),
            "price_member_yearly": (15000, "year"),
            "price_premium": (3000, "month"),
        }
    )

    def offer(name, price_id, amount, interval):
        return OfferFactory(
            name=name,
            kind="subscription",
            interval=interval,
            price_amount=amount,
            stripe_price_id=price_id,
            switch_group="membership",
        )

    return {
        "lite": offer("Membership lite", "price_lite", 900, "month"),
        "yearly": offer("Membership yearly", "price_member_yearly", 15000, "year"),
        "premium": offer("Premium", "price_premium", 3000, "month"),
    }


@pytest.fixture
def subscription(offers, live_subscription, gateway) -> Subscription:
    remote = gateway.subscription_update(
        subscription_id=live_subscription.stripe_subscription_id, current_period_end=PERIOD_END
    )
    return services.subscription_sync(remote=remote)


def token_for(subscription, offer) -> str:
    return plans.subscription_plan_change_preview(subscription=subscription, offer=offer).token


def schedule(subscription, offer, member, attempt="a" * 32) -> Subscription:
    return plans.subscription_plan_schedule(
        subscription=subscription, offer=offer, token=token_for(subscription, offer), by=member, attempt=attempt
    )


# What a downgrade is --------------------------------------------------------------------------------


def test_a_plan_that_costs_less_over_a_year_is_a_downgrade(subscription, offers):
    assert plans.offer_is_downgrade(subscription=subscription, offer=offers["lite"])
    assert plans.offer_is_downgrade(subscription=subscription, offer=offers["yearly"])  # £150 < 12 × £15
    assert not plans.offer_is_downgrade(subscription=subscription, offer=offers["premium"])


# The services -----------------------------------------------------------------------------------------


def test_a_downgrade_at_the_period_end_charges_nothing_and_waits_for_the_renewal(
    plan_changes_allowed, subscription, offers, member, gateway
):
    scheduled = schedule(subscription, offers["lite"], member)

    assert calls(gateway, "subscription_price_change") == []
    remote = gateway.schedules[scheduled.stripe_schedule_id]
    assert (remote.next_price_id, remote.next_phase_at, remote.status) == ("price_lite", PERIOD_END, "active")
    scheduled.refresh_from_db()
    assert (scheduled.scheduled_offer, scheduled.scheduled_change_at) == (offers["lite"], PERIOD_END)
    assert (scheduled.offer.name, scheduled.stripe_price_id, scheduled.amount) == ("Membership", "price_member", 1500)
    entry = AuditEntry.objects.get(action="subscription.plan_change_scheduled")
    assert entry.changes["offer"] == ["Membership", "Membership lite"]
    email = OutboundEmail.objects.get(kind="plan_change_scheduled")
    assert email.context["changes_at"] == PERIOD_END.isoformat() and email.context["amount"] == 900


def test_at_the_renewal_the_row_follows_the_new_price_and_the_customer_is_told_once(
    plan_changes_allowed, subscription, offers, member, gateway
):
    schedule(subscription, offers["lite"], member)

    renewed = gateway.advance_to_renewal(subscription_id=subscription.stripe_subscription_id)
    services.subscription_sync(remote=renewed)
    synced = services.subscription_sync(remote=renewed)  # Stripe delivers more than one event for it

    assert (synced.offer, synced.amount, synced.scheduled_price_id) == (offers["lite"], 900, "")
    assert not synced.has_scheduled_change
    email = OutboundEmail.objects.get(kind="plan_changed")
    assert email.context["at_renewal"] is True and email.context["previous_offer_name"] == "Membership"
    assert (
        "nothing was prorated"
        in email_render(customer=synced.customer, kind="plan_changed", context=email.context).text
    )


def test_cancelling_the_change_releases_the_schedule_and_the_plan_renews_as_it_is(
    plan_changes_allowed, subscription, offers, member, gateway
):
    scheduled = schedule(subscription, offers["lite"], member)
    schedule_id = scheduled.stripe_schedule_id

    kept = plans.subscription_scheduled_change_cancel(subscription=scheduled, by=member, attempt="c" * 32)

    assert gateway.schedules[schedule_id].status == "released"
    assert (kept.stripe_schedule_id, kept.scheduled_offer, kept.scheduled_change_at) == ("", None, None)
    renewed = gateway.advance_to_renewal(subscription_id=subscription.stripe_subscription_id)
    assert services.subscription_sync(remote=renewed).stripe_price_id == "price_member"
    with pytest.raises(services.BillingError) as refused:
        plans.subscription_scheduled_change_cancel(subscription=kept, by=member)
    assert refused.value.message == plans.PLAN_NO_CHANGE_SCHEDULED


def test_a_dearer_plan_cannot_wait_for_the_period_end(plan_changes_allowed, subscription, offers, member, gateway):
    with pytest.raises(services.BillingError) as refused:
        schedule(subscription, offers["premium"], member)

    assert refused.value.message == plans.PLAN_NOT_DOWNGRADE
    assert calls(gateway, "subscription_schedule_change") == []


def test_pressing_confirm_twice_schedules_the_change_once(plan_changes_allowed, subscription, offers, member, gateway):
    schedule(subscription, offers["lite"], member)
    again = schedule(subscription, offers["lite"], member)

    assert len(calls(gateway, "subscription_schedule_change")) == 1
    assert again.scheduled_offer == offers["lite"]
    assert OutboundEmail.objects.filter(kind="plan_change_scheduled").count() == 1


def test_the_same_change_made_again_later_is_a_new_request_with_a_key_of_its_own(
    plan_changes_allowed, subscription, offers, member, gateway
):
    first = schedule(subscription, offers["lite"], member, attempt="1" * 32).stripe_schedule_id
    plans.subscription_scheduled_change_cancel(subscription=subscription, by=member, attempt="2" * 32)
    second = schedule(subscription, offers["lite"], member, attempt="3" * 32).stripe_schedule_id

    keys = [call["idempotency_key"] for call in calls(gateway, "subscription_schedule_change")]
    assert len(set(keys)) == 2 and first != second
    assert gateway.schedules[second].status == "active"
    releases = [call["idempotency_key"] for call in calls(gateway, "subscription_schedule_release")]
    assert len(releases) == 1 and releases[0] not in keys


def test_another_downgrade_replaces_the_one_scheduled(plan_changes_allowed, subscription, offers, member, gateway):
    first = schedule(subscription, offers["lite"], member, attempt="1" * 32).stripe_schedule_id

    replaced = schedule(subscription, offers["yearly"], member, attempt="2" * 32)

    assert gateway.schedules[first].status == "released"
    assert gateway.schedules[replaced.stripe_schedule_id].next_price_id == "price_member_yearly"
    assert replaced.scheduled_offer == offers["yearly"]


def test_a_change_now_replaces_a_scheduled_one(plan_changes_allowed, subscription, offers, member, gateway):
    first = schedule(subscription, offers["lite"], member).stripe_schedule_id

    changed = plans.subscription_plan_change(
        subscription=subscription, offer=offers["premium"], token=token_for(subscription, offers["premium"]), by=member
    )

    assert gateway.schedules[first].status == "released"
    assert (changed.offer, changed.scheduled_offer, changed.stripe_schedule_id) == (offers["premium"], None, "")


def test_cancelling_the_subscription_drops_a_scheduled_change_first(
    plan_changes_allowed, subscription, offers, member, gateway
):
    first = schedule(subscription, offers["lite"], member).stripe_schedule_id

    cancelled = services.subscription_cancel(subscription=subscription, by=member, attempt="d" * 32)

    assert gateway.schedules[first].status == "released"
    assert cancelled.cancel_at_period_end and not cancelled.has_scheduled_change
    assert AuditEntry.objects.filter(action="subscription.scheduled_change_cancelled").count() == 1


def test_a_subscription_with_a_change_scheduled_is_not_paused_by_the_customer(
    plan_changes_allowed, subscription, offers, member, gateway
):
    scheduled = schedule(subscription, offers["lite"], member)

    assert not plans.subscription_can_self_pause(subscription=scheduled)
    with pytest.raises(services.BillingError) as refused:
        plans.subscription_pause_by_customer(subscription=scheduled, by=member, cycles=1)
    assert refused.value.message == plans.SUBSCRIPTION_CHANGE_SCHEDULED_NOT_PAUSABLE
    assert calls(gateway, "subscription_pause") == []


def test_stripe_refuses_a_second_schedule_and_an_end_while_a_schedule_manages_the_subscription(
    subscription, offers, gateway
):
    sid = subscription.stripe_subscription_id
    gateway.subscription_schedule_change(subscription_id=sid, price_id="price_lite", idempotency_key="k1")

    with pytest.raises(InvalidRequest, match="already attached to a schedule"):
        gateway.subscription_schedule_change(subscription_id=sid, price_id="price_lite", idempotency_key="k2")
    with pytest.raises(InvalidRequest, match="managed by the subscription schedule"):
        gateway.subscription_set_cancel_at_period_end(subscription_id=sid, cancel=True, idempotency_key="k3")


# Webhooks ---------------------------------------------------------------------------------------------


def test_a_schedule_released_in_stripe_clears_the_change_on_the_row(
    plan_changes_allowed, subscription, offers, member, gateway, post_webhook
):
    scheduled = schedule(subscription, offers["lite"], member)
    released = gateway.subscription_schedule_release(schedule_id=scheduled.stripe_schedule_id, idempotency_key="dash")

    post_webhook(stripe_event("subscription_schedule.released", {"id": released.id, "object": "subscription_schedule"}))

    scheduled.refresh_from_db()
    assert (scheduled.stripe_schedule_id, scheduled.scheduled_price_id, scheduled.scheduled_change_at) == ("", "", None)


def test_a_schedule_made_in_stripes_dashboard_shows_on_the_row(subscription, offers, gateway, post_webhook):
    made = gateway.subscription_schedule_change(
        subscription_id=subscription.stripe_subscription_id, price_id="price_member_yearly", idempotency_key="dash"
    )

    post_webhook(stripe_event("subscription_schedule.created", {"id": made.id, "object": "subscription_schedule"}))

    subscription.refresh_from_db()
    assert (subscription.stripe_schedule_id, subscription.scheduled_offer) == (made.id, offers["yearly"])
    assert subscription.scheduled_change_at == PERIOD_END


def test_the_renewal_webhook_makes_the_change_and_the_schedules_own_event_after_it_changes_nothing(
    plan_changes_allowed, subscription, offers, member, gateway, post_webhook
):
    scheduled = schedule(subscription, offers["lite"], member)
    gateway.advance_to_renewal(subscription_id=subscription.stripe_subscription_id)

    post_webhook(
        stripe_event(
            "customer.subscription.updated", {"id": scheduled.stripe_subscription_id, "object": "subscription"}
        )
    )
    post_webhook(
        stripe_event(
            "subscription_schedule.updated", {"id": scheduled.stripe_schedule_id, "object": "subscription_schedule"}
        )
    )

    scheduled.refresh_from_db()
    assert (scheduled.offer, scheduled.amount, scheduled.has_scheduled_change) == (offers["lite"], 900, False)
    assert OutboundEmail.objects.filter(kind="plan_changed").count() == 1


# The pages --------------------------------------------------------------------------------------------


def test_the_customer_schedules_a_downgrade_sees_it_on_the_billing_page_and_cancels_it(
    plan_changes_allowed, member_client, subscription, offers, gateway
):
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    page = member_client.get(url, {"offer": offers["lite"].pk})
    body = page.content.decode()
    assert 'name="when" value="period_end"' in body
    assert "from Dec. 18, 2026 you pay £9.00 / month" in body

    response = member_client.post(
        url,
        {"offer": offers["lite"].pk, "token": page.context["preview"].token, "when": "period_end", "attempt": "e" * 32},
        follow=True,
    )

    body = response.content.decode()
    assert "Your plan changes to Membership lite on Dec. 18, 2026. Nothing is charged now." in body
    assert "Changes to Membership lite on Dec. 18, 2026" in body
    assert calls(gateway, "subscription_price_change") == []

    cancel_url = reverse("billing:subscription_scheduled_change_cancel", args=[subscription.pk])
    assert cancel_url in body
    response = member_client.post(cancel_url, {"attempt": "f" * 32}, follow=True)

    assert "The change of plan is cancelled. Your subscription renews as it is." in response.content.decode()
    assert "Changes to Membership lite" not in response.content.decode()


def test_the_kept_billing_section_follows_a_renamed_scheduled_plan_and_its_button_posts_the_action_form(
    plan_changes_allowed, member_client, subscription, offers, member
):
    schedule(subscription, offers["lite"], member)
    assert "Changes to Membership lite" in member_client.get(reverse("billing:index")).content.decode()

    offers["lite"].name = "Membership basic"
    offers["lite"].save()
    body = member_client.get(reverse("billing:index")).content.decode()

    assert "Changes to Membership basic" in body and "Membership lite" not in body
    cancel_url = reverse("billing:subscription_scheduled_change_cancel", args=[subscription.pk])
    assert f'form="billing-action" formaction="{cancel_url}"' in body  # no token kept in the cached section


def test_a_dearer_plan_offers_no_choice_of_when(plan_changes_allowed, member_client, subscription, offers):
    page = member_client.get(
        reverse("billing:subscription_plan", args=[subscription.pk]), {"offer": offers["premium"].pk}
    )

    assert 'value="period_end"' not in page.content.decode()


def test_another_customers_subscription_cannot_be_scheduled_or_its_change_cancelled(
    plan_changes_allowed, client, subscription, offers, member, gateway
):
    token = token_for(subscription, offers["lite"])
    schedule(subscription, offers["lite"], member)
    stranger = CustomerFactory()
    client.force_login(stranger.user, backend="accounts.backends.PortalAuthenticationBackend")

    plan = client.post(
        reverse("billing:subscription_plan", args=[subscription.pk]),
        {"offer": offers["yearly"].pk, "token": token, "when": "period_end"},
    )
    cancel = client.post(reverse("billing:subscription_scheduled_change_cancel", args=[subscription.pk]))

    assert (plan.status_code, cancel.status_code) == (404, 404)
    subscription.refresh_from_db()
    assert subscription.scheduled_offer == offers["lite"]
    assert calls(gateway, "subscription_schedule_release") == []


@pytest.mark.parametrize("tamper", ["forged", "other offer", "expired"])
def test_a_tampered_or_expired_preview_schedules_nothing(
    tamper, plan_changes_allowed, member_client, subscription, offers, gateway, time_machine
):
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    token = member_client.get(url, {"offer": offers["lite"].pk}).context["preview"].token
    if tamper == "forged":
        token = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    elif tamper == "other offer":
        token = token_for(subscription, offers["yearly"])
    else:
        time_machine.shift(plans.PLAN_PREVIEW_MAX_AGE + timedelta(seconds=1))

    response = member_client.post(url, {"offer": offers["lite"].pk, "token": token, "when": "period_end"}, follow=True)

    assert str(plans.PLAN_PREVIEW_EXPIRED) in response.content.decode()
    assert calls(gateway, "subscription_schedule_change") == []


def test_a_plan_outside_the_switch_group_is_refused(plan_changes_allowed, member_client, subscription, offers, gateway):
    outsider = OfferFactory(
        kind="subscription", interval="month", price_amount=500, stripe_price_id="price_cheap", switch_group="other"
    )
    gateway.prices["price_cheap"] = (500, "month")
    url = reverse("billing:subscription_plan", args=[subscription.pk])

    response = member_client.post(url, {"offer": outsider.pk, "token": "x", "when": "period_end"}, follow=True)

    assert str(plans.PLAN_NOT_SWITCHABLE) in response.content.decode()
    assert calls(gateway, "subscription_schedule_change") == []


def test_the_billing_page_costs_the_same_queries_with_more_scheduled_changes(
    plan_changes_allowed, member_client, subscription, offers, member, gateway
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    schedule(subscription, offers["lite"], member)
    member_client.get(reverse("billing:index"))  # the first request fills the session and the caches
    with CaptureQueriesContext(connection) as one:
        member_client.get(reverse("billing:index"))
    for _ in range(3):
        remote = gateway.subscription_create(
            customer_id=subscription.customer.stripe_customer_id, amount=1500, price_id="price_member"
        )
        more = services.subscription_sync(
            remote=gateway.subscription_update(subscription_id=remote.id, current_period_end=PERIOD_END)
        )
        schedule(more, offers["lite"], member, attempt="9" * 32)

    with CaptureQueriesContext(connection) as four:
        body = member_client.get(reverse("billing:index")).content.decode()

    assert body.count("Changes to Membership lite on") == 4
    assert len(four) == len(one)


@pytest.fixture
def german(member):
    member.customer.language = "de"
    member.customer.save(update_fields=["language"])
    yield member
    translation.activate(settings.LANGUAGE_CODE)


def test_the_scheduled_change_speaks_german(plan_changes_allowed, member_client, german, subscription, offers):
    schedule(subscription, offers["lite"], german)

    body = member_client.get(reverse("billing:index")).content.decode()
    rendered = email_render(
        customer=german.customer,
        kind="plan_change_scheduled",
        context=OutboundEmail.objects.get(kind="plan_change_scheduled").context,
    )

    assert "Wechselt am 18. Dezember 2026 zu Membership lite" in body and "Änderung zurücknehmen" in body
    assert rendered.subject == "Ihr Tarif wechselt am 18. Dezember 2026 zu Membership lite"
    assert "Ab dann zahlen Sie " in rendered.text


def test_the_cancel_page_says_the_scheduled_change_will_not_happen(
    plan_changes_allowed, member_client, subscription, offers, member
):
    schedule(subscription, offers["lite"], member)

    page = member_client.get(reverse("billing:subscription_cancel", args=[subscription.pk])).content.decode()

    assert "The change to Membership lite that you scheduled will not happen." in page


def test_staff_see_the_scheduled_change_in_the_console(
    plan_changes_allowed, support_client, subscription, offers, member
):
    schedule(subscription, offers["lite"], member)

    listing = support_client.get(reverse("admin:billing_subscription_changelist")).content.decode()
    detail = support_client.get(reverse("admin:billing_subscription_change", args=[subscription.pk])).content.decode()

    assert "Changes to Membership lite on Dec. 18, 2026" in listing
    assert "Changes to Membership lite on Dec. 18, 2026" in detail
    assert subscription.stripe_subscription_id in detail
