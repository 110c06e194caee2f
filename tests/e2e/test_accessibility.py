"""Accessibility: axe-core on every customer page, the hub link pages and the main admin pages;
a keyboard-only journey through settings and the card page; nothing cut off at 360 px wide.

axe-core comes from npm (package.json pins it; `make install` runs `npm ci`). It is injected with
page.evaluate, which the site's Content-Security-Policy does not govern: a <script> tag with the
same source would be an inline script, and the policy blocks those.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone
from playwright.sync_api import expect

from accounts.hub import HubLinkTokenGenerator, hub_link_token
from billing.gateways.fake import FakeGateway
from billing.models import Card, Subscription
from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
from portal.services import site_settings_update
from purchases.services import purchase_record
from tests.factories import CustomerFactory, ListedCustomerFactory, OfferFactory

from .conftest import MOBILE, field, sign_in_with_form
from .test_billing_journey import account  # noqa: F401 (the fixture: a customer with a card and a subscription at localstripe)

pytestmark = pytest.mark.e2e

AXE_JS = Path(settings.BASE_DIR) / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.0, 2.1 and 2.2 at levels A and AA (2.2 adds no level A rule to axe's).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FAILING_IMPACTS = {"serious", "critical"}
# Boxes whose content is wider than they are and is hidden or scrolled sideways: a table in a
# scrolling wrapper fits the page, but its last columns are cut off all the same. Form controls
# scroll their own text, visually hidden boxes (1 px wide) are for screen readers, and
# text-overflow: ellipsis is a deliberate cut (long names in the top bar).
CLIPPED_BOXES = """() => [...document.querySelectorAll('body *')].filter(el => {
    if (el.closest('.skip-link, input, select, textarea')) return false;
    if (el.clientWidth <= 1 || !el.getClientRects().length) return false;
    const style = getComputedStyle(el);
    return el.scrollWidth > el.clientWidth + 1 && style.overflowX !== 'visible' && style.textOverflow !== 'ellipsis';
}).map(el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).trim().split(/\\s+/).join('.') : '')
          + ` (${el.scrollWidth} px in ${el.clientWidth} px)`)"""


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_JS.is_file():
        if os.environ.get("CI"):
            pytest.fail("axe-core is required in CI: run `npm ci` (make install does)", pytrace=False)
        pytest.skip("axe-core not installed: run `npm ci`")
    return AXE_JS.read_text()


class Audit:
    """Runs axe on pages as a test visits them and keeps every violation, to report them all at once."""

    def __init__(self, source: str, screenshots: Path):
        self.source = source
        self.screenshots = screenshots
        self.violations: dict[str, list[dict]] = {}
        self.cut_off: dict[str, list[str]] = {}

    def check(self, page, name: str, *, mobile: bool = True) -> None:
        """Run axe on the page as it is now; for customer pages, also look at it 360 px wide."""
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(self.source)
        found = page.evaluate(
            """tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']})
                .then(results => results.violations.map(v => ({
                    id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary.replace(/\\s+/g, ' ')),
                })))""",
            AXE_TAGS,
        )
        self.violations[name] = found
        if mobile:
            self.check_narrow(page, name)

    def check_narrow(self, page, name: str) -> None:
        desktop = page.viewport_size
        page.set_viewport_size(MOBILE)
        try:
            width = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=self.screenshots / f"{re.sub(r'[^\w-]+', '-', name)}.png", full_page=True)
            if width > MOBILE["width"]:
                self.cut_off[name] = [f"the page is {width} px wide"]
            if clipped := page.evaluate(CLIPPED_BOXES):
                self.cut_off.setdefault(name, []).extend(clipped)
        finally:
            page.set_viewport_size(desktop)

    def assert_clean(self) -> None:
        lines = []
        for name, violations in self.violations.items():
            for violation in violations:
                if violation["impact"] in FAILING_IMPACTS:
                    lines.append(f"{name}: [{violation['impact']}] {violation['id']}: {violation['help']}")
                    lines.extend(f"    {node}" for node in violation["nodes"])
        lines.extend(f"{name}: cut off at 360 px: {', '.join(boxes)}" for name, boxes in self.cut_off.items())
        assert not lines, "Accessibility problems:\n" + "\n".join(lines)

    def summary(self) -> str:
        return "; ".join(
            f"{name}: {', '.join(f'{v["id"]} ({v["impact"]})' for v in violations) or 'clean'}"
            for name, violations in self.violations.items()
        )


@pytest.fixture
def audit(axe_source, tmp_path):
    audit = Audit(axe_source, tmp_path)
    yield audit
    print(f"\naxe ({len(audit.violations)} pages): {audit.summary()}\nscreenshots: {tmp_path}")


@pytest.fixture(params=["light", "dark"])
def themed_page(request, new_page):
    """A page in the light, then the dark colour scheme: the stylesheet has a palette for each."""
    return new_page(color_scheme=request.param)


@pytest.fixture
def fake_gateway(settings):
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()


# --- Signed out ----------------------------------------------------------------------------------


def test_sign_in_sign_up_and_password_reset_pages(themed_page, audit, transactional_db):
    page = themed_page
    for name, path in [
        ("sign in", "/accounts/login/"),
        ("sign up", "/accounts/signup/"),
        ("password reset", "/accounts/password/reset/"),
        ("sign in by code", "/accounts/login/code/"),
    ]:
        page.goto(path)
        audit.check(page, name)
    audit.assert_clean()


def test_hub_link_pages(themed_page, audit, console_errors, transactional_db):
    page = themed_page
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="UTC")
    page.goto(f"/hub/{hub_link_token.make_token(customer)}/")
    expect(page.get_by_role("button", name="Sign in and continue")).to_be_visible()
    audit.check(page, "hub confirm")

    class LongAgo(HubLinkTokenGenerator):
        def _now(self):
            return super()._now() - timedelta(days=settings.HUB_LINK_MAX_AGE_DAYS + 1)

    page.goto(f"/hub/{LongAgo().make_token(customer)}/")
    expect(page.get_by_text("This link has expired")).to_be_visible()
    audit.check(page, "hub expired")
    page.goto("/hub/1-abc-0000000000000000/")
    expect(page.get_by_role("heading", name="This link does not work")).to_be_visible()
    audit.check(page, "hub invalid")
    page.get_by_label("Email address").fill(customer.user.email)
    page.get_by_role("button", name="Email me a fresh link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    audit.check(page, "hub link sent")

    # Chromium logs each 4xx page as a console error; these two are the expected answers.
    assert len(console_errors.take_expected("status of 400")) == 2
    audit.assert_clean()


# --- Signed in -----------------------------------------------------------------------------------


@pytest.fixture
def shopper(e2e_customer, fake_gateway):
    """The signed-up customer with a default card, an active subscription, a purchase and its receipt."""
    stripe_id = stripe_customer_ensure(customer=e2e_customer)
    card_set_default(customer=e2e_customer, payment_method_id="pm_card_visa", by=None)
    offer = OfferFactory(
        name="Membership",
        kind="subscription",
        interval="month",
        price_amount=1500,
        stripe_price_id="price_member",
        switch_group="member",
    )
    subscription = subscription_sync(
        remote=fake_gateway.subscription_create(customer_id=stripe_id, amount=1500, price_id=offer.stripe_price_id)
    )
    subscription.yearly = OfferFactory(  # the offer it may switch to
        name="Membership yearly",
        kind="subscription",
        interval="year",
        price_amount=15000,
        stripe_price_id="price_member_yearly",
        switch_group="member",
    )
    FakeGateway.prices["price_member_yearly"] = (15000, "year")
    purchase = purchase_record(customer=e2e_customer, offer=OfferFactory(name="Pottery Basics course"))
    # So the billing page offers, and their pages show, a pause and a change of plan.
    site_settings_update(data={"self_pause_enabled": True, "plan_changes_enabled": True})
    ListedCustomerFactory(full_name="Grace Hopper")
    return e2e_customer, subscription, purchase.receipts.get()


def test_customer_pages(themed_page, audit, shopper):
    page = themed_page
    customer, subscription, receipt = shopper
    sign_in_with_form(page, customer.user.email)
    assert Card.objects.filter(customer=customer, is_default=True).exists()

    audit.check(page, "home")
    page.get_by_role("link", name="Update my info").click()
    expect(page.locator("dialog#info-dialog")).to_be_visible()
    expect(field(page.locator("dialog#info-dialog"), "Full name")).to_be_focused()
    audit.check(page, "home, Update my info dialog")
    # The cancel page at its fullest: the reason form and the retention offer.
    site_settings_update(data={"retention_coupon_id": "STAY50", "retention_offer_text": "Stay for half price."})

    for name, path in [
        ("settings: contact", "/settings/contact/"),
        ("settings: profile", "/settings/profile/"),
        ("settings: social", "/settings/social/"),
        ("settings: password", "/settings/password/"),
        ("settings: email", "/accounts/email/"),
        ("settings: two-factor", "/accounts/2fa/"),
        ("settings: sessions", "/accounts/sessions/"),
        ("settings: your data", "/settings/data/"),
        ("billing", "/billing/"),
        ("cancel subscription", f"/billing/subscriptions/{subscription.pk}/cancel/"),
        ("pause subscription", f"/billing/subscriptions/{subscription.pk}/pause/"),
        ("change plan", f"/billing/subscriptions/{subscription.pk}/plan/"),
        ("change plan preview", f"/billing/subscriptions/{subscription.pk}/plan/?offer={subscription.yearly.pk}"),
        ("purchases", "/purchases/"),
        ("purchases: searched", "/purchases/?year=2000&number=R"),
        ("receipt", f"/purchases/receipts/{receipt.number}/"),
        ("directory", "/directory/"),
    ]:
        response = page.goto(path)
        assert response.status == 200, f"{name}: {path} answered {response.status}"
        expect(page.locator("main h1").first).to_be_visible()
        audit.check(page, name)
    # The billing page with a failed payment to pay (billing.recovery): its panel and "Pay now".
    Subscription.objects.filter(pk=subscription.pk).update(
        status="past_due", unpaid_invoice_id="in_audit", unpaid_amount=1500, unpaid_invoice_date=timezone.now()
    )
    page.goto("/billing/")
    expect(page.locator("[data-unpaid]")).to_be_visible()
    audit.check(page, "billing, a payment failed")
    audit.assert_clean()


def test_a_brand_colour_keeps_the_pages_readable(themed_page, audit, e2e_customer):
    """The darkest and one of the lightest colours the site settings accept, on pages that show the accent as
    link, button, and text on the highlighted background, in the light and the dark palette."""
    page = themed_page
    sign_in_with_form(page, e2e_customer.user.email)
    for colour in ["#000000", "#c0392b"]:
        site_settings_update(data={"brand_colour": colour})
        for name, path in [("home", "/"), ("settings: contact", "/settings/contact/")]:
            page.goto(path)
            expect(page.locator("main h1").first).to_be_visible()
            audit.check(page, f"{name} in {colour}", mobile=False)
    audit.assert_clean()


def test_card_page_with_stripe_js(themed_page, audit, account):  # noqa: F811 (the imported fixture)
    page = themed_page
    sign_in_with_form(page, account.customer.user.email)
    page.goto("/billing/cards/new/")
    expect(page.locator("#card-element input")).to_have_count(5)
    audit.check(page, "new card")
    audit.assert_clean()


# --- Admin ---------------------------------------------------------------------------------------


def test_admin_pages(themed_page, audit, fake_gateway, transactional_db):
    page = themed_page
    admin = CustomerFactory(full_name="Sam Staff", user__is_staff=True, user__is_superuser=True, time_zone="UTC")
    buyer = CustomerFactory(full_name="Ada Lovelace", time_zone="UTC")
    purchase = purchase_record(customer=buyer, offer=OfferFactory(name="Pottery Basics course"))
    sign_in_with_form(page, admin.user.email, staff=True)

    for name, path in [
        ("admin: dashboard", "/admin/"),
        ("admin: contacts", "/admin/accounts/customer/"),
        ("admin: contact", f"/admin/accounts/customer/{buyer.pk}/change/"),
        ("admin: purchase", f"/admin/purchases/purchase/{purchase.pk}/change/"),
        ("admin: refund confirm", f"/admin/purchases/purchase/{purchase.pk}/refund/"),
        ("admin: resend receipt confirm", f"/admin/purchases/receipt/{purchase.receipts.get().pk}/resend/"),
        ("admin: erase account confirm", f"/admin/accounts/customer/{buyer.pk}/erase/"),
    ]:
        response = page.goto(path)
        assert response.status == 200, f"{name}: {path} answered {response.status}"
        audit.check(page, name, mobile=False)
    audit.assert_clean()


# --- Keyboard only -------------------------------------------------------------------------------


def tab_to(page, selector: str, *, backwards: bool = False, limit: int = 60) -> None:
    """Press Tab until the focused element matches `selector`, then check its focus ring is visible."""
    for _ in range(limit):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            assert_focus_visible(page)
            return
    raise AssertionError(f"Tab never reached {selector}")


def assert_focus_visible(page) -> None:
    style = page.evaluate(
        """() => {
            const el = document.activeElement, s = getComputedStyle(el);
            return {outline: s.outlineStyle, width: s.outlineWidth, element: el.outerHTML.slice(0, 80)};
        }"""
    )
    assert style["outline"] != "none" and style["width"] != "0px", f"no visible focus on {style['element']}"


def test_keyboard_only_settings_and_card_update(page, account):  # noqa: F811 (the imported fixture)
    sign_in_with_form(page, account.customer.user.email)
    page.locator("body").focus()  # as after a fresh page load: nothing focused yet

    # Home → account menu → Settings.
    tab_to(page, "details.menu > summary")
    page.keyboard.press("Enter")
    expect(page.locator("details.menu")).to_have_attribute("open", "")
    tab_to(page, ".menu__list a[href='/settings/contact/']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/settings/contact/$"))

    # Change the name and save with Enter on the button.
    tab_to(page, "input[name=full_name]")
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type("Grace Hopper")
    tab_to(page, "main button[type=submit]")
    page.keyboard.press("Enter")
    expect(page.locator(".message--success")).to_have_text("Your contact information was saved.")
    account.customer.refresh_from_db()
    assert account.customer.full_name == "Grace Hopper"

    # Account menu → Billing → Replace card.
    page.locator("body").focus()
    tab_to(page, "details.menu > summary")
    page.keyboard.press("Space")
    tab_to(page, ".menu__list a[href='/billing/']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/billing/$"))
    tab_to(page, "a[href='/billing/cards/new/']")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/billing/cards/new/$"))
    expect(page.locator("#card-element input")).to_have_count(5)

    # localstripe's Card Element is plain inputs in the page: Tab through them, then Space on Save card.
    for placeholder, value in [
        ("number", "4242424242424242"),
        ("exp_month", "12"),
        ("exp_year", "31"),
        ("cvc", "123"),
        ("postal_code", "SW1A 1AA"),
    ]:
        tab_to(page, f"#card-element input[placeholder={placeholder}]")
        page.keyboard.type(value)
    tab_to(page, "#card-submit")
    page.keyboard.press("Space")

    page.wait_for_url(re.compile(r"/billing/$"))
    expect(page.locator(".message--success")).to_have_text("Your card ending in 4242 is now your default card.")
    assert Card.objects.get(customer=account.customer, is_default=True).last4 == "4242"
