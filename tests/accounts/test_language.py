"""A second language: the customer chooses German in their profile, and pages, receipts (page and PDF)
and emails follow; the German catalogue is complete and its compiled .mo matches it."""

import gettext
import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.conf import settings
from django.core import mail
from django.utils import translation

from console.emails import email_render
from portal.models import EmailKind
from portal.services import site_settings_update
from tests.factories import CustomerFactory, OfferFactory, RecordedPurchaseFactory

LOCALE_DIR = Path(settings.PORTAL_DIR) / "locale" / "de" / "LC_MESSAGES"
# %(name)s, %s, %d and a literal %% in python-format strings (blocktranslate turns {{ name }} into %(name)s).
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]*\d*(?:\.\d+)?[sdifr%]")
HTML_TAG = re.compile(r"<[^>]+>")


@pytest.fixture(autouse=True)
def _back_to_the_site_language():
    """A German request leaves German active in this thread; later tests expect the site's language."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def german(db):
    return CustomerFactory(full_name="Grete Töpfer", language="de")


@pytest.fixture
def german_client(client, german):
    client.force_login(german.user, backend="accounts.backends.PortalAuthenticationBackend")
    return client


@pytest.fixture
def receipt(german):
    site_settings_update(data={"business_name": "Clay & Code Studio"})
    offer = OfferFactory(name="Pottery Basics course", price_amount=4900, currency="eur")
    purchase = RecordedPurchaseFactory(customer=german, offer=offer)
    return purchase.receipts.get()


# --- choosing it ---------------------------------------------------------------------------------


def test_choosing_deutsch_in_the_profile_saves_it_and_answers_in_german(client_logged_in, customer):
    data = {"language": "de", "time_zone": "Europe/Berlin", "notify_billing_notices": "on"}

    response = client_logged_in.post("/settings/profile/", data, follow=True)

    customer.refresh_from_db()
    assert customer.language == "de"
    html = response.content.decode()
    assert "Ihr Profil wurde gespeichert." in html
    assert '<html lang="de">' in html
    assert response["Content-Language"] == "de"
    assert "Sprache, Zeitzone und Benachrichtigungen" in html


def test_automatic_clears_the_choice(client_logged_in, customer):
    customer.language = "de"
    customer.save(update_fields=["language"])

    response = client_logged_in.post(
        "/settings/profile/", {"language": "", "time_zone": "UTC"}, follow=True, headers={"accept-language": "en"}
    )

    customer.refresh_from_db()
    assert customer.language == ""
    assert "Your profile was saved." in response.content.decode()


def test_the_profile_offers_each_language_in_its_own_name(client_logged_in):
    html = client_logged_in.get("/settings/profile/").content.decode()

    assert '<option value="de">Deutsch</option>' in html
    assert '<option value="en">English</option>' in html


# --- pages ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["Willkommen, Grete Töpfer", "Ihre Angaben", "Schnellzugriff"]),
        ("/settings/contact/", ["Kontaktdaten", "Einstellungen"]),
        ("/settings/profile/", ["Sprache, Zeitzone und Benachrichtigungen", "Profil speichern"]),
        ("/billing/", ["Karten", "Abonnements", "Sie haben keine Karte hinterlegt."]),
        ("/purchases/", ["Ihre Käufe", "Sie haben noch nichts gekauft."]),
    ],
)
def test_the_customers_pages_are_in_german_whatever_the_browser_asks(german_client, path, expected):
    response = german_client.get(path, headers={"accept-language": "en-GB,en;q=0.9"})

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="de">' in html
    assert response["Content-Language"] == "de"
    for text in expected:
        assert text in html


def test_the_receipt_page_is_in_german_with_german_money(german_client, receipt):
    html = german_client.get(f"/purchases/receipts/{receipt.number}/").content.decode()

    assert f"Beleg {receipt.number}" in html
    assert "PDF herunterladen" in html
    assert "Zwischensumme" in html
    assert "49,00\xa0€" in html


def test_the_receipt_pdf_is_in_german(german_client, receipt, pdf_text):
    text = pdf_text(german_client.get(f"/purchases/receipts/{receipt.number}/pdf/").content)

    assert f"Beleg {receipt.number}" in text
    assert "Rechnungsempfänger" in text
    assert "Beschreibung" in text
    assert "Gesamt" in text
    assert "49,00" in text
    assert "Total" not in text


def test_a_customer_without_a_choice_follows_the_browser(client_logged_in):
    german_page = client_logged_in.get("/", headers={"accept-language": "de-DE,de;q=0.9"})
    english_page = client_logged_in.get("/", headers={"accept-language": "en"})

    assert '<html lang="de">' in german_page.content.decode()
    assert "Ihre Angaben" in german_page.content.decode()
    assert "Your details" in english_page.content.decode()


def test_a_visitor_who_is_not_signed_in_gets_the_browsers_language(client, db):
    response = client.get("/accounts/login/", headers={"accept-language": "de"})

    assert response["Content-Language"] == "de"
    assert "Anmelden" in response.content.decode()


# --- emails --------------------------------------------------------------------------------------


def test_an_email_to_a_german_customer_is_in_german(german, receipt):
    rendered = email_render(customer=german, kind=EmailKind.RECEIPT, context={"receipt_number": receipt.number})

    assert rendered.subject == f"Ihr Beleg {receipt.number} von Clay & Code Studio"
    assert "Hallo Grete Töpfer," in rendered.text
    assert "Vielen Dank für Ihren Kauf von Pottery Basics course." in rendered.text
    assert "49,00\xa0€" in rendered.text
    assert "Rechnungsangaben verwalten und Käufe ansehen" in rendered.html


def test_an_email_to_a_customer_without_a_choice_is_in_the_site_language(customer):
    translation.activate("de")  # whatever the current request happens to use

    rendered = email_render(
        customer=customer,
        kind=EmailKind.PAYMENT_FAILED,
        context={"offer_name": "Plan", "amount": 900, "currency": "eur"},
    )

    assert rendered.subject == "Your payment for Plan did not go through"


def test_allauths_emails_to_a_german_customer_are_in_german(client, german):
    client.post("/accounts/password/reset/", {"email": german.user.email}, headers={"accept-language": "en"})

    assert len(mail.outbox) == 1
    assert "Passwort" in mail.outbox[0].subject


# --- the catalogue -------------------------------------------------------------------------------


def _catalog():
    with open(LOCALE_DIR / "django.po", "rb") as handle:
        return read_po(handle, locale="de")


def _pairs(message):
    """(source, translation) pairs of a message: one, or singular and plural of a plural message."""
    if isinstance(message.id, tuple):
        return [(message.id[0], message.string[0]), (message.id[1], message.string[1])]
    return [(message.id, message.string)]


def test_every_german_entry_is_translated_and_none_is_fuzzy():
    messages = [message for message in _catalog() if message.id]

    assert len(messages) > 600
    assert [m.id for m in messages if m.fuzzy] == []
    assert [m.id for m in messages if not all(string for _source, string in _pairs(m))] == []


def test_every_german_entry_keeps_the_placeholders_and_markup_of_its_source():
    wrong = [
        source
        for message in _catalog()
        if message.id
        for source, string in _pairs(message)
        if sorted(PLACEHOLDER.findall(source)) != sorted(PLACEHOLDER.findall(string))
        or sorted(HTML_TAG.findall(source)) != sorted(HTML_TAG.findall(string))
    ]

    assert wrong == []


def test_the_compiled_catalogue_matches_the_po_file():
    """The .mo is committed (CI has no GNU gettext): it must be recompiled whenever the .po changes."""
    with open(LOCALE_DIR / "django.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = []
    for message in _catalog():
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            got = (compiled.ngettext(*message.id, 1), compiled.ngettext(*message.id, 2))
            want = tuple(message.string)
        else:
            got, want = compiled.gettext(message.id), message.string
        if got != want:
            stale.append(message.id)

    assert stale == []
