"""A customer signs in, edits contact details, profile and avatar, and finds everything kept."""

import re

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import expect

from accounts.models import Customer, TaxIdStatus
from tests.factories import CustomerFactory

from .conftest import field, sign_in_with_form

pytestmark = pytest.mark.e2e


def make_png(path):
    image = Image.new("RGB", (120, 90), "#3b5bdb")
    ImageDraw.Draw(image).ellipse((20, 10, 100, 80), fill="#f59f00")
    image.save(path, format="PNG")
    return path


def avatar_loaded(page, selector: str) -> bool:
    return page.locator(selector).evaluate("img => img.complete && img.naturalWidth > 0")


def test_contact_profile_and_avatar_changes_persist(page, transactional_db, settings, tmp_path):
    customer = CustomerFactory(
        full_name="Ada Lovelace",
        address_line1="1 Old Road",
        city="Dublin",
        postal_code="D02 X285",
        country="IE",
        time_zone="UTC",
    )
    sign_in_with_form(page, customer.user.email)

    # Contact information
    page.goto("/settings/contact/")
    expect(page.get_by_role("heading", name="Contact information", level=2)).to_be_visible()
    field(page, "Full name").fill("Grace Hopper")
    field(page, "Address line 1").fill("10 Downing Street")
    field(page, "City").fill("London")
    field(page, "Postal code").fill("SW1A 2AA")
    field(page, "Country").select_option(label="United Kingdom")
    field(page, "Tax ID type").select_option(label="UK VAT number")
    field(page, "Tax ID").fill("GB980780684")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/settings/contact/$"))
    expect(page.locator(".message--success")).to_have_text("Your contact information was saved.")

    # Profile: time zone
    page.goto("/settings/profile/")
    field(page, "Time zone").select_option("Europe/Berlin")
    page.get_by_role("button", name="Save profile").click()
    expect(page.locator(".message--success")).to_have_text("Your profile was saved.")

    # Profile: avatar
    expect(page.locator("details.menu > summary img")).to_have_count(0)
    page.locator("input[type=file][name=avatar]").set_input_files(make_png(tmp_path / "me.png"))
    page.get_by_role("button", name="Upload avatar").click()
    expect(page.locator(".message--success")).to_have_text("Your new avatar is in place.")

    # Everything survives a fresh load of each page.
    page.goto("/settings/contact/")
    expect(field(page, "Full name")).to_have_value("Grace Hopper")
    expect(field(page, "Address line 1")).to_have_value("10 Downing Street")
    expect(field(page, "City")).to_have_value("London")
    expect(field(page, "Postal code")).to_have_value("SW1A 2AA")
    expect(field(page, "Country")).to_have_value("GB")
    expect(field(page, "Tax ID type")).to_have_value("gb_vat")
    expect(field(page, "Tax ID")).to_have_value("GB980780684")

    page.goto("/settings/profile/")
    expect(field(page, "Time zone")).to_have_value("Europe/Berlin")
    menu_avatar = "details.menu > summary img.avatar"
    expect(page.locator(menu_avatar)).to_have_attribute("src", re.compile(r"^/media/avatars/[0-9a-f]{32}\.webp$"))
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel); return img && img.complete }", arg=menu_avatar
    )
    assert avatar_loaded(page, menu_avatar), "the account menu's avatar did not load"
    assert avatar_loaded(page, ".avatar-row img.avatar")
    expect(page.get_by_role("button", name="Remove avatar")).to_be_visible()

    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome, Grace Hopper")).to_be_visible()
    details = page.locator("dl.details")
    expect(details).to_contain_text("10 Downing Street")
    expect(details).to_contain_text("SW1A 2AA London")
    expect(details).to_contain_text("United Kingdom")
    expect(details).to_contain_text("UK VAT number GB980780684")
    assert avatar_loaded(page, menu_avatar)

    # And the database holds the same values.
    customer = Customer.objects.get(pk=customer.pk)
    assert customer.full_name == "Grace Hopper"
    assert (customer.address_line1, customer.city, customer.postal_code, customer.country.code) == (
        "10 Downing Street",
        "London",
        "SW1A 2AA",
        "GB",
    )
    assert (customer.tax_id_type, customer.tax_id_value) == ("gb_vat", "GB980780684")
    assert customer.tax_id_status == TaxIdStatus.FORMAT_VALID
    assert customer.time_zone == "Europe/Berlin"
    assert re.fullmatch(r"avatars/[0-9a-f]{32}\.webp", customer.avatar.name)
    stored = settings.MEDIA_ROOT / customer.avatar.name
    with Image.open(stored) as image:
        assert (image.format, image.size) == ("WEBP", (settings.AVATAR_SIZE, settings.AVATAR_SIZE))
