"""Every customer page is valid HTML: the Nu Html Checker (vnu.jar, the W3C's) finds no error.

vnu.jar comes from npm (package.json pins vnu-jar; `make install` runs `npm ci`) and runs on Java
(Debian's `default-jre-headless`). VNU_JAR names another copy of the jar. Without Java or the jar the
test is skipped locally and fails in CI.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.hub import hub_link_token
from billing.gateways.fake import FakeGateway
from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
from portal.models import SiteSettings
from purchases.services import purchase_record, refund_record
from tests.factories import CustomerFactory, ListedCustomerFactory, OfferFactory

pytestmark = pytest.mark.django_db

VNU_JAR = Path(os.environ.get("VNU_JAR") or Path(settings.BASE_DIR) / "node_modules/vnu-jar/build/dist/vnu.jar")
# A page of ours that is a fragment, swapped into a page by htmx, is checked inside this document.
FRAGMENT_DOCUMENT = '<!DOCTYPE html><html lang="en"><head><title>Fragment</title></head><body>{}</body></html>'


@pytest.fixture(scope="session")
def vnu() -> list[str]:
    java = shutil.which("java")
    if java is None or not VNU_JAR.is_file():
        missing = "Java (apt-get install default-jre-headless)" if java is None else f"{VNU_JAR} (npm ci)"
        if os.environ.get("CI"):
            pytest.fail(f"the Nu Html Checker is required in CI: {missing}", pytrace=False)
        pytest.skip(f"the Nu Html Checker cannot run: {missing}")
    return [java, "-jar", str(VNU_JAR)]


@pytest.fixture
def shopper(settings):
    """A customer with a default card, a live subscription, purchases (one refunded, one corrected copy)."""
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="Europe/Berlin", country="GB", city="London")
    stripe_id = stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id="pm_card_visa", by=None)
    offer = OfferFactory(
        name="Membership", kind="subscription", interval="month", stripe_price_id="price_member", switch_group="member"
    )
    yearly = OfferFactory(
        name="Membership yearly",
        kind="subscription",
        interval="year",
        price_amount=15000,
        stripe_price_id="price_member_yearly",
        switch_group="member",
    )
    FakeGateway.prices["price_member_yearly"] = (15000, "year")
    subscription = subscription_sync(
        remote=FakeGateway().subscription_create(customer_id=stripe_id, amount=1500, price_id=offer.stripe_price_id)
    )
    purchase = purchase_record(customer=customer, offer=OfferFactory(name="Pottery Basics course"))
    refund_record(purchase=purchase, amount=500)
    purchase_record(customer=customer, offer=OfferFactory(name="Glazing workshop"))
    ListedCustomerFactory(full_name="Grace Hopper", x_username="grace", website_url="https://example.com/")
    subscription.yearly = yearly  # the offer it may switch to
    yield customer, subscription, purchase.receipts.get()
    FakeGateway.reset()


def test_every_customer_page_is_valid_html(vnu, shopper, tmp_path):
    customer, subscription, receipt = shopper
    visitor = Client()
    signed_in = Client()
    signed_in.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    SiteSettings.objects.update_or_create(pk=1, defaults={"self_pause_enabled": True, "plan_changes_enabled": True})
    plan_url = f"/billing/subscriptions/{subscription.pk}/plan/"
    pages = {
        "sign in": visitor.get("/accounts/login/"),
        "sign up": visitor.get("/accounts/signup/"),
        "password reset": visitor.get("/accounts/password/reset/"),
        "sign in by code": visitor.get("/accounts/login/code/"),
        "hub link": visitor.get(f"/hub/{hub_link_token.make_token(customer)}/", follow=True),
        "hub link broken": visitor.get("/hub/1-abc-0000000000000000/"),
        "home": signed_in.get("/"),
        "contact": signed_in.get("/settings/contact/"),
        "contact with errors": signed_in.post("/settings/contact/", {"full_name": "<b>", "phone": "x"}),
        "contact dialog": signed_in.get("/settings/contact/", headers={"HX-Request": "true"}),
        "profile": signed_in.get("/settings/profile/"),
        "social": signed_in.get("/settings/social/"),
        "social with errors": signed_in.post("/settings/social/", {"website_url": "http://example.com"}),
        "password": signed_in.get("/settings/password/"),
        "password with errors": signed_in.post("/settings/password/", {"oldpassword": "wrong", "password1": "a"}),
        "email": signed_in.get("/accounts/email/"),
        "two-factor": signed_in.get("/accounts/2fa/"),
        "sessions": signed_in.get("/accounts/sessions/"),
        "billing": signed_in.get("/billing/"),
        "new card": signed_in.get("/billing/cards/new/"),
        "cancel subscription": signed_in.get(f"/billing/subscriptions/{subscription.pk}/cancel/"),
        "pause subscription": signed_in.get(f"/billing/subscriptions/{subscription.pk}/pause/"),
        "change plan": signed_in.get(plan_url),
        "change plan preview": signed_in.get(plan_url, {"offer": subscription.yearly.pk}),
        "purchases": signed_in.get("/purchases/"),
        "purchases searched": signed_in.get("/purchases/?offer=1&year=2000&number=R"),
        "your data": signed_in.get("/settings/data/"),
        "your data with errors": signed_in.post("/settings/data/delete/", {"password": "wrong"}),
        "receipt": signed_in.get(f"/purchases/receipts/{receipt.number}/"),
        "directory": signed_in.get("/directory/"),
    }
    files = {}
    for name, response in pages.items():
        assert response.status_code in (200, 400), f"{name}: {response.status_code}"
        html = response.content.decode()
        if not html.lstrip().lower().startswith("<!doctype html>"):
            html = FRAGMENT_DOCUMENT.format(html)
        path = tmp_path / f"{re.sub(r'[^a-z0-9]+', '-', name)}.html"
        path.write_text(html)
        files[str(path)] = name

    checked = subprocess.run(
        [*vnu, "--errors-only", "--format", "json", *files], capture_output=True, text=True, timeout=300
    )

    messages = json.loads(checked.stderr or checked.stdout)["messages"]
    errors = [
        f"{files.get(m.get('url', '').removeprefix('file:'), m.get('url'))}:{m.get('lastLine')}: {m['message']}"
        f" — {m.get('extract', '').strip()}"
        for m in messages
        if m["type"] == "error"
    ]
    assert errors == [], "Nu Html Checker errors:\n" + "\n".join(errors)
    assert len(files) == len(pages)
