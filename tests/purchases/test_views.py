"""The customer's purchases page, receipt page and receipt PDF."""

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import customer_update_contact
from portal.services import site_settings_update
from purchases.services import access_revoke, refund_record
from tests.factories import OfferFactory, ProductFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

# Measured on SQLite and PostgreSQL for a signed-in customer whose activity was already recorded:
# session, user+customer, offers and years bought (the search form), purchase count, site settings,
# products, purchases page, their receipts.
PURCHASES_PAGE_QUERIES = 8
# session, user+customer, receipt (+purchase, offer, original), refunds, corrections, site settings.
RECEIPT_PAGE_QUERIES = 6

BUSINESS = {
    "business_name": "Clay & Code Studio",
    "business_address": "12 Kiln Lane\nBristol BS1 4DJ\nUnited Kingdom",
    "business_tax_id": "GB123456789",
}


def rows(html):
    return re.findall(r"<tr>\s*<td>.*?</tr>", html, flags=re.S)


# --- /purchases/ -----------------------------------------------------------------------------------


def test_the_purchases_page_lists_offer_date_amount_and_status(client_logged_in, customer):
    offer = OfferFactory(name="Pottery Basics course", price_amount=4900, currency="gbp")
    purchase = RecordedPurchaseFactory(
        customer=customer, offer=offer, purchased_at=datetime(2026, 3, 14, 12, 0, tzinfo=UTC)
    )
    refund_record(purchase=purchase, amount=400)

    response = client_logged_in.get("/purchases/")

    html = response.content.decode()
    assert response.status_code == 200
    [row] = rows(html)
    assert "<td>Pottery Basics course</td>" in row
    assert "March 14, 2026" in row
    assert "£49.00" in row
    assert "£4.00 refunded" in row
    assert "Partly refunded" in row
    assert 'href="/purchases/receipts/R-000001/"' in row


def test_a_row_lists_each_receipt_marks_corrected_copies_and_escapes_names(client_logged_in, customer, frozen_mode):
    from purchases.services import receipt_issue_correction

    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name='<b>Clay & "Code"</b>'))
    customer_update_contact(customer=customer, data={"full_name": "Zoë Newname"}, by=customer.user)
    receipt_issue_correction(receipt=purchase.receipts.get(), by=customer.user)

    [row] = rows(client_logged_in.get("/purchases/").content.decode())

    assert "<td>&lt;b&gt;Clay &amp; &quot;Code&quot;&lt;/b&gt;</td>" in row
    assert (
        '<a href="/purchases/receipts/R-000001/">R-000001</a><br>'
        '<a href="/purchases/receipts/R-000002/">R-000002</a> <span class="muted">(corrected copy)</span>'
    ) in row


def test_each_status_has_its_label(client_logged_in, customer):
    paid = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Paid offer"))
    refunded = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Refunded offer"))
    refund_record(purchase=refunded, amount=refunded.amount)

    html = client_logged_in.get("/purchases/").content.decode()

    by_offer = {re.search(r"<td>(.*? offer)</td>", row).group(1): row for row in rows(html)}
    assert ">Paid</span>" in by_offer[paid.offer.name]
    assert ">Refunded</span>" in by_offer[refunded.offer.name]


def test_the_purchases_page_shows_only_the_customers_own_purchases(client_logged_in, customer, other_customer):
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Mine"))
    RecordedPurchaseFactory(customer=other_customer, offer=OfferFactory(name="Theirs"))

    html = client_logged_in.get("/purchases/").content.decode()

    assert "<td>Mine</td>" in html
    assert "Theirs" not in html
    assert "R-000002" not in html


def test_a_customer_without_purchases_is_told_so(client_logged_in):
    html = client_logged_in.get("/purchases/").content.decode()

    assert "You have not bought anything yet." in html
    assert "You have no products to use right now." in html


def test_the_purchases_page_links_the_products_the_customer_can_use(client_logged_in, customer):
    course = ProductFactory(
        name="Pottery Basics", access_url="https://learn.example.com/pottery/", description="Twelve lessons."
    )
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(products=[course]))

    html = client_logged_in.get("/purchases/").content.decode()

    assert (
        '<a class="button button--secondary" href="https://learn.example.com/pottery/" rel="noopener">'
        "Open Pottery Basics</a>" in html
    )
    assert "Twelve lessons." in html


def test_a_product_bought_twice_is_listed_once(client_logged_in, customer):
    course = ProductFactory(name="Pottery Basics")
    offer = OfferFactory(products=[course])
    RecordedPurchaseFactory(customer=customer, offer=offer)
    RecordedPurchaseFactory(customer=customer, offer=offer)

    html = client_logged_in.get("/purchases/").content.decode()

    assert html.count("Open Pottery Basics") == 1


def test_a_revoked_product_is_not_offered(client_logged_in, customer, staff_user):
    kept, revoked = ProductFactory(name="Kept course"), ProductFactory(name="Revoked course")
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(products=[kept, revoked]))
    access_revoke(grant=purchase.grants.get(product=revoked), by=staff_user, reason="chargeback")

    html = client_logged_in.get("/purchases/").content.decode()

    assert "Open Kept course" in html
    assert "Revoked course" not in html
    assert revoked.access_url not in html


def test_an_inactive_product_is_not_offered(client_logged_in, customer):
    active, retired = ProductFactory(name="Active course"), ProductFactory(name="Retired course", is_active=False)
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(products=[active, retired]))

    html = client_logged_in.get("/purchases/").content.decode()

    assert "Open Active course" in html
    assert "Retired course" not in html


def test_another_customers_grant_does_not_show(client_logged_in, customer, other_customer):
    RecordedPurchaseFactory(customer=other_customer, offer=OfferFactory(products=[ProductFactory(name="Theirs")]))

    html = client_logged_in.get("/purchases/").content.decode()

    assert "Open Theirs" not in html


def test_purchases_are_paginated_twenty_a_page_newest_first(client_logged_in, customer):
    offer = OfferFactory()
    start = timezone.now() - timedelta(days=100)
    for day in range(25):
        RecordedPurchaseFactory(customer=customer, offer=offer, purchased_at=start + timedelta(days=day))

    first = client_logged_in.get("/purchases/")
    second = client_logged_in.get("/purchases/?page=2")

    assert len(rows(first.content.decode())) == 20
    assert len(rows(second.content.decode())) == 5
    assert [p.receipts.all()[0].number for p in first.context["page"].object_list][:2] == ["R-000025", "R-000024"]
    assert [p.receipts.all()[0].number for p in second.context["page"].object_list][-1] == "R-000001"
    assert "Page 1 of 2" in first.content.decode()
    assert 'href="?page=2"' in first.content.decode()
    assert "Page 2 of 2" in second.content.decode()


@pytest.mark.parametrize("purchases", [1, 20, 200])
def test_the_purchases_page_costs_the_same_queries_for_any_number_of_purchases(
    client_logged_in, customer, django_assert_num_queries, purchases
):
    offers = [OfferFactory(products=[ProductFactory(), ProductFactory()]) for _ in range(3)]
    for n in range(purchases):
        purchase = RecordedPurchaseFactory(customer=customer, offer=offers[n % 3])
        if n % 4 == 0:
            refund_record(purchase=purchase, amount=100)
    client_logged_in.get("/purchases/")  # records the activity once per session, a write we don't count

    with django_assert_num_queries(PURCHASES_PAGE_QUERIES):
        response = client_logged_in.get("/purchases/")

    assert len(rows(response.content.decode())) == min(purchases, 20)


# --- the receipt page ------------------------------------------------------------------------------


def test_the_receipt_page_shows_business_billing_lines_tax_total_and_refunds(client_logged_in, customer):
    site_settings_update(data=BUSINESS)
    customer_update_contact(
        customer=customer,
        data={
            "full_name": "Dana Demo",
            "address_line1": "1 Demo Street",
            "address_line2": "",
            "city": "London",
            "postal_code": "EC1A 1BB",
            "country": "GB",
            "tax_id_type": "gb_vat",
            "tax_id_value": "GB980780684",
        },
        by=customer.user,
    )
    purchase = RecordedPurchaseFactory(
        customer=customer, tax_rate=Decimal("20"), offer=OfferFactory(name="Pottery Basics course", price_amount=4900)
    )
    refund_record(purchase=purchase, amount=400, reason="Damaged download")

    response = client_logged_in.get("/purchases/receipts/R-000001/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "<title>Receipt R-000001 · Clay &amp; Code Studio</title>" in html
    assert '<p class="receipt__business">Clay &amp; Code Studio</p>' in html
    assert "12 Kiln Lane<br>Bristol BS1 4DJ<br>United Kingdom" in html
    assert "Tax ID: GB123456789" in html
    assert "Dana Demo<br>" in html
    assert customer.email in html
    assert "1 Demo Street<br>EC1A 1BB London<br>United Kingdom<br>" in html
    assert "Tax ID: GB980780684" in html
    assert '<tr><td>Pottery Basics course</td><td class="num">1</td><td class="num">£49.00</td></tr>' in html
    assert re.search(r"Subtotal</th><td class=\"num\">£40.83</td>", html)
    assert re.search(r"Tax \(20%, included\)</th><td class=\"num\">£8.17</td>", html)
    assert re.search(r"Total</th><td class=\"num\">£49.00</td>", html)
    assert re.search(r"Refunded [^<]+</th><td class=\"num\">−£4.00</td>", html)
    assert 'href="/purchases/receipts/R-000001/pdf/"' in html


def test_the_receipt_says_which_refunds_are_on_their_way_and_which_did_not_go_through(client_logged_in, customer):
    from purchases.services import refund_status_set

    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    refund_record(purchase=purchase, amount=400, status="pending", stripe_refund_id="re_pending")
    failed = refund_record(purchase=purchase, amount=700, status="pending", stripe_refund_id="re_failed")
    refund_status_set(refund=failed, status="failed", failure_reason="expired_or_canceled_card")

    html = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()
    pdf_text = client_logged_in.get("/purchases/receipts/R-000001/pdf/").content

    assert re.search(
        r'data-refund-status="pending".*Refund on its way \(started [^<]+\)</th><td class="num">−£4.00', html
    )
    assert re.search(r'data-refund-status="failed".*did not go through</th><td class="num">£7.00</td>', html)
    assert "Refunded " not in html
    assert pdf_text.startswith(b"%PDF")
    purchase.refresh_from_db()
    assert purchase.amount_refunded == 400


def test_receipt_dates_are_in_the_customers_time_zone(client_logged_in, customer):
    customer.time_zone = "Asia/Tokyo"
    customer.save()
    purchase = RecordedPurchaseFactory(customer=customer, purchased_at=datetime(2026, 1, 1, 20, 0, tzinfo=UTC))
    refund = refund_record(purchase=purchase, amount=100)
    refund.created_at = datetime(2026, 1, 3, 16, 30, tzinfo=UTC)  # Jan 4, 01:30 in Tokyo
    refund.save()

    html = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()

    assert '<time datetime="2026-01-02T05:00:00+0900">Jan. 2, 2026, 5 a.m.</time> (Asia/Tokyo)' in html
    assert "Jan. 1, 2026" not in html
    assert "Refunded Jan. 4, 2026" in html


@pytest.mark.parametrize("refunds", [0, 1, 10])
def test_the_receipt_page_costs_the_same_queries_for_any_number_of_refunds(
    client_logged_in, customer, django_assert_num_queries, refunds
):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=10_000))
    for _ in range(refunds):
        refund_record(purchase=purchase, amount=100)
    client_logged_in.get("/purchases/")

    with django_assert_num_queries(RECEIPT_PAGE_QUERIES):
        response = client_logged_in.get("/purchases/receipts/R-000001/")

    assert response.content.decode().count("−£1.00") == refunds


def test_the_receipt_page_costs_the_same_queries_with_corrections(
    client_logged_in, customer, frozen_mode, django_assert_num_queries
):
    from purchases.services import receipt_issue_correction

    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    for city in ["Leeds", "York", "Bath"]:
        customer_update_contact(customer=customer, data={"city": city}, by=customer.user)
        receipt_issue_correction(receipt=original)
    client_logged_in.get("/purchases/")

    with django_assert_num_queries(RECEIPT_PAGE_QUERIES):
        response = client_logged_in.get(original.get_absolute_url())

    assert response.content.decode().count("A corrected copy of this receipt was issued") == 3


# --- the PDF ---------------------------------------------------------------------------------------


def test_the_receipt_pdf_is_downloaded_as_an_attachment(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    response = client_logged_in.get("/purchases/receipts/R-000001/pdf/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="receipt-R-000001.pdf"'
    assert response.content.startswith(b"%PDF")
    assert response.content.rstrip().endswith(b"%%EOF")


def test_the_receipt_pdf_has_the_receipts_content(client_logged_in, customer, pdf_text):
    site_settings_update(data=BUSINESS)
    purchase = RecordedPurchaseFactory(
        customer=customer, tax_rate=Decimal("20"), offer=OfferFactory(name="Pottery Basics course", price_amount=4900)
    )
    refund_record(purchase=purchase, amount=400)

    text = pdf_text(client_logged_in.get("/purchases/receipts/R-000001/pdf/").content)

    assert "Clay & Code Studio" in text
    assert "12 Kiln Lane" in text
    assert "Tax ID: GB123456789" in text
    assert "Receipt R-000001" in text
    assert customer.full_name in text
    assert customer.address_line1 in text
    assert "Pottery Basics course" in text
    assert "£40.83" in text
    assert "Tax (20%, included)" in text
    assert "£8.17" in text
    assert "£49.00" in text
    assert "-£4.00" in text


def test_the_receipt_pdf_follows_a_contact_change(client_logged_in, customer, pdf_text):
    RecordedPurchaseFactory(customer=customer)
    old_line1 = customer.address_line1

    customer_update_contact(
        customer=customer,
        data={"full_name": "Zoë Ångström", "address_line1": "2 Harbour Road", "city": "Leeds"},
        by=customer.user,
    )

    text = pdf_text(client_logged_in.get("/purchases/receipts/R-000001/pdf/").content)
    assert "Zoë Ångström" in text
    assert "2 Harbour Road" in text
    assert "Leeds" in text
    assert old_line1 not in text


def test_a_western_european_receipt_pdf_embeds_no_font_and_any_other_embeds_vera(client_logged_in, customer, pdf_text):
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Café crème course", price_amount=4900))

    western = client_logged_in.get("/purchases/receipts/R-000001/pdf/").content
    assert b"/FontFile2" not in western and b"BitstreamVera" not in western  # Helvetica, the readers' own
    assert len(western) < 10_000
    assert "Café crème course" in pdf_text(western)

    customer_update_contact(customer=customer, data={"full_name": "Łucja Čapková"}, by=customer.user)
    other = client_logged_in.get("/purchases/receipts/R-000001/pdf/").content
    assert b"/FontFile2" in other and b"BitstreamVeraSans" in other  # a subset of Vera is embedded
    text = pdf_text(other)
    assert "Łucja Čapková" in text and "Café crème course" in text


def test_the_receipt_pdf_dates_are_in_the_customers_time_zone(client_logged_in, customer, pdf_text):
    customer.time_zone = "Asia/Tokyo"
    customer.save()
    RecordedPurchaseFactory(customer=customer, purchased_at=datetime(2026, 1, 1, 20, 0, tzinfo=UTC))

    text = pdf_text(client_logged_in.get("/purchases/receipts/R-000001/pdf/").content)

    assert "Issued Jan. 2, 2026" in text


def test_a_corrected_copy_pdf_names_the_original(client_logged_in, customer, frozen_mode, pdf_text):
    from purchases.services import receipt_issue_correction

    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data={"city": "Leeds"}, by=customer.user)
    correction = receipt_issue_correction(receipt=original)

    text = pdf_text(client_logged_in.get(f"/purchases/receipts/{correction.number}/pdf/").content)

    assert "Corrected copy of receipt R-000001" in text


# --- who may see what ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/purchases/receipts/{number}/"),
        ("get", "/purchases/receipts/{number}/pdf/"),
        ("post", "/purchases/receipts/{number}/correct/"),
    ],
)
def test_another_customers_receipt_is_not_found(client_logged_in, other_customer, frozen_mode, method, path):
    theirs = RecordedPurchaseFactory(customer=other_customer).receipts.get()
    customer_update_contact(customer=other_customer, data={"city": "Leeds"}, by=other_customer.user)

    response = getattr(client_logged_in, method)(path.format(number=theirs.number))

    assert response.status_code == 404
    assert not theirs.corrections.exists()


def test_an_unknown_receipt_number_is_not_found(client_logged_in):
    assert client_logged_in.get("/purchases/receipts/R-999999/").status_code == 404


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/purchases/"),
        ("get", "/purchases/receipts/{number}/"),
        ("get", "/purchases/receipts/{number}/pdf/"),
        ("post", "/purchases/receipts/{number}/correct/"),
    ],
)
def test_anonymous_visitors_are_sent_to_sign_in(client, customer, frozen_mode, method, path):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data={"city": "Leeds"}, by=customer.user)
    url = path.format(number=receipt.number)

    response = getattr(client, method)(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"
    assert not receipt.corrections.exists()


def test_purchase_pages_are_kept_out_of_caches(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer)

    for url in ["/purchases/", "/purchases/receipts/R-000001/", "/purchases/receipts/R-000001/pdf/"]:
        response = client_logged_in.get(url)
        assert "no-store" in response["Cache-Control"], url
        assert "private" in response["Cache-Control"], url


def test_the_business_logo_is_on_the_receipt_page_and_pdf(client_logged_in, customer):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    from portal.selectors import site_settings_get

    buffer = io.BytesIO()
    Image.new("RGB", (80, 32), "teal").save(buffer, format="PNG")
    site = site_settings_get()
    site.logo.save("logo.png", SimpleUploadedFile("logo.png", buffer.getvalue(), content_type="image/png"))
    RecordedPurchaseFactory(customer=customer)

    page = client_logged_in.get("/purchases/receipts/R-000001/").content.decode()
    pdf = client_logged_in.get("/purchases/receipts/R-000001/pdf/")

    assert f'<img class="receipt__logo" src="{site.logo.url}"' in page
    assert pdf.status_code == 200
    assert b"/Subtype /Image" in pdf.content


def test_a_missing_logo_file_does_not_stop_the_pdf(client_logged_in, customer):
    site_settings_update(data={"logo": "site/gone.png"})
    RecordedPurchaseFactory(customer=customer)

    response = client_logged_in.get("/purchases/receipts/R-000001/pdf/")

    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")


def test_purchase_dates_on_the_list_are_in_the_customers_time_zone(client_logged_in, customer):
    customer.time_zone = "Asia/Tokyo"
    customer.save()
    RecordedPurchaseFactory(customer=customer, purchased_at=datetime(2026, 1, 1, 20, 0, tzinfo=UTC))

    [row] = rows(client_logged_in.get("/purchases/").content.decode())

    assert '<time datetime="2026-01-02">Jan. 2, 2026</time>' in row
