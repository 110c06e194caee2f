"""Logs carry no passwords, tokens, card data, keys or webhook bodies, at any level the settings let
through; a forced error shows the generic 500 page and nothing of the error."""

import logging

import pytest
from django.conf import settings
from django.test import Client

from accounts.hub import hub_link_token
from accounts.models import Customer
from tests.billing.conftest import WEBHOOK_SECRET, stripe_event, stripe_signature
from tests.factories import DEFAULT_PASSWORD
from tests.webhooks import commit_callbacks_run

from .sweep import own_path, portal_routes, record_figures

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "brand-new-Secret-4711"
WRONG_PASSWORD = "wrong-Guess-0815"
CARD_NUMBER = "4242424242424242"
WEBHOOK_MARKER = "Secret Lane 42, Flat 7"


class Captured(logging.Handler):
    """Every record any logger lets through, formatted with its traceback, as one text."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture
def captured_logs():
    """Capture at DEBUG, the most a deployment could set with LOG_LEVEL (per-logger levels still apply)."""
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


def test_no_log_line_carries_a_secret(world, captured_logs, settings, client, gateway, run_tasks):
    me, _victim = world
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    user = me.customer.user
    secrets = {
        "password": DEFAULT_PASSWORD,
        "new password": NEW_PASSWORD,
        "wrong password": WRONG_PASSWORD,
        "card number": CARD_NUMBER,
        "webhook secret": WEBHOOK_SECRET,
        "Django secret key": settings.SECRET_KEY,
        "Stripe secret key": settings.STRIPE_SECRET_KEY,
    }

    # Sign-in: a failure, a success, a password change; card data posted where it does not belong.
    client.post("/accounts/login/", {"login": user.email, "password": WRONG_PASSWORD})
    client.post("/accounts/login/", {"login": user.email, "password": DEFAULT_PASSWORD})
    secrets["session id"] = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.get("/settings/password/")
    secrets["CSRF token"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    client.post(
        "/settings/password/",
        {"oldpassword": DEFAULT_PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    client.post("/billing/cards/new/", {"setup_intent": "seti_123", "card_number": CARD_NUMBER, "cvc": "123"})
    # The card flow: the SetupIntent's client secret goes to the browser, never to the logs.
    secrets["setup intent client secret"] = client.post("/billing/cards/setup/").json()["client_secret"]

    # Links in emails: the hub link (confirm page, sign-in) and a one-click unsubscribe.
    hub_token = hub_link_token.make_token(Customer.objects.select_related("user").get(pk=me.customer.pk))
    secrets["hub token"] = hub_token
    visitor = Client()
    assert visitor.get(f"/hub/{hub_token}/", follow=True).status_code == 200
    # A browser whose CSRF token went missing (or a mail scanner pressing the button) fails the CSRF
    # check, which logs the path: the token is no longer in it.
    scanner = Client(enforce_csrf_checks=True)
    scanner.get(f"/hub/{hub_token}/")
    scanner.cookies.pop(settings.CSRF_COOKIE_NAME, None)
    assert scanner.post("/hub/continue/").status_code == 403
    assert visitor.post("/hub/continue/").status_code == 302
    unsubscribe = own_path(next(r for r in portal_routes() if r.name == "accounts:unsubscribe"), me, valid_tokens=True)
    secrets["unsubscribe token"] = unsubscribe.split("/")[-2]
    Client().post(unsubscribe)

    # Webhooks: one applied, one failing in its handler, one forged; their bodies stay out of the logs.
    body = stripe_event(
        "customer.subscription.updated",
        {"id": me.subscription.stripe_subscription_id, "object": "subscription", "address": WEBHOOK_MARKER},
    )
    failing = stripe_event("invoice.paid", {"id": "in_missing", "object": "invoice", "address": WEBHOOK_MARKER})
    for payload, signature in [
        (body, stripe_signature(body)),
        (failing, stripe_signature(failing)),
        (body, stripe_signature(body, secret="whsec_forged")),
    ]:
        secrets.setdefault("webhook signature", signature.split("v1=")[1])
        with commit_callbacks_run():
            Client().post(
                "/stripe/webhook/", payload, content_type="application/json", headers={"Stripe-Signature": signature}
            )
    run_tasks()  # the worker applies the two genuine ones
    secrets["webhook body"] = WEBHOOK_MARKER

    text = "\n".join(captured_logs.lines)
    assert any("failed" in line for line in captured_logs.lines)  # the capture saw the failure being logged
    leaked = [name for name, secret in secrets.items() if secret and secret in text]
    record_figures("logs", lines=len(captured_logs.lines), secrets=len(secrets), leaked=len(leaked))
    assert leaked == []


def test_a_forced_error_shows_the_generic_500_page_and_nothing_of_the_error(
    client_logged_in, monkeypatch, captured_logs
):
    import purchases.views

    def broken(**kwargs):
        raise RuntimeError("selector exploded near column stripe_charge_id")

    monkeypatch.setattr(purchases.views.selectors, "purchases_for_customer", broken)
    client_logged_in.raise_request_exception = False

    response = client_logged_in.get("/purchases/")

    body = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in body
    for detail in (
        "RuntimeError",
        "exploded",
        "stripe_charge_id",
        "Traceback",
        settings.SECRET_KEY,
        "purchases/views.py",
    ):
        assert detail not in body
    assert response["Content-Security-Policy"] and response["X-Content-Type-Options"] == "nosniff"
    assert any("Internal Server Error: /purchases/" in line for line in captured_logs.lines)  # staff still learn of it


def test_an_error_during_sign_in_logs_the_path_but_not_the_password(client, customer, monkeypatch, captured_logs):
    from allauth.account import adapter

    def broken(self, request, **credentials):
        raise RuntimeError("authentication backend unavailable")

    monkeypatch.setattr(adapter.DefaultAccountAdapter, "authenticate", broken)
    client.raise_request_exception = False

    response = client.post("/accounts/login/", {"login": customer.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    text = "\n".join(captured_logs.lines)
    assert "Internal Server Error: /accounts/login/" in text
    assert DEFAULT_PASSWORD not in text


def test_the_log_handler_redacts_a_link_token_in_a_path_someone_crafted(client, customer, caplog):
    """A POST to a hub link (our pages never send one) answers 405 and Django logs its path: the
    portal's console handler writes it with the token replaced."""
    from portal.logfilters import RedactLinkTokens

    [console] = [h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler]
    assert any(isinstance(f, RedactLinkTokens) for f in console.filters)
    token = hub_link_token.make_token(Customer.objects.select_related("user").get(pk=customer.pk))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        assert client.post(f"/hub/{token}/").status_code == 405
    [record] = [r for r in caplog.records if r.name == "django.request"]

    assert console.filter(record)
    assert token not in console.format(record)
    assert "/hub/[token]/" in console.format(record)
    plain = logging.makeLogRecord({"msg": "GET /hub/new-link/ and /hub/continue/"})
    RedactLinkTokens().filter(plain)
    assert plain.getMessage() == "GET /hub/new-link/ and /hub/continue/"  # pages without a token stay as they are
