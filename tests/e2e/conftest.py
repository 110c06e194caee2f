"""Browser fixtures for the end-to-end tests: Debian Chromium driven by Playwright's sync API.

Nothing is downloaded: the tests use the distribution's Chromium (``apt-get install chromium``),
or the binary named by ``CHROMIUM_PATH``. Without it they are skipped locally and fail in CI.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told that this is deliberate.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from tests.billing import conftest as billing_fixtures  # noqa: E402
from tests.factories import DEFAULT_PASSWORD, STAFF_TOTP_SECRET, CustomerFactory, totp_code  # noqa: E402

# The same localstripe launcher as the gateway tests (a server per folder that uses it, per session).
localstripe_url = billing_fixtures.localstripe_url

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1100, "height": 800}
MOBILE = {"width": 360, "height": 740}
# Generous for a loaded CI machine, short enough that a hang fails quickly.
TIMEOUT_MS = 10_000


def pytest_collection_modifyitems(config, items):
    """Everything under tests/e2e/ is an e2e test, so `-m "not e2e"` leaves the browser out."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)


def _chromium_path() -> str | None:
    path = os.environ.get("CHROMIUM_PATH") or "/usr/bin/chromium"
    if os.path.isfile(path) and os.access(path, os.X_OK):
        return path
    return shutil.which(path) if os.sep not in path else None


@pytest.fixture(scope="session")
def browser():
    path = _chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(
                "Debian chromium is required in CI: apt-get install chromium (or set CHROMIUM_PATH)", pytrace=False
            )
        pytest.skip("Chromium not found: apt-get install chromium, or set CHROMIUM_PATH to its binary")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class ConsoleErrors(list):
    """Console errors and uncaught exceptions of every page in a browser context."""

    checked = 0  # how many were already reported

    def watch(self, page):
        page.on(
            "console",
            lambda msg: (
                self.append(f"console: {msg.text} ({msg.location.get('url')})") if msg.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.append(f"pageerror: {error}"))
        return page

    def take_expected(self, pattern: str) -> list[str]:
        """Take out, and return, the errors matching `pattern` that a test provoked on purpose.

        The test should assert what it got back, so an expected error that stops happening is noticed too.
        """
        fresh = self[self.checked :]
        taken = [error for error in fresh if re.search(pattern, error)]
        self[self.checked :] = [error for error in fresh if not re.search(pattern, error)]
        return taken


def _new_page(browser, live_server, errors: ConsoleErrors, **context_options):
    context = browser.new_context(base_url=live_server.url, **context_options)
    context.set_default_timeout(TIMEOUT_MS)
    context.set_default_navigation_timeout(TIMEOUT_MS)
    context.on("page", errors.watch)
    page = context.new_page()
    return context, page


@pytest.fixture
def console_errors():
    """The page's console errors; each test using a page fails if any were logged.

    Content-Security-Policy violations (inline scripts or styles, foreign origins) are logged
    as console errors, so this also checks that the pages keep to the site's strict policy.
    """
    errors = ConsoleErrors()
    yield errors
    late = errors[errors.checked :]
    assert not late, "The browser logged errors:\n" + "\n".join(late)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """Fail the test itself (not its teardown) when the browser logged errors while it ran."""
    errors = item.funcargs.get("console_errors")
    try:
        result = yield
    except BaseException:
        if errors:
            item.add_report_section("call", "browser console", "\n".join(errors))
            errors.checked = len(errors)
        raise
    if errors:
        errors.checked = len(errors)
        raise AssertionError("The browser logged errors:\n" + "\n".join(errors))
    return result


@pytest.fixture
def new_page(browser, live_server, console_errors):
    """A factory for pages in fresh contexts, e.g. new_page(java_script_enabled=False)."""
    contexts = []

    def make(**context_options):
        context_options.setdefault("viewport", DESKTOP)
        context, page = _new_page(browser, live_server, console_errors, **context_options)
        contexts.append(context)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def stripe_live(settings, localstripe_url):
    """Point the live server's billing at localstripe: the real SDK, and its fake Stripe.js in the page.

    The CSP middleware reads settings.SECURE_CSP on each response, so the overridden policy (with
    the localstripe origin allowed for scripts and fetches) is the one the browser gets.
    Returns a StripeGateway for the test's own set-up and checks against the same server.
    """
    from billing.gateways.stripe import StripeGateway

    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = "sk_test_12345"
    settings.STRIPE_PUBLISHABLE_KEY = "pk_test_12345"
    settings.STRIPE_JS_URL = f"{localstripe_url}/js.stripe.com/v3/"
    csp = {directive: list(sources) for directive, sources in settings.SECURE_CSP.items()}
    for directive in ("script-src", "connect-src"):
        csp[directive].append(localstripe_url)
    settings.SECURE_CSP = csp
    return StripeGateway()


@pytest.fixture
def e2e_customer(transactional_db):
    return CustomerFactory(full_name="Ada Lovelace", time_zone="UTC")


def field(page, label: str):
    """The form control labelled exactly `label` (Django appends a colon to labels)."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}:?$"))


def enter_staff_totp_code(page) -> None:
    """allauth's two-factor step, with the code of the authenticator every factory-made staff user has."""
    page.wait_for_url(re.compile(r"/accounts/2fa/authenticate/$"))
    code = totp_code(STAFF_TOTP_SECRET, seconds_needed=8)
    page.locator("input[name=code]").fill(code)
    page.get_by_role("button", name="Sign In").click()


def sign_in_with_form(page, email: str, password: str = DEFAULT_PASSWORD, *, staff: bool = False) -> None:
    """Sign in through the real login form (and, for staff, the two-factor step) and wait for the home page."""
    page.goto("/accounts/login/")
    page.locator("input[name=login]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form").filter(has=page.locator("input[name=password]")).locator("button[type=submit]").click()
    if staff:
        enter_staff_totp_code(page)
    # The login page's own URL ends in "/" too, so match the home page's whole path.
    page.wait_for_url(re.compile(r"^https?://[^/]+/$"))
    page.locator("details.menu > summary").wait_for()


@pytest.fixture
def signed_in_page(page, e2e_customer):
    sign_in_with_form(page, e2e_customer.user.email)
    return page


@pytest.fixture(autouse=True)
def _rows_migrations_made(request):
    """Browser tests flush the database after each test, and with it the rows data migrations made
    (the Site allauth needs); put the Site back so that test order does not matter."""
    if "live_server" not in request.fixturenames:
        return
    request.getfixturevalue("transactional_db")
    from django.conf import settings
    from django.contrib.sites.models import Site

    Site.objects.get_or_create(pk=settings.SITE_ID, defaults={"domain": "localhost", "name": "Customer Portal"})


@pytest.fixture(autouse=True)
def _fresh_rate_limits(request):
    """Every browser test signs in through the real form, and the suite does so more than the 30 times a
    minute one address may (ACCOUNT_RATE_LIMITS): start each with no attempts counted, so that a test
    does not depend on how many signed in before it. The database cache outlives the flushes."""
    if "live_server" not in request.fixturenames:
        return
    request.getfixturevalue("transactional_db")
    from django.core.cache import cache

    cache.clear()
