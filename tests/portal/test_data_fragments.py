"""Fragments kept per process and keyed on the data they show (CACHES["data_fragments"]): form fields
and forms (portal.forms.field_fragment_key, form_fragment_key) and the purchases page's table rows,
product list and downloads. Whatever changes the data, by a form, a service or a plain UPDATE, the page
shows the new data at once."""

import re
from datetime import UTC, datetime

import pytest
from django import forms

from accounts.models import Customer
from accounts.preferences import BILLING_NOTICES
from accounts.services import customer_unsubscribe, customer_update_contact
from portal.forms import field_fragment_key, form_fragment_key
from purchases.models import Product
from purchases.services import refund_record
from tests.factories import CustomerFactory, OfferFactory, ProductFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db


def test_a_contact_edit_shows_at_once_on_the_contact_page(client_logged_in, customer):
    client_logged_in.get("/settings/contact/")
    customer_update_contact(customer=customer, data={"city": "Lüneburg"}, by=customer.user)

    assert 'value="Lüneburg"' in client_logged_in.get("/settings/contact/").content.decode()


def test_a_notification_turned_off_by_an_update_shows_at_once_on_the_profile_page(client_logged_in, customer):
    """One-click unsubscribe writes with QuerySet.update(), which no save signal reports: the key is the value."""
    Customer.objects.filter(pk=customer.pk).update(notify_billing_notices=True)
    assert " checked" in _billing_notices_input(client_logged_in)

    customer_unsubscribe(customer=Customer.objects.get(pk=customer.pk), category=BILLING_NOTICES)

    assert " checked" not in _billing_notices_input(client_logged_in)


def _billing_notices_input(client) -> str:
    page = client.get("/settings/profile/").content.decode()
    return re.search(r'<input[^>]*name="notify_billing_notices"[^>]*>', page).group(0)


def test_two_customers_with_other_values_each_see_their_own(client, customer):
    other = CustomerFactory(full_name="Other Person", city="Oslo")
    Customer.objects.filter(pk=customer.pk).update(full_name="First Person", city="Bergen")
    client.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    first = client.get("/settings/contact/").content.decode()
    client.force_login(other.user, backend="accounts.backends.PortalAuthenticationBackend")
    second = client.get("/settings/contact/").content.decode()

    assert 'value="Bergen"' in first and 'value="Oslo"' not in first
    assert 'value="Oslo"' in second and 'value="Bergen"' not in second


def test_a_refused_submission_shows_its_errors_and_values_then_the_stored_values_again(client_logged_in, customer):
    Customer.objects.filter(pk=customer.pk).update(phone="+44 20 7946 0000")
    client_logged_in.get("/settings/contact/")

    refused = client_logged_in.post("/settings/contact/", {"full_name": "A", "phone": "12"}).content.decode()
    again = client_logged_in.get("/settings/contact/").content.decode()

    assert 'value="12"' in refused and "Enter a phone number" in refused
    assert 'value="+44 20 7946 0000"' in again and "Enter a phone number" not in again


def test_the_same_page_in_another_language_is_not_served_from_the_first_ones_fragments(client_logged_in, customer):
    client_logged_in.get("/settings/contact/")
    Customer.objects.filter(pk=customer.pk).update(language="de")

    page = client_logged_in.get("/settings/contact/").content.decode()

    assert "Deutschland" in page and ">Germany<" not in page


def test_a_refund_shows_at_once_in_the_purchases_table(client_logged_in, customer):
    purchase = RecordedPurchaseFactory(customer=customer)
    assert "refunded" not in client_logged_in.get("/purchases/").content.decode()

    refund_record(purchase=purchase, amount=100)

    assert "£1.00 refunded" in client_logged_in.get("/purchases/").content.decode()


def test_a_product_changed_by_an_update_shows_at_once_in_the_product_list(client_logged_in, customer):
    course = ProductFactory(name="Pottery Basics", access_url="https://learn.example.com/pottery/")
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(products=[course]))
    assert "Open Pottery Basics" in client_logged_in.get("/purchases/").content.decode()

    Product.objects.filter(pk=course.pk).update(name="Glazing", access_url="https://learn.example.com/glazing/")

    page = client_logged_in.get("/purchases/").content.decode()
    assert 'href="https://learn.example.com/glazing/" rel="noopener">Open Glazing</a>' in page
    assert "Pottery Basics" not in page


def test_a_purchase_in_a_new_year_adds_its_receipts_download_at_once(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer, purchased_at=datetime(2025, 6, 1, 12, tzinfo=UTC))
    assert "Receipts 2026 (ZIP)" not in client_logged_in.get("/purchases/").content.decode()

    RecordedPurchaseFactory(customer=customer, purchased_at=datetime(2026, 6, 1, 12, tzinfo=UTC))

    page = client_logged_in.get("/purchases/").content.decode()
    assert "Receipts 2026 (ZIP)" in page and "Receipts 2025 (ZIP)" in page


def test_the_product_list_and_downloads_follow_the_language(client_logged_in, customer):
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(products=[ProductFactory(name="Kiln")]))
    client_logged_in.get("/purchases/")
    Customer.objects.filter(pk=customer.pk).update(language="de")

    page = client_logged_in.get("/purchases/").content.decode()

    assert "Kiln öffnen" in page and "Open Kiln" not in page
    assert "(ZIP)" in page and "Belege " in page and "Receipts " not in page


class _Pick(forms.Form):
    name = forms.CharField()
    when = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


def test_a_field_is_keyed_on_its_value():
    first, second = _Pick(initial={"name": "a"}), _Pick(initial={"name": "b"})

    assert field_fragment_key(first["name"]) != field_fragment_key(second["name"])
    assert field_fragment_key(first["when"]) == field_fragment_key(second["when"])


def test_a_bound_form_and_a_field_with_database_choices_are_rendered_each_time(customer):
    class Owner(forms.Form):
        customer = forms.ModelChoiceField(queryset=Customer.objects.all())

    assert form_fragment_key(_Pick(data={"name": "a"})) == ""
    assert field_fragment_key(Owner()["customer"]) == ""
    assert form_fragment_key(Owner()) == ""
    assert form_fragment_key(_Pick()) != ""


def test_a_submitted_field_without_errors_is_keyed_on_the_submitted_value():
    first, second = _Pick(data={"name": "a", "when": "2026-12-04"}), _Pick(data={"name": "b", "when": "2026-12-04"})

    assert field_fragment_key(first["name"]) not in ("", field_fragment_key(second["name"]))
    assert field_fragment_key(first["when"]) == field_fragment_key(second["when"]) != ""
    assert field_fragment_key(first["name"]) != field_fragment_key(_Pick(initial={"name": "b"})["name"])


def test_a_submitted_field_with_an_error_a_password_or_a_file_is_rendered_each_time():
    class Secret(forms.Form):
        password = forms.CharField(widget=forms.PasswordInput)
        upload = forms.FileField(required=False)

    assert field_fragment_key(_Pick(data={"name": "a", "when": "not a date"})["when"]) == ""
    assert field_fragment_key(Secret(data={"password": "hunter2"})["password"]) == ""
    assert field_fragment_key(Secret(data={"password": "hunter2"})["upload"]) == ""
    assert field_fragment_key(Secret()["password"]) != ""
