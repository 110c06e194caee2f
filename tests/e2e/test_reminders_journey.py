"""Reminders in a browser: a customer turns an optional reminder off on the profile page and finds it
saved; a renewal reminder's manage link signs the customer in on the billing page, and its cancel link
opens the cancellation page."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from billing.services.reminders import reminders_queue
from tests.factories import OfferFactory, SubscriptionFactory

from .conftest import sign_in_with_form

pytestmark = pytest.mark.e2e

LINK = re.compile(r"http://127\.0\.0\.1:8000(/[^\s]+)")


def test_a_customer_turns_monthly_renewal_reminders_off_and_finds_it_saved(page, e2e_customer):
    sign_in_with_form(page, e2e_customer.user.email)
    page.goto("/settings/profile/")
    monthly = page.get_by_label("Renewal reminders for monthly plans")
    expect(monthly).to_be_checked()
    expect(page.get_by_label("Card expiry reminders")).to_be_checked()
    expect(page.get_by_text("Reminders before a yearly subscription renews")).to_be_visible()

    monthly.uncheck()
    page.get_by_role("button", name="Save profile").click()

    expect(page.locator(".message--success")).to_have_text("Your profile was saved.")
    page.reload()
    expect(page.get_by_label("Renewal reminders for monthly plans")).not_to_be_checked()
    expect(page.get_by_label("Card expiry reminders")).to_be_checked()
    stored = Customer.objects.get(pk=e2e_customer.pk)
    assert (stored.notify_renewal_reminders, stored.notify_card_expiry_reminders) == (False, True)


def test_the_renewal_reminder_links_to_the_billing_page_and_the_cancellation(page, e2e_customer, run_tasks):
    subscription = SubscriptionFactory(
        customer=e2e_customer,
        offer=OfferFactory(name="Studio yearly", kind="subscription", interval="year"),
        interval="year",
        amount=12000,
        current_period_end=timezone.now() + timedelta(days=10),
    )
    reminders_queue()
    run_tasks()
    [message] = mail.outbox
    assert message.subject.startswith("Your Studio yearly subscription renews on ")
    manage, cancel = LINK.findall(message.body)[:2]
    assert manage.startswith("/hub/") and manage.endswith("?next=%2Fbilling%2F")
    assert cancel == f"/billing/subscriptions/{subscription.pk}/cancel/"

    page.goto(manage)
    page.get_by_role("button", name="Sign in and continue").click()

    page.wait_for_url(re.compile(r"/billing/$"))
    row = page.locator(f"tr[data-subscription='{subscription.pk}']")
    expect(row).to_contain_text("Studio yearly")
    expect(row).to_contain_text("£120.00")
    page.goto(cancel)
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel Studio yearly?")
