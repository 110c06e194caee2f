"""German finished: every customer page and email, rendered in German, uses only strings the catalogues
translate (no English left), speaks to the customer as "Sie" (allauth's own "du" overridden by
portal/german_overrides.py), writes "E-Mail", and prices per "/ Monat"."""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from django.utils.translation import trans_real

from accounts.hub import hub_link_token
from billing.gateways.fake import FakeGateway
from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
from console.emails import email_render
from portal.models import EmailKind
from portal.outbox import CONTEXT_KEYS
from purchases.services import purchase_record, refund_record
from tests.factories import CustomerFactory, OfferFactory

pytestmark = pytest.mark.django_db

CATALOGUE = Path(settings.BASE_DIR) / "portal/locale/de/LC_MESSAGES/django.po"
# "du" and its forms as German addresses a reader; none may be left on a page for customers.
DU = re.compile(r"\b(du|dich|dir|dein|deine|deinen|deinem|deiner|deines)\b", re.IGNORECASE)
# Msgids that are the same in German by design and that no catalogue lists.
SAME_IN_GERMAN: set[str] = set()

EMAIL_CONTEXT = {
    "receipt_number": "R-000001",
    "offer_name": "Mitgliedschaft",
    "amount": 1500,
    "currency": "eur",
    "brand": "visa",
    "last4": "4242",
    "exp_month": 4,
    "exp_year": 2031,
    "ends_at": "2031-03-01T23:30:00+00:00",
    "resumes_at": "2031-05-10T12:00:00+00:00",
    "previous_offer_name": "Mitgliedschaft (monatlich)",
    "interval": "year",
    "next_renewal": "2032-03-01T23:30:00+00:00",
    "changes_at": "2032-03-01T23:30:00+00:00",
    "offer_text": "Drei Monate zum halben Preis.",
    "subscription_id": 1,
    "interval_count": 1,
    "renews_at": "2031-03-01T23:30:00+00:00",
    "trial_ends_at": "2031-03-01T23:30:00+00:00",
}


@pytest.fixture
def untranslated(monkeypatch):
    """Record every msgid looked up in German that no catalogue (ours, allauth's, Django's …) holds."""
    missed: set[str] = set()
    gettext, ngettext = trans_real.DjangoTranslation.gettext, trans_real.DjangoTranslation.ngettext

    def spy_gettext(self, message):
        if self.language() == "de" and message and message not in self._catalog:
            missed.add(message)
        return gettext(self, message)

    def spy_ngettext(self, singular, plural, number):
        if self.language() == "de" and (singular, 0) not in self._catalog:
            missed.add(singular)
        return ngettext(self, singular, plural, number)

    monkeypatch.setattr(trans_real.DjangoTranslation, "gettext", spy_gettext)
    monkeypatch.setattr(trans_real.DjangoTranslation, "ngettext", spy_ngettext)
    return missed


@pytest.fixture
def german_shopper(settings):
    """A German-speaking customer with a card, a monthly subscription, purchases and a refund."""
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    customer = CustomerFactory(full_name="Ada Lovelace", language="de", time_zone="Europe/Berlin", country="DE")
    stripe_id = stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id="pm_card_visa", by=None)
    offer = OfferFactory(name="Mitgliedschaft", kind="subscription", interval="month", stripe_price_id="price_m")
    subscription = subscription_sync(
        remote=FakeGateway().subscription_create(customer_id=stripe_id, amount=1500, price_id=offer.stripe_price_id)
    )
    purchase = purchase_record(customer=customer, offer=OfferFactory(name="Töpferkurs"))
    refund_record(purchase=purchase, amount=500)
    yield customer, subscription, purchase.receipts.get()
    FakeGateway.reset()


def text_of(html: str) -> str:
    """What a reader sees: the page without scripts, styles and tags."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def german_pages(customer, subscription, receipt) -> dict[str, str]:
    visitor, signed_in = Client(HTTP_ACCEPT_LANGUAGE="de"), Client(HTTP_ACCEPT_LANGUAGE="de")
    signed_in.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    responses = {
        "sign in": visitor.get("/accounts/login/"),
        "sign up": visitor.get("/accounts/signup/"),
        "password reset": visitor.get("/accounts/password/reset/"),
        "password reset sent": visitor.get("/accounts/password/reset/done/"),
        "sign in by code": visitor.get("/accounts/login/code/"),
        "hub link": visitor.get(f"/hub/{hub_link_token.make_token(customer)}/", follow=True),
        "home": signed_in.get("/"),
        "contact": signed_in.get("/settings/contact/"),
        "profile": signed_in.get("/settings/profile/"),
        "social": signed_in.get("/settings/social/"),
        "password": signed_in.get("/settings/password/"),
        "email": signed_in.get("/accounts/email/"),
        "two-factor": signed_in.get("/accounts/2fa/"),
        "sessions": signed_in.get("/accounts/sessions/"),
        "your data": signed_in.get("/settings/data/"),
        "your data with errors": signed_in.post("/settings/data/delete/", {"password": "falsch"}),
        "billing": signed_in.get("/billing/"),
        "new card": signed_in.get("/billing/cards/new/"),
        "cancel subscription": signed_in.get(f"/billing/subscriptions/{subscription.pk}/cancel/"),
        "purchases": signed_in.get("/purchases/"),
        "purchases searched": signed_in.get("/purchases/?number=nichts"),
        "receipt": signed_in.get(f"/purchases/receipts/{receipt.number}/"),
        "directory": signed_in.get("/directory/"),
        "sign out": signed_in.get("/accounts/logout/"),
    }
    pages = {}
    for name, response in responses.items():
        assert response.status_code in (200, 400), f"{name}: {response.status_code}"
        pages[name] = response.content.decode()
    return pages


def german_emails(customer) -> dict[str, str]:
    emails = {}
    for kind in EmailKind.values:
        context = {key: EMAIL_CONTEXT[key] for key in CONTEXT_KEYS[kind]}
        rendered = email_render(customer=customer, kind=kind, context=context)
        emails[kind] = f"{rendered.subject}\n{rendered.text}\n{text_of(rendered.html)}"
    return emails


def test_the_german_catalogue_has_no_empty_or_fuzzy_translation():
    entries = CATALOGUE.read_text(encoding="utf-8").split("\n\n")[1:]  # the first is the header

    fuzzy = [entry for entry in entries if "#, fuzzy" in entry]
    empty = [entry for entry in entries if re.search(r'^msgstr(\[\d\])? ""\n?\Z', entry.strip() + "\n", re.M)]

    assert fuzzy == [] and empty == []


def test_every_customer_page_in_german_uses_only_translated_strings(german_shopper, untranslated):
    german_pages(*german_shopper)

    assert untranslated - SAME_IN_GERMAN == set()


def test_every_email_in_german_uses_only_translated_strings(german_shopper, untranslated):
    customer, _, _ = german_shopper
    purchase_record(customer=customer, offer=OfferFactory(name="Glasurkurs"))  # receipt R-000002 exists too

    german_emails(customer)

    assert untranslated - SAME_IN_GERMAN == set()


def test_german_pages_and_emails_say_sie_e_mail_and_per_monat(german_shopper):
    customer, subscription, receipt = german_shopper
    pages = {name: text_of(html) for name, html in german_pages(customer, subscription, receipt).items()}
    texts = {**pages, **german_emails(customer)}

    assert {name: DU.findall(text) for name, text in texts.items() if DU.search(text)} == {}
    assert {
        name: re.findall(r"\b(?:Email|E-mail|eMail)\b", text)
        for name, text in texts.items()
        if re.search(r"\b(?:Email|E-mail|eMail)\b", text)
    } == {}
    assert "/ Monat" in pages["billing"]
    assert "Sitzungen" in pages["sessions"] and "Sessions" not in pages["sessions"]
