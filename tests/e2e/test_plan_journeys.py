"""A customer pauses their own subscription for two billing periods, then resumes it early.

Against localstripe, as the billing journey: the real SDK on the server, the page in Chromium.
"""

import re
from zoneinfo import ZoneInfo

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from billing.models import Subscription
from billing.plans import pause_resumes_at
from portal.models import OutboundEmail
from portal.services import site_settings_update

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
