"""A customer pauses their own subscription for two billing periods, then resumes it early; another
switches from monthly to yearly after seeing the preview; a third schedules a cheaper plan for the end of
the period, sees it on the billing page, and cancels it.

Against localstripe, as the billing journey: the real SDK on the server, the page in Chromium.
"""

import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from billing.models import Subscription
from billing.plans import pause_resumes_at
from portal.models import OutboundEmail
from portal.services import site_settings_update
from purchases.models import Offer
from tests.factories import OfferFactory

from . import test_billing_journey as billing_journey
from .test_billing_journey import BILLING_URL, subscription_row

# The billing journey's fixtures: a customer with a card and a monthly membership at localstripe, signed in.
account = billing_journey.account
billing_page = billing_journey.billing_page

pytestmark = pytest.mark.e2e


def date_text(value) -> str:
    return formats.date_format(timezone.localtime(value, ZoneInfo("UTC")), "DATE_FORMAT")


def test_a_customer_pauses_for_two_periods_sees_the_resume_date_then_resumes_early(billing_page, account):
    page = billing_page
    subscription = account.subscription
    site_settings_update(data={"self_pause_enabled": True})
    resumes = date_text(pause_resumes_at(subscription=subscription, cycles=2))
    page.goto("/billing/")

    subscription_row(page, subscription).get_by_role("link", name="Pause", exact=True).click()

    expect(page).to_have_url(re.compile(rf"/billing/subscriptions/{subscription.pk}/pause/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Pause Membership?")
    page.get_by_label(f"Skip the next 2 payments: charges resume on {resumes}").check()
    page.get_by_role("button", name="Pause subscription").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        f"Your subscription is paused. It resumes on {resumes}; you can resume it earlier here."
    )
    row = subscription_row(page, subscription)
    expect(row.locator(".badge")).to_have_text("Paused")
    expect(row).to_contain_text(f"Resumes on {resumes}")
    expect(row.get_by_role("link", name="Pause", exact=True)).to_have_count(0)
    remote = account.gateway.client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert remote.pause_collection is not None and remote.pause_collection.behavior == "void"
    assert OutboundEmail.objects.filter(customer=account.customer, kind="subscription_paused").count() == 1

    row.get_by_role("button", name="Resume now").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        "Your subscription is active again, and payments continue as before."
    )
    row = subscription_row(page, subscription)
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.get_by_role("link", name="Pause", exact=True)).to_be_visible()
    remote = account.gateway.client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert remote.pause_collection is None
    assert not Subscription.objects.get(pk=subscription.pk).paused
    assert OutboundEmail.objects.filter(customer=account.customer, kind="subscription_resumed").count() == 1


def test_without_the_creators_leave_no_pause_is_offered(billing_page, account):
    page = billing_page
    page.goto("/billing/")

    expect(subscription_row(page, account.subscription).get_by_role("link", name="Pause", exact=True)).to_have_count(0)

    page.goto(f"/billing/subscriptions/{account.subscription.pk}/pause/")
    expect(page.locator("main")).to_contain_text("This subscription cannot be paused online. Please contact us.")
    expect(page.get_by_role("button", name="Pause subscription")).to_have_count(0)


def test_a_customer_switches_from_monthly_to_yearly_after_seeing_what_it_costs_now(billing_page, account):
    page = billing_page
    subscription = account.subscription
    site_settings_update(data={"plan_changes_enabled": True})
    yearly_price = account.gateway.client.v1.plans.create(
        params={
            "id": f"membership-yearly-{uuid.uuid4().hex[:12]}",
            "amount": 15000,
            "currency": "gbp",
            "interval": "year",
            "product": {"name": "Membership yearly"},
        }
    )
    Offer.objects.filter(pk=subscription.offer_id).update(switch_group="membership")
    OfferFactory(
        name="Membership yearly",
        kind="subscription",
        interval="year",
        price_amount=15000,
        stripe_price_id=yearly_price.id,
        switch_group="membership",
    )
    page.goto("/billing/")

    subscription_row(page, subscription).get_by_role("link", name="Change plan").click()

    expect(page).to_have_url(re.compile(rf"/billing/subscriptions/{subscription.pk}/plan/$"))
    switches = page.locator("[data-plan-switches]")
    expect(switches).to_contain_text("Membership yearly — £150.00 / year")
    switches.get_by_role("link", name="Membership yearly").click()

    preview = page.locator("[data-plan-preview]")
    expect(preview).to_contain_text("Charged now")
    expect(preview.locator("[data-amount-due]")).to_have_text(re.compile(r"^£\d+\.\d\d$"))
    expect(preview).to_contain_text("Next renewal")
    page.get_by_role("button", name="Confirm change").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text("Your plan is now Membership yearly.")
    row = subscription_row(page, subscription)
    expect(row).to_contain_text("Membership yearly")
    expect(row).to_contain_text("£150.00")
    remote = account.gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    assert remote.price_id == yearly_price.id and remote.interval == "year"
    mirrored = Subscription.objects.get(pk=subscription.pk)
    assert (mirrored.offer.name, mirrored.amount, mirrored.interval) == ("Membership yearly", 15000, "year")
    assert OutboundEmail.objects.filter(customer=account.customer, kind="plan_changed").count() == 1


def test_a_customer_schedules_a_downgrade_for_the_period_end_sees_it_then_cancels_it(billing_page, account):
    page = billing_page
    subscription = account.subscription
    site_settings_update(data={"plan_changes_enabled": True})
    lite_price = account.gateway.client.v1.plans.create(
        params={
            "id": f"membership-lite-{uuid.uuid4().hex[:12]}",
            "amount": 500,
            "currency": "gbp",
            "interval": "month",
            "product": {"name": "Membership lite"},
        }
    )
    Offer.objects.filter(pk=subscription.offer_id).update(switch_group="membership")
    OfferFactory(
        name="Membership lite",
        kind="subscription",
        interval="month",
        price_amount=500,
        stripe_price_id=lite_price.id,
        switch_group="membership",
    )
    changes_on = date_text(Subscription.objects.get(pk=subscription.pk).current_period_end)
    page.goto("/billing/")

    subscription_row(page, subscription).get_by_role("link", name="Change plan").click()
    page.locator("[data-plan-switches]").get_by_role("link", name="Membership lite").click()

    expect(page.locator("[data-plan-preview]")).to_contain_text("Charged now")
    page.get_by_label(
        f"At the end of the period: nothing is charged now; from {changes_on} you pay £5.00 / month"
    ).check()
    page.get_by_role("button", name="Confirm change").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        f"Your plan changes to Membership lite on {changes_on}. Nothing is charged now."
    )
    row = subscription_row(page, subscription)
    expect(row.locator("[data-scheduled-change]")).to_have_text(f"Changes to Membership lite on {changes_on}")
    remote = account.gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    assert remote.price_id != lite_price.id and remote.schedule_id
    schedule = account.gateway.subscription_schedule_retrieve(schedule_id=remote.schedule_id)
    assert (schedule.status, schedule.next_price_id) == ("active", lite_price.id)
    assert OutboundEmail.objects.filter(customer=account.customer, kind="plan_change_scheduled").count() == 1

    row.get_by_role("button", name="Cancel the change").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        "The change of plan is cancelled. Your subscription renews as it is."
    )
    expect(subscription_row(page, subscription).locator("[data-scheduled-change]")).to_have_count(0)
    assert account.gateway.subscription_schedule_retrieve(schedule_id=schedule.id).status == "released"
    assert account.gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id).schedule_id == ""
    assert not Subscription.objects.get(pk=subscription.pk).has_scheduled_change
