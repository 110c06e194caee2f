"""The hub link in receipt emails, in a browser: from the customer's receipt email in the outbox,
through the confirm page, to the billing page signed in; a broken link offers a fresh one that works."""

import re

import pytest
from django.core import mail
from playwright.sync_api import expect

from portal.services import site_settings_update
from purchases.services import purchase_record
from tests.factories import CustomerFactory, OfferFactory

pytestmark = pytest.mark.e2e

HUB_PATH = re.compile(r"http://127\.0\.0\.1:8000(/hub/[^\s]+)")


def hub_path_in(message) -> str:
    """The hub link of an email, as a path on the test server (emails link to PORTAL_SITE_URL)."""
    return HUB_PATH.search(message.body).group(1)


def account_menu(page):
    return page.locator("details.menu > summary")


def test_the_receipt_email_signs_the_customer_in_on_the_billing_page(page, run_tasks, transactional_db):
    # The demo customer and a sale recorded the way seed_demo and the Stripe webhook record it.
    # (seed_demo itself is run in tests/portal/test_emails.py: it needs rows of the migrations that a
    # transactional test like this one flushes.)
    site_settings_update(data={"business_name": "Clay & Code Studio"})
    customer = CustomerFactory(user__email="customer@example.com", full_name="Dana Demo", time_zone="UTC")
    purchase_record(customer=customer, offer=OfferFactory(name="Pottery Basics course"))
    run_tasks()
    [message] = mail.outbox
    assert message.to == ["customer@example.com"]
    assert message.subject.startswith("Your receipt R-")
    [(html, _mimetype)] = message.alternatives
    assert hub_path_in(message) in html

    page.goto(hub_path_in(message))

    expect(page.get_by_role("heading", name="Continue to Clay & Code Studio")).to_be_visible()
    expect(page.get_by_text("customer@example.com")).to_be_visible()
    expect(account_menu(page)).to_have_count(0)  # opening the link signed no one in
    page.get_by_role("button", name="Sign in and continue").click()

    page.wait_for_url(re.compile(r"/billing/$"))
    expect(account_menu(page)).to_be_visible()
    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome, Dana Demo")).to_be_visible()


def test_a_broken_link_offers_a_fresh_one_that_works(page, console_errors, run_tasks, transactional_db):
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="UTC")

    response = page.goto("/hub/1-abc-0000000000000000/")

    assert response.status == 400
    # Chromium logs every 4xx page as a console error; this one is the expected answer.
    assert "status of 400" in console_errors.pop()

    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    expect(page.get_by_role("link", name="sign in with a code sent by email")).to_have_attribute(
        "href", "/accounts/login/code/"
    )
    page.get_by_label("Email address").fill(customer.user.email)
    page.get_by_role("button", name="Email me a fresh link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text(f"If an account exists for {customer.user.email}")).to_be_visible()

    run_tasks()
    [message] = mail.outbox
    assert message.subject.startswith("Your sign-in link for ")
    page.goto(hub_path_in(message))
    page.get_by_role("button", name="Sign in and continue").click()

    page.wait_for_url(re.compile(r"/billing/$"))
    expect(account_menu(page)).to_be_visible()
