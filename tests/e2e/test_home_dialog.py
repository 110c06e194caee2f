"""The home page's "Update my info" button: a dialog with htmx, the contact page without JavaScript."""

import re

import pytest
from playwright.sync_api import expect

from accounts.models import Customer

from .conftest import field, sign_in_with_form

pytestmark = pytest.mark.e2e


def test_update_my_info_dialog_shows_errors_then_saves(signed_in_page, e2e_customer):
    page = signed_in_page
    dialog = page.locator("dialog#info-dialog")
    expect(dialog).not_to_be_visible()

    page.get_by_role("link", name="Update my info").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("open", "")
    expect(dialog.get_by_role("heading", name="Update my info")).to_be_visible()
    expect(field(dialog, "Full name")).to_have_value("Ada Lovelace")
    expect(field(dialog, "Full name")).to_be_focused()
    assert page.url.endswith("/"), "htmx loads the form without leaving the home page"

    # An invalid tax ID: the form comes back inside the dialog with the error; nothing is saved.
    field(dialog, "Full name").fill("Not Saved")
    field(dialog, "Tax ID type").select_option("gb_vat")
    field(dialog, "Tax ID").fill("GB123")
    dialog.get_by_role("button", name="Save", exact=True).click()
    error = dialog.locator(".field--invalid .errorlist")
    expect(error).to_contain_text("This is not a valid UK VAT number")
    expect(dialog).to_be_visible()
    expect(field(dialog, "Tax ID")).to_have_value("GB123")
    expect(dialog.locator("form")).to_have_count(1)
    assert page.url.endswith("/")
    stored = Customer.objects.get(pk=e2e_customer.pk)
    assert (stored.full_name, stored.tax_id_type, stored.tax_id_value) == ("Ada Lovelace", "", "")

    # A valid change: htmx follows HX-Redirect back to the home page, which shows the new name.
    field(dialog, "Full name").fill("Grace Hopper")
    field(dialog, "Tax ID type").select_option("")
    field(dialog, "Tax ID").fill("")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("heading", name="Welcome, Grace Hopper")).to_be_visible()
    expect(page).to_have_url(re.compile(r"^[^?#]*/$"))
    expect(page.locator(".message--success")).to_have_text("Your contact information was saved.")
    expect(page.locator("dialog#info-dialog")).not_to_be_visible()
    expect(page.locator("dl.details")).to_contain_text("Grace Hopper")
    stored = Customer.objects.get(pk=e2e_customer.pk)
    assert (stored.full_name, stored.tax_id_type, stored.tax_id_value) == ("Grace Hopper", "", "")


def test_update_my_info_dialog_cancel_closes_it(signed_in_page):
    page = signed_in_page
    page.get_by_role("link", name="Update my info").click()
    dialog = page.locator("dialog#info-dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).not_to_be_visible()


def test_update_my_info_without_javascript_opens_the_contact_page(new_page, e2e_customer):
    page = new_page(java_script_enabled=False)
    sign_in_with_form(page, e2e_customer.user.email)
    page.get_by_role("link", name="Update my info").click()
    expect(page).to_have_url(re.compile(r"/settings/contact/$"))
    expect(page.get_by_role("heading", name="Contact information", level=2)).to_be_visible()
    expect(field(page, "Full name")).to_have_value("Ada Lovelace")
