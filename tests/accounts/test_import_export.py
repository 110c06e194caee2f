"""Contacts as CSV in admin (django-import-export): a preview, per-row errors, nothing half-imported, and export."""

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Customer, CustomField
from accounts.services import CUSTOM_CHOICE_INVALID, CUSTOM_NUMBER_INVALID
from portal.models import AuditEntry, OutboundEmail
from purchases.models import Receipt
from tests.factories import CustomerFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

IMPORT_URL = "/admin/accounts/customer/import/"
CONFIRM_URL = "/admin/accounts/customer/process_import/"
EXPORT_URL = "/admin/accounts/customer/export/"


def csv_file(rows: list[dict]) -> SimpleUploadedFile:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return SimpleUploadedFile("contacts.csv", buffer.getvalue().encode(), content_type="text/csv")


def preview(client, rows):
    return client.post(IMPORT_URL, {"format": "0", "resource": "0", "import_file": csv_file(rows)})


def confirm(client, response):
    return client.post(CONFIRM_URL, response.context["confirm_form"].initial)


GOOD_ROWS = [
    {
        "email": "ada@example.com",
        "full_name": "Ada  Lovelace",
        "country": "gb",
        "tax_id_type": "gb_vat",
        "tax_id_value": "GB 980 7806 84",
        "external_user_id": "crm-1",
    },
    {
        "email": "grace@example.com",
        "full_name": "Grace Hopper",
        "country": "US",
        "tax_id_type": "",
        "tax_id_value": "",
        "external_user_id": "crm-2",
    },
]


def test_the_import_shows_a_preview_and_saves_nothing_until_confirmed(creator_client):
    response = preview(creator_client, GOOD_ROWS)

    result = response.context["result"]
    assert response.status_code == 200
    assert not result.has_errors() and not result.has_validation_errors()
    assert [row.import_type for row in result.rows] == ["new", "new"]
    assert "confirm_form" in response.context
    assert not Customer.objects.filter(user__email__in=["ada@example.com", "grace@example.com"]).exists()


def test_the_preview_marks_new_values_without_inline_styles(creator_client):
    """The diff library's own markup has style attributes, which the Content-Security-Policy blocks."""
    page = preview(creator_client, GOOD_ROWS).content.decode()

    table = page[page.index('<table class="import-preview">') :]
    assert "<ins>Grace Hopper</ins>" in table
    assert "style=" not in table


def test_a_confirmed_import_creates_the_contacts_through_the_services(creator_client, creator):
    response = confirm(creator_client, preview(creator_client, GOOD_ROWS))

    assert response.status_code == 302
    ada = Customer.objects.get(user__email="ada@example.com")
    assert ada.full_name == "Ada Lovelace"  # cleaned like the contact form does
    assert (ada.country.code, ada.tax_id_value, ada.external_user_id) == ("GB", "GB980780684", "crm-1")
    assert not ada.user.has_usable_password()
    assert AuditEntry.objects.filter(customer=ada, action="customer.created", actor=creator).exists()
    assert AuditEntry.objects.filter(customer=ada, action="contact.updated").exists()
    assert not OutboundEmail.objects.exists()  # imported customers get no login email


def test_a_bad_row_names_its_row_and_field_and_nothing_is_imported(creator_client):
    rows = [
        GOOD_ROWS[0],
        {**GOOD_ROWS[1], "tax_id_type": "gb_vat", "tax_id_value": "GB123", "country": "GB"},
        {**GOOD_ROWS[1], "email": "not-an-address"},
    ]

    response = preview(creator_client, rows)

    result = response.context["result"]
    invalid = {row.number: row.field_specific_errors for row in result.invalid_rows}
    assert set(invalid) == {2, 3}
    assert invalid[2]["tax_id_value"][0].startswith("This is not a valid UK VAT number")
    assert invalid[3]["email"] == ["Enter a valid email address."]
    assert "confirm_form" not in response.context
    page = response.content.decode()
    assert "tax_id_value" in page and "This is not a valid UK VAT number" in page
    assert not Customer.objects.filter(user__email="ada@example.com").exists()  # the good row neither


def test_custom_field_columns_are_checked_by_type(creator_client):
    CustomField.objects.create(key="seats", label="Seats", type="number")
    CustomField.objects.create(key="plan", label="Plan", type="choice", choices="Basic\nPro")

    response = preview(
        creator_client,
        [{"email": "ada@example.com", "custom:seats": "many", "custom:plan": "Gold"}],
    )

    [row] = response.context["result"].invalid_rows
    assert row.field_specific_errors == {
        "custom:seats": [str(CUSTOM_NUMBER_INVALID)],
        "custom:plan": [str(CUSTOM_CHOICE_INVALID) % {"choices": "Basic, Pro"}],
    }


def test_a_file_that_stops_passing_its_checks_before_confirmation_imports_nothing(creator_client):
    plan = CustomField.objects.create(key="plan", label="Plan", type="choice", choices="Basic\nPro")
    rows = [
        {"email": "ada@example.com", "custom:plan": "Basic"},
        {"email": "grace@example.com", "custom:plan": "Pro"},
    ]
    checked = preview(creator_client, rows)
    plan.choices = "Basic\nPremium"  # the creator changed the choices in another tab
    plan.save()

    response = confirm(creator_client, checked)

    assert response.status_code == 302
    assert response["Location"] == IMPORT_URL
    assert not Customer.objects.filter(user__email__in=["ada@example.com", "grace@example.com"]).exists()
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == ["Nothing was imported: the file no longer passes its checks."]


def test_an_import_updates_an_existing_contact_like_an_edit_and_resyncs_receipts(creator_client, creator):
    customer = CustomerFactory(full_name="Old Name", country="GB")
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = preview(creator_client, [{"email": customer.user.email.upper(), "full_name": "New Name"}])
    assert [row.import_type for row in response.context["result"].rows] == ["update"]
    confirm(creator_client, response)

    customer.refresh_from_db()
    assert customer.full_name == "New Name"
    assert Receipt.objects.get(pk=receipt.pk).billing_name == "New Name"
    entry = AuditEntry.objects.get(customer=customer, action="contact.updated", actor=creator)
    assert entry.changes == {"full_name": ["Old Name", "New Name"]}
    assert Customer.objects.filter(user__email__iexact=customer.user.email).count() == 1


def test_an_unchanged_row_is_skipped(creator_client):
    customer = CustomerFactory(full_name="Same Name")

    response = preview(creator_client, [{"email": customer.user.email, "full_name": "Same Name"}])

    assert [row.import_type for row in response.context["result"].rows] == ["skip"]


def test_the_export_is_a_csv_of_contacts_with_their_custom_fields(creator_client):
    CustomField.objects.create(key="seats", label="Seats", type="number")
    customer = CustomerFactory(full_name="Ada Lovelace", external_user_id="crm-1", custom_field_values={"seats": "3"})
    form = creator_client.get(EXPORT_URL).context["form"]
    chosen = {name: "on" for name in form.fields if name.startswith("customerresource_")}

    response = creator_client.post(EXPORT_URL, {"format": "0", "resource": "0", **chosen})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    [row] = [r for r in rows if r["email"] == customer.email]
    assert row["full_name"] == "Ada Lovelace"
    assert row["external_user_id"] == "crm-1"
    assert row["custom:seats"] == "3"
    assert row["country"] == "GB"


def test_an_exported_formula_is_marked_as_text_and_reimports_unchanged(creator_client):
    """The export escapes what a spreadsheet would evaluate; importing that export gives back the value."""
    customer = CustomerFactory(
        full_name='=HYPERLINK("http://evil.example","x")', city="@SUM(1)", phone="+44 20 7946 0958"
    )
    form = creator_client.get(EXPORT_URL).context["form"]
    chosen = {name: "on" for name in form.fields if name.startswith("customerresource_")}

    exported = creator_client.post(EXPORT_URL, {"format": "0", "resource": "0", **chosen}).content.decode()
    [row] = [r for r in csv.DictReader(io.StringIO(exported)) if r["email"] == customer.email]
    assert row["full_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["city"] == "'@SUM(1)"
    assert row["phone"] == "+44 20 7946 0958"  # a phone number is not a formula

    response = preview(
        creator_client, [{key: value for key, value in row.items() if key in ("email", "full_name", "city")}]
    )

    assert [r.import_type for r in response.context["result"].rows] == ["skip"]  # nothing changed
