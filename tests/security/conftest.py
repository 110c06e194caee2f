"""Fixtures of the security sweeps: two customers who each own one of every object a page takes
(cards, a subscription, purchases with receipts, access grants), the billing fixtures reused from
tests/billing, and clients for each role."""

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings as django_settings
from django.core.cache import cache

from accounts.models import Customer, User
from billing.models import Card, Subscription
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from purchases.models import AccessGrant, Purchase, Receipt, Refund
from tests.billing import conftest as billing_fixtures
from tests.factories import CustomerFactory, OfferFactory, RecordedPurchaseFactory
from tests.portal.test_security import production_env

from .sweep import fingerprint

# The billing fixtures, shared rather than copied (the same way tests/e2e does it).
gateway = billing_fixtures.gateway
webhook_secret = billing_fixtures.webhook_secret
post_webhook = billing_fixtures.post_webhook
stripe_resources = billing_fixtures.stripe_resources

BACKEND = "accounts.backends.PortalAuthenticationBackend"

# Every table a customer's request could change; compared whole before and after a sweep.
GUARDED_MODELS = (
    User,
    Customer,
    EmailAddress,
    Card,
    Subscription,
    Purchase,
    Receipt,
    Refund,
    AccessGrant,
    SiteSettings,
    OutboundEmail,
    AuditEntry,
)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """The sweeps send many requests; each test starts with allauth's counters at zero."""
    cache.clear()


@dataclass
class Holdings:
    """What one customer owns: one of every kind of object a portal page takes."""

    customer: Customer
    cards: list[Card]
    subscription: Subscription
    purchase: Purchase  # paid at the processor: it has Stripe invoice and charge ids
    receipt: Receipt

    @property
    def markers(self) -> list[str]:
        """Strings that must never appear on another customer's pages."""
        return [
            self.customer.full_name,
            self.customer.email,
            self.receipt.number,
            self.subscription.stripe_subscription_id,
            *(card.stripe_payment_method_id for card in self.cards),
            self.purchase.stripe_invoice_id,
        ]


def _holdings(gateway, offer, *, name: str, email: str) -> Holdings:
    from billing.services import card_set_default, invoice_record_paid, stripe_customer_ensure, subscription_sync

    customer = CustomerFactory(full_name=name, user__email=email, email=email)
    stripe_customer_ensure(customer=customer)
    slug = email.split("@")[0]
    card_set_default(customer=customer, payment_method_id=f"pm_{slug}_spare", by=None)
    card_set_default(customer=customer, payment_method_id=f"pm_{slug}_main", by=None)
    remote = gateway.subscription_create(
        customer_id=customer.stripe_customer_id, amount=offer.price_amount, price_id=offer.stripe_price_id
    )
    subscription = subscription_sync(remote=remote)
    invoice = gateway.invoice_create(
        customer_id=customer.stripe_customer_id,
        amount=offer.price_amount,
        subscription_id=subscription.stripe_subscription_id,
        price_id=offer.stripe_price_id,
        charge_id=f"ch_{slug}",
    )
    purchase = invoice_record_paid(invoice=invoice)
    RecordedPurchaseFactory(customer=customer)  # and a one-time sale recorded here
    return Holdings(
        customer=customer,
        cards=list(customer.cards.order_by("pk")),
        subscription=subscription,
        purchase=purchase,
        receipt=purchase.receipts.get(),
    )


@pytest.fixture
def world(db, gateway):
    """Two customers with one of everything: `me` is signed in, `victim` is the one attacked."""
    SiteSettings.objects.get_or_create(pk=1)
    offer = OfferFactory(kind="subscription", interval="month", price_amount=1500, stripe_price_id="price_member")
    me = _holdings(gateway, offer, name="Mallory Attacker", email="mallory@example.com")
    victim = _holdings(gateway, offer, name="Victoria Victimsdottir", email="victoria@example.com")
    return me, victim


@pytest.fixture
def guarded_rows():
    """Return a function giving every guarded row, to compare before and after."""
    return lambda: fingerprint(*GUARDED_MODELS)


def signed_in(client, user):
    client.force_login(user, backend=BACKEND)
    return client


# --- what portal/settings.py computes in production ----------------------------------------------

HTTPS_SETTINGS = [
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_REDIRECT_EXEMPT",
]


def production_settings(var_dir, names: list[str], **env) -> dict:
    """The values of `names` that portal/settings.py computes in a fresh process with production settings."""
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**production_env(var_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=django_settings.BASE_DIR,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def https_settings(tmp_path_factory):
    """The HTTPS settings with DJANGO_HTTPS=1 (production's default)."""
    return production_settings(tmp_path_factory.mktemp("var"), HTTPS_SETTINGS)


@pytest.fixture
def production_https(settings, https_settings):
    """This test runs with production's HTTPS settings (HSTS, secure cookies, the HTTPS redirect)."""
    assert https_settings["SECURE_HSTS_SECONDS"] >= 31_536_000
    for name, value in https_settings.items():
        setattr(settings, name, value)
    return https_settings
