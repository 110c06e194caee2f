"""Receipts on request: search on the purchases page, "email me this receipt", a year's ZIP, and what a
receipt says about its payment (the card, "Paid", the net after refunds)."""

import io
import re
import zipfile
from datetime import UTC, datetime

import pytest
from django.core import mail

from accounts.models import Customer
from portal.models import AuditEntry, OutboundEmail
from purchases.services import refund_record
from tests.factories import CustomerFactory, OfferFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

# session, user+customer, offers and years bought, purchase count, site settings, products,
# purchases page, their receipts: a search costs what the plain page costs.
SEARCH_QUERIES = 8


def rows(html):
    return re.findall(r"<tr>\s*<td>.*?</tr>", html, flags=re.S)


def on(year, month=6, day=1):
    return datetime(year, month, day, 12, 0, tzinfo=UTC)


@pytest.fixture
def bought(customer):
    """Three purchases of two offers in two years: R-000001 (2025), R-000002 and R-000003 (2026)."""
    course = OfferFactory(name="Glazing course")
    kiln = OfferFactory(name="Kiln hire")
    return [
        RecordedPurchaseFactory(customer=customer, offer=course, purchased_at=on(2025)),
        RecordedPurchaseFactory(customer=customer, offer=kiln, purchased_at=on(2026, 2)),
        RecordedPurchaseFactory(customer=customer, offer=course, purchased_at=on(2026, 9)),
    ]


# --- search ----------------------------------------------------------------------------------------


def test_the_purchases_page_offers_the_customers_own_offers_and_years_to_search_by(client_logged_in, bought):
    RecordedPurchaseFactory(offer=OfferFactory(name="Someone else's offer"), purchased_at=on(2019))

    html = client_logged_in.get("/purchases/").content.decode()

    assert '<option value="2026">2026</option>' in html and '<option value="2025">2025</option>' in html
    assert "Glazing course</option>" in html and "Kiln hire</option>" in html
    assert "Someone else" not in html and "2019" not in html


def test_searching_by_offer_lists_only_that_offers_purchases(client_logged_in, bought):
    html = client_logged_in.get("/purchases/", {"offer": bought[1].offer_id}).content.decode()

    [row] = rows(html)
    assert "Kiln hire" in row and "R-000002" in row


def test_searching_by_year_lists_that_years_purchases(client_logged_in, bought):
    html = client_logged_in.get("/purchases/", {"year": "2026"}).content.decode()

    assert [re.search(r"R-\d+", row).group() for row in rows(html)] == ["R-000003", "R-000002"]


def test_searching_by_receipt_number_finds_the_purchase_with_that_receipt(client_logged_in, bought):
    html = client_logged_in.get("/purchases/", {"number": "000001"}).content.decode()

    [row] = rows(html)
    assert "R-000001" in row and "Show all" in html


def test_a_search_that_matches_nothing_says_so(client_logged_in, bought):
    html = client_logged_in.get("/purchases/", {"number": "R-999"}).content.decode()

    assert rows(html) == [] and "No purchases match your search." in html


def test_an_offer_of_another_customer_is_not_a_choice_and_finds_nothing(client_logged_in, bought):
    foreign = RecordedPurchaseFactory(offer=OfferFactory(name="Foreign"))

    html = client_logged_in.get("/purchases/", {"offer": foreign.offer_id}).content.decode()

    assert "Foreign" not in html
    assert len(rows(html)) == 3  # an invalid choice is ignored, not an error page


def number_input(html):
    return re.search(r'<input[^>]*name="number"[^>]*>', html).group(0)


def year_select(html):
    return re.search(r'<select[^>]*name="year".*?</select>', html, flags=re.S).group(0)


def test_the_search_form_shows_each_search_as_searched_not_an_earlier_one(client_logged_in, bought):
    """The submitted search form's fields are kept as rendered, keyed on the values they show."""
    first = client_logged_in.get("/purchases/", {"number": "R-000001", "year": "2025"}).content.decode()
    second = client_logged_in.get("/purchases/", {"number": "R-000002", "year": "2026"}).content.decode()
    plain = client_logged_in.get("/purchases/").content.decode()

    assert 'value="R-000001"' in number_input(first) and '<option value="2025" selected>' in year_select(first)
    assert 'value="R-000002"' in number_input(second) and '<option value="2026" selected>' in year_select(second)
    assert "value=" not in number_input(plain) and '<option value="" selected>' in year_select(plain)


def test_a_search_field_with_an_error_shows_it_and_the_next_search_does_not(client_logged_in, bought):
    client_logged_in.get("/purchases/", {"number": "R-1"})

    refused = client_logged_in.get("/purchases/", {"number": "R-" + "1" * 40}).content.decode()
    again = client_logged_in.get("/purchases/", {"number": "R-1"}).content.decode()

    assert "at most 40 characters" in refused and 'aria-invalid="true"' in number_input(refused)
    assert "at most 40 characters" not in again and "aria-invalid" not in number_input(again)


def test_a_search_in_another_language_shows_that_languages_labels(client_logged_in, customer, bought):
    english = client_logged_in.get("/purchases/", {"number": "R-", "year": "2026"}).content.decode()
    Customer.objects.filter(pk=customer.pk).update(language="de")

    german = client_logged_in.get("/purchases/", {"number": "R-", "year": "2026"}).content.decode()

    assert "Receipt number" in english and "All years" in english
    assert "Belegnummer" in german and "Alle Jahre" in german and "Receipt number" not in german


def test_a_search_after_a_purchase_in_a_new_year_offers_that_year(client_logged_in, customer, bought):
    client_logged_in.get("/purchases/", {"number": "R-", "year": "2026"})
    RecordedPurchaseFactory(customer=customer, offer=bought[0].offer, purchased_at=on(2027))

    html = client_logged_in.get("/purchases/", {"number": "R-", "year": "2026"}).content.decode()

    assert '<option value="2027">2027</option>' in year_select(html)


def test_the_next_page_of_a_search_keeps_the_search(client_logged_in, customer):
    offer = OfferFactory()
    for day in range(25):
        RecordedPurchaseFactory(customer=customer, offer=offer, purchased_at=on(2026, 1, day + 1))
    RecordedPurchaseFactory(customer=customer, offer=offer, purchased_at=on(2025))

    first = client_logged_in.get("/purchases/", {"year": "2026", "number": "R-"}).content.decode()
    second = client_logged_in.get("/purchases/", {"year": "2026", "number": "R-", "page": "2"}).content.decode()

    assert 'rel="next" href="?year=2026&amp;number=R-&amp;page=2"' in first
    assert len(rows(second)) == 5 and 'rel="prev" href="?year=2026&amp;number=R-&amp;page=1"' in second


@pytest.mark.parametrize("purchases", [1, 25])
def test_a_search_costs_the_same_queries_for_any_number_of_purchases(
    client_logged_in, customer, purchases, django_assert_num_queries
):
    offer = OfferFactory()
    for _ in range(purchases):
        RecordedPurchaseFactory(customer=customer, offer=offer, purchased_at=on(2026))
    client_logged_in.get("/purchases/")  # records the activity once per session, a write we don't count

    with django_assert_num_queries(SEARCH_QUERIES):
        response = client_logged_in.get("/purchases/", {"offer": offer.pk, "year": "2026", "number": "R-"})

    assert len(rows(response.content.decode())) == min(purchases, 20)


# --- email me this receipt -------------------------------------------------------------------------


def resend(client, number, click="a" * 32):
    return client.post(f"/purchases/receipts/{number}/resend/", {"click": click}, follow=True)


def test_email_me_this_receipt_sends_the_receipt_once_and_audits_it(
    client_logged_in, customer, django_capture_on_commit_callbacks, run_tasks
):
    RecordedPurchaseFactory(customer=customer)
    run_tasks()
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = resend(client_logged_in, "R-000001")

    assert run_tasks() == 1
    [message] = mail.outbox
    assert message.to == [customer.user.email] and "R-000001" in message.subject
    assert f"Receipt R-000001 is on its way to {customer.user.email}." in response.content.decode()
    entry = AuditEntry.objects.get(action="receipt.resent")
    assert entry.customer == customer and entry.actor == customer.user and entry.changes == {"receipt": "R-000001"}


def test_the_same_press_arriving_twice_sends_one_email(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    resend(client_logged_in, "R-000001", click="b" * 32)
    response = resend(client_logged_in, "R-000001", click="b" * 32)

    assert OutboundEmail.objects.filter(key__startswith="receipt:R-000001:resend:").count() == 1
    assert "Receipt R-000001 was already sent for this request." in response.content.decode()


def test_each_new_press_sends_again_until_the_rate_limit(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    for click in "123":
        resend(client_logged_in, "R-000001", click=click * 32)
    response = resend(client_logged_in, "R-000001", click="4" * 32)

    assert OutboundEmail.objects.filter(key__startswith="receipt:R-000001:resend:").count() == 3
    assert "This receipt was sent several times just now. Please wait a few minutes." in response.content.decode()


def test_a_customer_cannot_resend_another_customers_receipt(client_logged_in):
    RecordedPurchaseFactory(customer=CustomerFactory())

    response = client_logged_in.post("/purchases/receipts/R-000001/resend/", {"click": "c" * 32})

    assert response.status_code == 404
    assert not OutboundEmail.objects.filter(key__contains="resend").exists()


def test_the_receipt_page_offers_a_fresh_press_each_time(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    clicks = [
        re.search(
            r'name="click" value="([0-9a-f]{32})"',
            client_logged_in.get("/purchases/receipts/R-000001/").content.decode(),
        ).group(1)
        for _ in range(2)
    ]

    assert clicks[0] != clicks[1]


# --- a year's receipts as a ZIP ----------------------------------------------------------------------


def test_a_years_receipts_download_as_one_zip_of_their_pdfs(client_logged_in, bought):
    response = client_logged_in.get("/purchases/receipts/2026.zip")

    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == 'attachment; filename="receipts-2026.zip"'
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    assert archive.namelist() == ["receipt-R-000002.pdf", "receipt-R-000003.pdf"]
    assert all(archive.read(name).startswith(b"%PDF-") for name in archive.namelist())
    assert archive.testzip() is None


def test_the_purchases_page_links_each_years_zip(client_logged_in, bought):
    html = client_logged_in.get("/purchases/").content.decode()

    assert 'href="/purchases/receipts/2026.zip"' in html and 'href="/purchases/receipts/2025.zip"' in html


def test_a_year_without_receipts_is_not_found_and_others_receipts_never_included(client_logged_in, customer):
    RecordedPurchaseFactory(customer=CustomerFactory(), purchased_at=on(2024))

    assert client_logged_in.get("/purchases/receipts/2024.zip").status_code == 404


def test_the_zip_is_written_one_pdf_at_a_time(client_logged_in, customer):
    for month in range(1, 4):
        RecordedPurchaseFactory(customer=customer, purchased_at=on(2026, month))

    chunks = list(client_logged_in.get("/purchases/receipts/2026.zip").streaming_content)

    # a chunk per PDF (each holding that one file) and the closing directory: nothing is held back
    assert len(chunks) == 4
    assert all(chunk.startswith(b"PK\x03\x04") for chunk in chunks[:3])


# --- what a receipt says about its payment -----------------------------------------------------------


def test_a_receipt_says_paid_with_the_card_that_paid(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer, card_brand="mastercard", card_last4="4444")

    html = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()

    assert "<strong>Paid</strong> · with Mastercard •••• 4444" in html


def test_a_receipt_of_a_purchase_whose_card_is_not_known_says_paid(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    html = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()

    assert "<strong>Paid</strong></p>" in html and "••••" not in html


def test_a_refunded_receipt_shows_the_net_after_refunds(client_logged_in, customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=5000, currency="gbp"))
    refund_record(purchase=purchase, amount=1200)

    html = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()

    assert re.search(r"Net after refunds</th><td class=\"num\">£38.00</td>", html)


def test_a_receipt_without_refunds_shows_no_net_line(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    assert "Net after refunds" not in client_logged_in.get("/purchases/receipts/R-000001/").content.decode()


def test_the_pdf_says_paid_with_the_card_and_the_net_after_refunds(client_logged_in, customer, pdf_text):
    purchase = RecordedPurchaseFactory(
        customer=customer, offer=OfferFactory(price_amount=5000, currency="gbp"), card_brand="visa", card_last4="4242"
    )
    refund_record(purchase=purchase, amount=1200)

    text = pdf_text(b"".join([client_logged_in.get("/purchases/receipts/R-000001/pdf/").content]))

    assert "Paid with Visa •••• 4242" in text
    assert re.search(r"Net after refunds\s+£38.00", text)


# --- staff resend from admin -------------------------------------------------------------------------


def test_support_resends_a_receipt_from_admin_after_a_confirmation_once_per_press(support_client, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()
    url = f"/admin/purchases/receipt/{receipt.pk}/resend/"

    assert url in support_client.get(f"/admin/purchases/receipt/{receipt.pk}/change/").content.decode()
    page = support_client.get(url).content.decode()
    click = re.search(r'name="click" value="([0-9a-f]{32})"', page).group(1)
    assert f"The receipt email goes again to {customer.user.email}." in page
    first = support_client.post(url, {"click": click}, follow=True)
    support_client.post(url, {"click": click})

    [email] = OutboundEmail.objects.filter(key__startswith="receipt:R-000001:resend:")
    assert email.customer == customer
    assert "is on its way to" in first.content.decode()
    entry = AuditEntry.objects.get(action="receipt.resent")
    assert entry.actor.email == "support@example.com" and entry.actor_kind == "staff"


def test_a_customer_cannot_use_the_admin_resend(client_logged_in, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = client_logged_in.post(f"/admin/purchases/receipt/{receipt.pk}/resend/", {"click": "d" * 32})

    assert response.status_code == 302 and "/login" in response["Location"]
    assert not OutboundEmail.objects.filter(key__contains="resend").exists()
