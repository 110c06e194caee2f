"""A customer finds their purchases, products and receipts, and receipts follow (or keep) their details."""

import os
import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from portal.services import site_settings_update
from purchases.models import Receipt
from purchases.services import purchase_record, refund_record
from tests.factories import CustomerFactory, OfferFactory, ProductFactory

from .conftest import MOBILE, field, sign_in_with_form

pytestmark = pytest.mark.e2e

OLD_ADDRESS = {"address_line1": "1 Old Road", "city": "London", "postal_code": "SW1A 1AA", "country": "GB"}


@pytest.fixture
def buyer(transactional_db):
    return CustomerFactory(full_name="Ada Lovelace", time_zone="UTC", **OLD_ADDRESS)


def record(customer, offer, *, days_ago: int):
    """A sale recorded the way the Stripe webhook records it; returns its (only) receipt."""
    purchase = purchase_record(customer=customer, offer=offer, purchased_at=timezone.now() - timedelta(days=days_ago))
    return purchase.receipts.get()


def receipt_url(receipt) -> re.Pattern:
    return re.compile(rf"/purchases/receipts/{re.escape(receipt.number)}/$")


def billed_to(page):
    return page.locator(".receipt__billed address")


def change_address(page, line1: str, city: str) -> None:
    page.goto("/settings/contact/")
    field(page, "Address line 1").fill(line1)
    field(page, "City").fill(city)
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/settings/contact/$"))
    expect(page.locator(".message--success")).to_have_text("Your contact information was saved.")


def pdf_text(path) -> str | None:
    """The PDF's text by poppler's pdftotext; None (the check is skipped) when it is not installed locally."""
    exe = "/usr/bin/pdftotext" if os.access("/usr/bin/pdftotext", os.X_OK) else shutil.which("pdftotext")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext is required in CI: apt-get install poppler-utils", pytrace=False)
        return None
    return subprocess.run([exe, str(path), "-"], capture_output=True, text=True, check=True, timeout=20).stdout


def download_pdf(page, receipt, tmp_path) -> str | None:
    """Click the receipt page's "Download PDF"; check the file name and return the PDF's text."""
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download PDF").click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == f"receipt-{receipt.number}.pdf"
    path = tmp_path / f"{receipt.number}-{len(list(tmp_path.iterdir()))}.pdf"
    download.save_as(path)
    assert path.read_bytes().startswith(b"%PDF-")
    return pdf_text(path)


def test_receipts_follow_changed_details_in_resync_mode(page, buyer, tmp_path):
    painting = ProductFactory(name="Watercolour Basics")
    club = ProductFactory(name="Sketching Club")
    older = record(buyer, OfferFactory(name="Watercolour course", products=[painting]), days_ago=30)
    newer = record(buyer, OfferFactory(name="Sketching membership", products=[club]), days_ago=2)
    sign_in_with_form(page, buyer.user.email)

    page.goto("/purchases/")
    expect(page.get_by_role("heading", name="Purchases", level=1)).to_be_visible()
    for product in (painting, club):
        expect(page.get_by_role("link", name=f"Open {product.name}")).to_have_attribute("href", product.access_url)
    rows = page.locator("section[aria-labelledby=purchases-heading] tbody tr")
    expect(rows).to_have_count(2)
    # Newest first, each with its receipt.
    expect(rows.nth(0)).to_contain_text("Sketching membership")
    expect(rows.nth(0).get_by_role("link", name=newer.number, exact=True)).to_be_visible()
    expect(rows.nth(1)).to_contain_text("Watercolour course")
    expect(rows.nth(1)).to_contain_text("£49.00")
    expect(rows.nth(1).locator(".badge")).to_have_text("Paid")
    expect(page.get_by_text("Receipts always show your current billing details")).to_be_visible()

    rows.nth(1).get_by_role("link", name=older.number, exact=True).click()
    expect(page).to_have_url(receipt_url(older))
    expect(page.get_by_role("heading", name=f"Receipt {older.number}", level=1)).to_be_visible()
    expect(billed_to(page)).to_contain_text("1 Old Road")
    expect(billed_to(page)).to_contain_text("SW1A 1AA London")
    expect(page.get_by_text("This receipt shows your current billing details")).to_be_visible()
    expect(page.get_by_role("button", name="Get a corrected copy")).to_have_count(0)

    change_address(page, "22 New Street", "Manchester")

    page.goto(older.get_absolute_url())
    expect(billed_to(page)).to_contain_text("22 New Street")
    expect(billed_to(page)).to_contain_text("SW1A 1AA Manchester")
    expect(billed_to(page)).not_to_contain_text("1 Old Road")
    text = download_pdf(page, older, tmp_path)
    if text is not None:
        assert f"Receipt {older.number}" in text
        assert "22 New Street" in text and "Manchester" in text
        assert "1 Old Road" not in text

    # Both receipts were rewritten, and no new receipt was issued.
    assert list(
        Receipt.objects.filter(customer=buyer)
        .order_by("number")
        .values_list("number", "billing_address_line1", "billing_city")
    ) == sorted([(older.number, "22 New Street", "Manchester"), (newer.number, "22 New Street", "Manchester")])


def test_frozen_receipt_keeps_its_details_and_gets_one_corrected_copy(page, buyer, tmp_path):
    site_settings_update(data={"receipt_mode": "frozen"})
    original = record(buyer, OfferFactory(name="Watercolour course"), days_ago=30)
    sign_in_with_form(page, buyer.user.email)
    change_address(page, "22 New Street", "Manchester")

    page.goto("/purchases/")
    expect(page.get_by_text("Receipts keep the billing details they were issued with.")).to_be_visible()
    page.get_by_role("link", name=original.number, exact=True).click()
    expect(page).to_have_url(receipt_url(original))
    expect(billed_to(page)).to_contain_text("1 Old Road")
    expect(billed_to(page)).to_contain_text("SW1A 1AA London")
    expect(page.get_by_text("Receipts keep the details they were issued with.")).to_be_visible()

    page.get_by_role("button", name="Get a corrected copy").click()
    page.wait_for_url(lambda url: "/purchases/receipts/" in url and not receipt_url(original).search(url))
    correction = Receipt.objects.get(corrects=original)
    expect(page).to_have_url(receipt_url(correction))
    expect(page.locator(".messages .message--success")).to_have_text(
        f"Corrected copy {correction.number} issued with your current details."
    )
    expect(page.get_by_role("heading", name=f"Receipt {correction.number}", level=1)).to_be_visible()
    expect(page.get_by_text(f"Corrected copy of receipt {original.number}.")).to_be_visible()
    expect(billed_to(page)).to_contain_text("22 New Street")
    expect(billed_to(page)).to_contain_text("SW1A 1AA Manchester")
    text = download_pdf(page, correction, tmp_path)
    if text is not None:
        assert f"Corrected copy of receipt {original.number}" in text
        assert "22 New Street" in text and "1 Old Road" not in text

    page.get_by_role("link", name="View the original").click()
    expect(page).to_have_url(receipt_url(original))
    expect(billed_to(page)).to_contain_text("1 Old Road")
    expect(billed_to(page)).not_to_contain_text("22 New Street")
    expect(page.get_by_text(f"A corrected copy of this receipt was issued: {correction.number}.")).to_be_visible()
    text = download_pdf(page, original, tmp_path)
    if text is not None:
        assert "1 Old Road" in text and "22 New Street" not in text

    # Asking again issues nothing: the corrected copy already shows the current details.
    page.get_by_role("button", name="Get a corrected copy").click()
    expect(page.locator(".messages .message--error")).to_have_text(
        f"A corrected copy with your current details already exists: {correction.number}."
    )
    expect(page).to_have_url(receipt_url(original))
    assert Receipt.objects.filter(customer=buyer).count() == 2

    page.goto("/purchases/")
    receipts_cell = page.locator("section[aria-labelledby=purchases-heading] tbody tr td").nth(4)
    expect(receipts_cell.get_by_role("link")).to_have_text([original.number, correction.number])
    expect(receipts_cell).to_contain_text("(corrected copy)")


def test_another_customers_receipt_is_not_found(page, buyer, console_errors, live_server):
    theirs = record(CustomerFactory(address_line1="9 Secret Lane"), OfferFactory(), days_ago=1)
    sign_in_with_form(page, buyer.user.email)

    for path in (theirs.get_absolute_url(), f"{theirs.get_absolute_url()}pdf/"):
        response = page.goto(path)
        assert response.status == 404, path
        expect(page.locator("body")).not_to_contain_text("9 Secret Lane")
        expect(page.get_by_role("heading", name="We could not find that page")).to_be_visible()
    # Chromium logs every 404 document as a console error: those two are expected, nothing else is.
    not_found = "console: Failed to load resource: the server responded with a status of 404 (Not Found)"
    expected = {
        f"{not_found} ({live_server.url}{path})"
        for path in (theirs.get_absolute_url(), f"{theirs.get_absolute_url()}pdf/")
    }
    unexpected = [error for error in console_errors if error not in expected]
    assert not unexpected, unexpected
    console_errors.clear()


def test_partly_refunded_purchase_shows_its_refund(page, buyer, tmp_path):
    receipt = record(buyer, OfferFactory(name="Watercolour course"), days_ago=10)
    refund = refund_record(purchase=receipt.purchase, amount=1500, reason="Late start")
    sign_in_with_form(page, buyer.user.email)

    page.goto("/purchases/")
    row = page.locator("section[aria-labelledby=purchases-heading] tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".badge")).to_have_text("Partly refunded")
    expect(row).to_contain_text("£15.00 refunded")

    row.get_by_role("link", name=receipt.number, exact=True).click()
    expect(page).to_have_url(receipt_url(receipt))
    refunded_on = formats.date_format(timezone.localtime(refund.created_at), "DATE_FORMAT")
    refund_row = page.locator("tfoot tr").filter(has_text="Refunded")
    expect(refund_row).to_have_count(1)
    expect(refund_row).to_contain_text(f"Refunded {refunded_on}")
    expect(refund_row).to_contain_text("−£15.00")
    expect(page.locator("tfoot .receipt__total")).to_contain_text("£49.00")
    text = download_pdf(page, receipt, tmp_path)
    if text is not None:
        assert "Refunded" in text and "£15.00" in text


def test_purchases_and_receipt_fit_a_360px_screen(new_page, buyer):
    long_offer = OfferFactory(
        name="Advanced watercolour landscapes: a twelve-week course with weekly feedback",
        products=[ProductFactory(name="Advanced watercolour landscapes and seascapes")],
    )
    receipt = record(buyer, long_offer, days_ago=3)
    refund_record(purchase=receipt.purchase, amount=900)
    record(buyer, OfferFactory(), days_ago=1)
    page = new_page(viewport=MOBILE)
    sign_in_with_form(page, buyer.user.email)

    for path in ("/purchases/", receipt.get_absolute_url()):
        response = page.goto(path)
        assert response.status == 200, path
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= MOBILE["width"], f"{path} scrolls sideways at 360px ({width}px wide)"
        # A wide table may scroll, but only inside its own wrapper.
        for wrap in page.locator(".table-wrap").all():
            box = wrap.bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"], f"{path}: table-wrap off screen"
    expect(page.get_by_role("link", name="Download PDF")).to_be_in_viewport()
