"""A customer replaces their card (3-D Secure included) and cancels, then keeps, their subscription.

Everything runs against localstripe: our gateway's real Stripe SDK on the server, and
localstripe's fake Stripe.js in the browser, which confirms SetupIntents with the same magic
card numbers as Stripe (0002 declines, 3155 asks for 3-D Secure in a modal).
"""

import re
import uuid
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from accounts.models import Customer
from billing.gateways.stripe import StripeGateway
from billing.models import CancellationFeedback, Card, Subscription
from billing.services import PROCESSOR_DETACHED, card_set_default, stripe_customer_ensure, subscription_sync
from portal.services import site_settings_update
from tests.factories import OfferFactory

from .conftest import MOBILE, sign_in_with_form

pytestmark = pytest.mark.e2e

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
THREE_D_SECURE_CARD = "4000002500003155"
FIRST_CARD = "5555555555554444"  # the card on file before each test: its last 4 differ from every card entered

CARD_SAVED = "Your card ending in {last4} is now your default card."
DECLINED = "Your card was declined."
# localstripe's Stripe.js wording when 3-D Secure is failed
AUTHENTICATION_FAILED = "The latest attempt to set up the payment method has failed because authentication failed."
BILLING_URL = re.compile(r"/billing/$")
CARD_URL = re.compile(r"/billing/cards/new/$")


@dataclass
class Account:
    customer: Customer
    gateway: StripeGateway
    stripe_customer_id: str
    first_card: Card
    subscription: Subscription


def add_card(gateway: StripeGateway, number: str) -> str:
    """A PaymentMethod made straight through the API: set-up only, the browser tests enter cards in the page."""
    method = gateway.client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    return method.id


@pytest.fixture
def account(stripe_live, e2e_customer) -> Account:
    """A signed-up customer with a Stripe customer, a default card (•••• 4444) and an active monthly membership."""
    gateway = stripe_live
    stripe_id = stripe_customer_ensure(customer=e2e_customer)
    first_card = card_set_default(customer=e2e_customer, payment_method_id=add_card(gateway, FIRST_CARD), by=None)
    plan = gateway.client.v1.plans.create(
        params={
            "id": f"membership-{uuid.uuid4().hex[:12]}",  # one localstripe serves the whole session
            "amount": 1500,
            "currency": "gbp",
            "interval": "month",
            "product": {"name": "Membership"},
        }
    )
    OfferFactory(name="Membership", kind="subscription", interval="month", price_amount=1500, stripe_price_id=plan.id)
    remote = gateway.client.v1.subscriptions.create(params={"customer": stripe_id, "items": [{"plan": plan.id}]})
    subscription = subscription_sync(remote=gateway.subscription_retrieve(subscription_id=remote.id))
    assert subscription.status == "active" and subscription.offer.name == "Membership"
    return Account(e2e_customer, gateway, stripe_id, first_card, subscription)


@pytest.fixture
def billing_page(page, account):
    sign_in_with_form(page, account.customer.user.email)
    return page


# --- Reading the state: the page, our Card rows, and localstripe ---------------------------------


def card_row(page, last4: str):
    return page.locator(f"li.card-row[data-card='{last4}']")


def subscription_row(page, subscription: Subscription):
    return page.locator(f"tr[data-subscription='{subscription.pk}']")


def stripe_default_card(account: Account) -> str:
    """The customer's default payment method as localstripe holds it."""
    remote = account.gateway.client.v1.customers.retrieve(account.stripe_customer_id)
    default = remote.invoice_settings.default_payment_method
    return default if isinstance(default, str) else default.id


def stripe_cancels_at_period_end(account: Account) -> bool:
    remote = account.gateway.client.v1.subscriptions.retrieve(account.subscription.stripe_subscription_id)
    return bool(remote.cancel_at_period_end)


def saved_cards(account: Account) -> list[tuple[str, bool]]:
    return list(Card.objects.filter(customer=account.customer).order_by("pk").values_list("last4", "is_default"))


def expect_default_card(page, last4: str, others: list[str]) -> None:
    expect(card_row(page, last4).locator(".badge", has_text="Default")).to_be_visible()
    for other in others:
        expect(card_row(page, other)).to_be_visible()
        expect(card_row(page, other).locator(".badge", has_text="Default")).to_have_count(0)


def assert_nothing_changed(page, account: Account) -> None:
    """The card page failed: the old card is still the default, here, in our mirror and at Stripe."""
    assert saved_cards(account) == [("4444", True)]
    assert stripe_default_card(account) == account.first_card.stripe_payment_method_id
    page.goto("/billing/")
    expect(page.locator("li.card-row")).to_have_count(1)
    expect_default_card(page, "4444", others=[])
    expect(subscription_row(page, account.subscription).get_by_text("•••• 4444")).to_be_visible()


# --- Card entry --------------------------------------------------------------------------------


def open_card_page(page) -> None:
    page.goto("/billing/")
    page.get_by_role("link", name="Replace card").click()
    expect(page).to_have_url(CARD_URL)
    # localstripe's Stripe.js mounts plain inputs in the Card Element's place.
    expect(page.locator("#card-element input")).to_have_count(5)


def enter_card(page, number: str) -> None:
    element = page.locator("#card-element")
    element.locator("input[placeholder=number]").fill(number)
    element.locator("input[placeholder=exp_month]").fill("12")
    element.locator("input[placeholder=exp_year]").fill("31")
    element.locator("input[placeholder=cvc]").fill("123")
    element.locator("input[placeholder=postal_code]").fill("SW1A 1AA")
    page.get_by_role("button", name="Save card").click()


def expect_card_saved(page, account: Account, last4: str) -> None:
    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(CARD_SAVED.format(last4=last4))
    expect_default_card(page, last4, others=["4444"])
    expect(subscription_row(page, account.subscription).get_by_text(f"•••• {last4}")).to_be_visible()
    assert saved_cards(account) == [("4444", False), (last4, True)]
    new_card = Card.objects.get(customer=account.customer, last4=last4)
    assert stripe_default_card(account) == new_card.stripe_payment_method_id


def expect_card_page_error(page, message: str) -> None:
    expect(page.locator("#card-errors")).to_be_visible()
    expect(page.locator("#card-errors")).to_have_text(message)
    expect(page).to_have_url(CARD_URL)
    expect(page.get_by_role("button", name="Save card")).to_be_enabled()


def test_a_good_card_becomes_the_default(billing_page, account):
    page = billing_page
    open_card_page(page)
    enter_card(page, GOOD_CARD)
    expect_card_saved(page, account, "4242")


def test_the_older_card_is_made_default_again_then_the_newer_one_removed(billing_page, account):
    page = billing_page
    open_card_page(page)
    enter_card(page, GOOD_CARD)
    expect_card_saved(page, account, "4242")

    # The buttons sit outside any form of their own: each submits the page's action form to its formaction.
    card_row(page, "4444").get_by_role("button", name="Make default").click()
    expect(page.locator(".message--success")).to_have_text(CARD_SAVED.format(last4="4444"))
    expect_default_card(page, "4444", others=["4242"])
    assert saved_cards(account) == [("4444", True), ("4242", False)]
    assert stripe_default_card(account) == account.first_card.stripe_payment_method_id

    card_row(page, "4242").get_by_role("button", name="Remove").click()
    expect(page.locator(".message--success")).to_have_text("The card ending in 4242 was removed.")
    expect(page.locator("li.card-row")).to_have_count(1)
    assert saved_cards(account) == [("4444", True)]


def test_a_declined_card_shows_the_decline_and_keeps_the_old_default(billing_page, account, console_errors):
    page = billing_page
    open_card_page(page)
    enter_card(page, DECLINED_CARD)

    expect_card_page_error(page, DECLINED)
    # Stripe.js's confirm request is answered 402, which Chromium logs; that error is the point here.
    assert console_errors.take_expected(r"status of 402"), "the decline did not come from localstripe"
    assert_nothing_changed(page, account)


def test_after_a_decline_another_card_can_be_saved_on_the_same_page(billing_page, account, console_errors):
    page = billing_page
    open_card_page(page)
    enter_card(page, DECLINED_CARD)
    expect_card_page_error(page, DECLINED)
    assert console_errors.take_expected(r"status of 402")

    enter_card(page, GOOD_CARD)

    expect_card_saved(page, account, "4242")


def test_3d_secure_completed_saves_the_card(billing_page, account):
    page = billing_page
    open_card_page(page)
    enter_card(page, THREE_D_SECURE_CARD)

    page.get_by_role("button", name="Complete authentication").click()

    expect_card_saved(page, account, "3155")


def test_3d_secure_failed_shows_the_message_and_changes_nothing(billing_page, account):
    page = billing_page
    open_card_page(page)
    enter_card(page, THREE_D_SECURE_CARD)

    page.get_by_role("button", name="Fail authentication").click()

    expect_card_page_error(page, AUTHENTICATION_FAILED)
    assert_nothing_changed(page, account)


def test_a_setup_confirmed_for_someone_else_is_refused(billing_page, account, console_errors):
    """Only the SetupIntent id comes back from the browser: the server checks it is this customer's own."""
    gateway = account.gateway
    stranger = gateway.client.v1.customers.create(params={"email": "stranger@example.com"})
    intent = gateway.client.v1.setup_intents.create(params={"customer": stranger.id})
    gateway.client.v1.setup_intents.confirm(intent.id, params={"payment_method": add_card(gateway, GOOD_CARD)})
    page = billing_page
    open_card_page(page)

    # A tampered page: the hidden field filled in, so card.js lets the form post it as is.
    page.locator("#setup-intent").evaluate("(input, id) => { input.value = id; }", intent.id)
    page.get_by_role("button", name="Save card").click()

    expect(page.locator("#card-errors")).to_have_text("That card setup was not found. Please enter your card again.")
    assert console_errors.take_expected(r"status of 400")  # the refused form is answered 400, which Chromium logs
    assert_nothing_changed(page, account)


# --- Subscriptions -----------------------------------------------------------------------------


def period_end_text(subscription: Subscription) -> str:
    """The period end as the pages print it, in the customer's time zone (UTC)."""
    return formats.date_format(timezone.localtime(subscription.current_period_end, ZoneInfo("UTC")), "DATE_FORMAT")


def test_self_cancel_at_period_end_then_keep(billing_page, account):
    page = billing_page
    subscription = account.subscription
    ends = period_end_text(subscription)
    page.goto("/billing/")
    row = subscription_row(page, subscription)
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.get_by_role("link", name="Update billing")).to_be_visible()

    row.get_by_role("link", name="Cancel", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/billing/subscriptions/{subscription.pk}/cancel/$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel Membership?")
    expect(page.locator("main")).to_contain_text(f"Your subscription ends on {ends}")
    page.get_by_role("button", name="Cancel at period end").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        f"Your subscription will end on {ends}. You keep access until then."
    )
    row = subscription_row(page, subscription)
    expect(row.locator(".badge")).to_have_text(f"Ends on {ends}")
    expect(row.get_by_role("link", name="Cancel", exact=True)).to_have_count(0)
    assert stripe_cancels_at_period_end(account) is True
    assert Subscription.objects.get(pk=subscription.pk).cancel_at_period_end is True

    row.get_by_role("button", name="Keep subscription").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text("Your subscription continues. Nothing more to do.")
    row = subscription_row(page, subscription)
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.get_by_role("button", name="Keep subscription")).to_have_count(0)
    expect(row.get_by_role("link", name="Cancel", exact=True)).to_be_visible()
    assert stripe_cancels_at_period_end(account) is False
    assert Subscription.objects.get(pk=subscription.pk).cancel_at_period_end is False


RETENTION_OFFER = "Stay and get 50% off your next 3 months."


def test_leaving_asks_why_offers_to_stay_once_then_cancels_with_the_reason(billing_page, account):
    page = billing_page
    subscription = account.subscription
    coupon = f"STAY{uuid.uuid4().hex[:8]}"  # one localstripe serves the whole session
    account.gateway.client.v1.coupons.create(
        params={"id": coupon, "percent_off": 50, "duration": "repeating", "duration_in_months": 3}
    )
    site_settings_update(data={"retention_coupon_id": coupon, "retention_offer_text": RETENTION_OFFER})
    page.goto("/billing/")

    subscription_row(page, subscription).get_by_role("link", name="Cancel", exact=True).click()
    page.get_by_label("Why are you cancelling?").select_option("too_expensive")
    page.get_by_label("Anything else you would like to tell us?").fill("Money is tight this year.")
    expect(page.locator("#retention-offer")).to_contain_text(RETENTION_OFFER)
    page.get_by_role("button", name="Take the offer and stay").click()

    expect(page).to_have_url(BILLING_URL)
    expect(page.locator(".message--success")).to_have_text(
        f"Thank you for staying. Your offer is applied: {RETENTION_OFFER}"
    )
    expect(subscription_row(page, subscription).locator(".badge")).to_have_text("Active")
    remote = account.gateway.client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert len(remote.discounts) == 1 and remote.cancel_at_period_end is False

    # The offer is made once: the next time, the page asks why and cancels.
    subscription_row(page, subscription).get_by_role("link", name="Cancel", exact=True).click()
    expect(page.locator("#retention-offer")).to_have_count(0)
    page.get_by_label("Why are you cancelling?").select_option("unused")
    page.get_by_role("button", name="Cancel at period end").click()

    expect(page.locator(".message--success")).to_contain_text("Your subscription will end on")
    remote = account.gateway.client.v1.subscriptions.retrieve(subscription.stripe_subscription_id)
    assert remote.cancel_at_period_end is True and remote.cancellation_details.feedback == "unused"
    given = CancellationFeedback.objects.filter(customer=account.customer).order_by("pk")
    assert [(f.reason, f.offer_accepted) for f in given] == [("too_expensive", True), ("unused", False)]


def csrf_token(page) -> str:
    """The page's CSRF token (every signed-in page has one in the account menu's log-out form)."""
    return page.locator("input[name=csrfmiddlewaretoken]").first.input_value()


def test_when_self_cancel_is_off_the_creators_instructions_show_instead(billing_page, account):
    page = billing_page
    site_settings_update(
        data={"self_cancel_enabled": False, "self_cancel_instructions": "Write to help@studio.example to cancel."}
    )
    page.goto("/billing/")
    expect(page.locator("#cancel-instructions")).to_contain_text("Write to help@studio.example to cancel.")
    row = subscription_row(page, account.subscription)
    expect(row.locator(".badge")).to_have_text("Active")
    expect(row.get_by_role("link", name="Cancel", exact=True)).to_have_count(0)

    # The confirm page, opened from an old bookmark, shows the instructions and no button.
    page.goto(f"/billing/subscriptions/{account.subscription.pk}/cancel/")
    expect(page.locator("main")).to_contain_text("Write to help@studio.example to cancel.")
    expect(page.get_by_role("button", name="Cancel at period end")).to_have_count(0)
    # And a cancellation posted anyway is refused.
    response = page.request.post(
        f"/billing/subscriptions/{account.subscription.pk}/cancel/", form={"csrfmiddlewaretoken": csrf_token(page)}
    )
    assert response.ok and response.url.endswith("/billing/")
    assert "Subscriptions cannot be cancelled online. Please contact us." in response.text()
    assert stripe_cancels_at_period_end(account) is False
    assert Subscription.objects.get(pk=account.subscription.pk).cancel_at_period_end is False


def test_when_the_processor_is_detached_billing_says_whom_to_contact(billing_page, account):
    page = billing_page
    site_settings_update(
        data={
            "processor_attached": False,
            "business_name": "Watercolour Studio",
            "business_email": "help@studio.example",
        }
    )
    for path in ("/billing/", "/billing/cards/new/", f"/billing/subscriptions/{account.subscription.pk}/cancel/"):
        page.goto(path)
        detached = page.locator("#billing-detached")
        expect(detached).to_contain_text("Payments for Watercolour Studio are handled directly by the business")
        expect(detached.get_by_role("link", name="help@studio.example")).to_have_attribute(
            "href", "mailto:help@studio.example"
        )
        expect(page.locator("#card-form")).to_have_count(0)
        expect(page.get_by_role("button", name="Cancel at period end")).to_have_count(0)

    page.goto("/")
    expect(page.locator("main").get_by_role("link", name=re.compile("^Billing"))).to_have_count(0)
    page.locator("details.menu > summary").click()
    menu = page.locator("details.menu .menu__list")
    expect(menu.get_by_role("link", name="Settings", exact=True)).to_be_visible()
    expect(menu.get_by_role("link", name="Billing", exact=True)).to_have_count(0)

    response = page.request.post("/billing/cards/setup/", headers={"X-CSRFToken": csrf_token(page)})
    assert response.status == 409
    assert response.json() == {"error": str(PROCESSOR_DETACHED)}


def test_detached_billing_refuses_changes_posted_directly(billing_page, account):
    """Forms from before the detach (an open tab) must not reach Stripe once billing is handled by the business."""
    page = billing_page
    page.goto("/billing/")
    subscription_row(page, account.subscription).get_by_role("link", name="Cancel", exact=True).click()
    page.get_by_role("button", name="Cancel at period end").click()
    expect(page.locator(".message--success")).to_be_visible()
    assert stripe_cancels_at_period_end(account) is True
    site_settings_update(data={"processor_attached": False})

    response = page.request.post(
        f"/billing/subscriptions/{account.subscription.pk}/keep/", form={"csrfmiddlewaretoken": csrf_token(page)}
    )

    assert response.status < 500  # the detached page, a redirect to it, or a refusal: anything but a change
    assert stripe_cancels_at_period_end(account) is True, "a detached processor was still changed"
    assert Subscription.objects.get(pk=account.subscription.pk).cancel_at_period_end is True


# --- Small screens -----------------------------------------------------------------------------


def scroll_width(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


def test_billing_pages_fit_a_360px_screen(new_page, account, tmp_path):
    """Wide content (the subscriptions table) scrolls inside its own box, never the whole page sideways."""
    page = new_page(viewport=MOBILE)
    sign_in_with_form(page, account.customer.user.email)
    widths = {}

    def measure(name: str) -> None:
        page.screenshot(path=tmp_path / f"{name}-360.png", full_page=True)
        widths[name] = scroll_width(page)

    page.goto("/billing/")
    expect(subscription_row(page, account.subscription)).to_be_visible()
    measure("billing")
    page.goto("/billing/cards/new/")
    expect(page.locator("#card-element input")).to_have_count(5)
    measure("card")
    page.goto(f"/billing/subscriptions/{account.subscription.pk}/cancel/")
    measure("cancel")
    # The widest row: a cancelling subscription, with its "Ends on …" badge and "Keep subscription" button.
    page.get_by_role("button", name="Cancel at period end").click()
    expect(subscription_row(page, account.subscription).get_by_role("button", name="Keep subscription")).to_be_visible()
    measure("billing-cancelling")

    assert {name: width for name, width in widths.items() if width > MOBILE["width"]} == {}, (
        f"pages wider than {MOBILE['width']}px (screenshots in {tmp_path})"
    )
