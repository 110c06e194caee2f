"""The contact fields are declared once (accounts.contact); the form, receipts and the processor push follow it."""

import pytest

from accounts.contact import BILLING_FIELDS, CONTACT_FIELDS, CONTACT_FORM_FIELDS
from accounts.forms import ContactForm
from accounts.models import Customer
from billing.receivers import PUSHED_FIELDS
from billing.services import customer_details
from purchases.models import Receipt
from purchases.services import BILLING_SNAPSHOT_FIELDS
from tests.factories import CustomerFactory


def test_every_declared_contact_field_is_a_field_of_the_customer():
    customer_fields = {field.name for field in Customer._meta.get_fields()}
    assert set(CONTACT_FIELDS) <= customer_fields


def test_the_contact_form_edits_every_contact_field_but_the_email_address_in_the_declared_order():
    assert list(ContactForm().fields) == [field for field in CONTACT_FIELDS if field != "email"]
    assert "email" not in CONTACT_FORM_FIELDS


def test_receipts_copy_every_billing_field_and_nothing_else_into_a_receipt_column():
    receipt_columns = {field.name for field in Receipt._meta.get_fields()}
    assert set(BILLING_SNAPSHOT_FIELDS) == set(BILLING_FIELDS)
    assert set(BILLING_SNAPSHOT_FIELDS.values()) <= receipt_columns
    assert BILLING_SNAPSHOT_FIELDS["full_name"] == "billing_name"
    assert "phone" not in BILLING_SNAPSHOT_FIELDS


def test_a_change_of_any_billing_field_is_pushed_to_the_processor_and_a_phone_change_is_not():
    assert PUSHED_FIELDS == frozenset(BILLING_FIELDS)
    assert "phone" not in PUSHED_FIELDS


@pytest.mark.parametrize("field", BILLING_FIELDS)
def test_the_processor_customer_record_says_each_billing_field(field):
    customer = CustomerFactory.build(tax_id_type="eu_vat", tax_id_value="DE123456789", country="GB")
    before = customer_details(customer)
    setattr(customer, field, {"country": "FR", "tax_id_type": "gb_vat"}.get(field, "Changed 42"))
    assert customer_details(customer) != before
