"""A customer searches their purchases, has a receipt emailed, downloads a year's receipts and their data,
then deletes their account (#19 items 6 and 7)."""

import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from accounts.models import Customer
from portal.models import OutboundEmail
from purchases.models import Receipt
from purchases.services import purchase_record
from tests.factories import DEFAULT_PASSWORD, CustomerFactory, OfferFactory

from .conftest import field, sign_in_with_form

pytestmark = pytest.mark.e2e


@pytest.fixture
def buyer(transactional_db):
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="UTC")
    now = timezone.now()
    purchase_record(customer=customer, offer=OfferFactory(name="Glazing course"), purchased_at=now - timedelta(days=3))
    purchase_record(customer=customer, offer=OfferFactory(name="Kiln hire"), purchased_at=now - timedelta(days=2))
    return customer


def test_search_resend_download_and_delete(page, buyer):
    sign_in_with_form(page, buyer.user.email)
    year = timezone.now().year

    page.goto("/purchases/")
    page.get_by_label("Offer").select_option(label="Kiln hire")
    page.get_by_role("button", name="Search", exact=True).click()
    rows = page.locator("section[aria-labelledby=purchases-heading] tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Kiln hire")

    with page.expect_download() as download:
        page.get_by_role("link", name=f"Receipts {year} (ZIP)").click()
    archive = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
    assert sorted(archive.namelist()) == ["receipt-R-000001.pdf", "receipt-R-000002.pdf"]

    page.get_by_role("link", name="R-000002", exact=True).click()
    page.get_by_role("button", name="Email me this receipt").click()
    expect(page.locator(".message--success")).to_contain_text("Receipt R-000002 is on its way to")
    assert OutboundEmail.objects.filter(key__startswith="receipt:R-000002:resend:").count() == 1

    page.goto("/settings/data/")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download my data").click()
    data = zipfile.ZipFile(io.BytesIO(open(download.value.path(), "rb").read()))
    assert json.loads(data.read("data.json"))["receipts"] == ["R-000001", "R-000002"]

    field(page, "Your password").fill(DEFAULT_PASSWORD)
    page.get_by_label("I understand").check()
    page.get_by_role("button", name="Delete my account").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    expect(page.locator(".message--success")).to_contain_text("Your account was deleted.")
    assert Customer.objects.get(pk=buyer.pk).full_name == ""
    assert Receipt.objects.filter(customer=buyer).count() == 2
