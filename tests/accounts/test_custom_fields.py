"""Custom fields on the customer's own contact page: shown where the creator chose, editable where allowed."""

import pytest

from accounts.models import CustomField
from accounts.services import CUSTOM_DATE_INVALID, custom_field_value_clean
from portal.models import AuditEntry

pytestmark = pytest.mark.django_db

CONTACT = {
    "full_name": "Dana Demo",
    "phone": "",
    "tax_id_type": "",
    "tax_id_value": "",
    "address_line1": "1 Demo Street",
    "address_line2": "",
    "city": "London",
    "region": "",
    "postal_code": "EC1A 1BB",
    "country": "GB",
}


@pytest.fixture
def fields(db):
    return {
        "company": CustomField.objects.create(
            key="company", label="Company", type="text", visible_to_customer=True, editable_by_customer=True
        ),
        "birthday": CustomField.objects.create(
            key="birthday", label="Birthday", type="date", visible_to_customer=True, editable_by_customer=True
        ),
        "tier": CustomField.objects.create(
            key="tier", label="Tier", type="choice", choices="Gold\nSilver", visible_to_customer=True
        ),
        "score": CustomField.objects.create(key="score", label="Lead score", type="number"),
    }


def test_the_contact_page_shows_editable_fields_as_inputs_and_shown_ones_as_text(client_logged_in, customer, fields):
    customer.custom_field_values = {"company": "Clay Co", "tier": "Gold", "score": "87"}
    customer.save()

    response = client_logged_in.get("/settings/contact/")

    page = response.content.decode()
    assert 'name="custom_company"' in page and 'value="Clay Co"' in page
    assert 'name="custom_birthday"' in page and 'type="date"' in page
    assert 'name="custom_tier"' not in page and "Tier" in page and "Gold" in page  # shown, not editable
    assert "Lead score" not in page and ">87<" not in page  # the creator's own field stays hidden


def test_a_field_the_creator_edits_or_adds_shows_on_the_next_page_view(client_logged_in, customer, fields):
    client_logged_in.get("/settings/contact/")  # the form class for these fields is made and kept
    fields["company"].label = "Employer"
    fields["company"].save()
    CustomField.objects.create(
        key="team", label="Team", type="text", visible_to_customer=True, editable_by_customer=True
    )

    page = client_logged_in.get("/settings/contact/").content.decode()

    assert ">Employer</label>" in page and ">Company</label>" not in page
    assert 'name="custom_team"' in page


def test_a_customer_saves_their_custom_fields_and_it_is_audited(client_logged_in, customer, fields):
    response = client_logged_in.post(
        "/settings/contact/", {**CONTACT, "custom_company": "Clay Co", "custom_birthday": "1990-05-17"}
    )

    assert response.status_code == 302
    customer.refresh_from_db()
    assert customer.custom_field_values == {"company": "Clay Co", "birthday": "1990-05-17"}
    entry = AuditEntry.objects.get(action="custom_fields.updated")
    assert (entry.actor, entry.actor_kind) == (customer.user, "customer")
    assert "Your contact information was saved." in [str(m) for m in response.wsgi_request._messages]


def test_a_bad_date_is_refused_with_its_message(client_logged_in, customer, fields):
    response = client_logged_in.post("/settings/contact/", {**CONTACT, "custom_birthday": "17/05/1990"})

    assert response.status_code == 200
    assert response.context["form"].errors["custom_birthday"] == [str(CUSTOM_DATE_INVALID)]
    customer.refresh_from_db()
    assert customer.custom_field_values == {}


def test_a_customer_cannot_set_a_field_they_may_not_edit(client_logged_in, customer, fields):
    client_logged_in.post("/settings/contact/", {**CONTACT, "custom_tier": "Gold", "custom_score": "100"})

    customer.refresh_from_db()
    assert customer.custom_field_values == {}


def test_clearing_a_value_removes_it(client_logged_in, customer, fields):
    customer.custom_field_values = {"company": "Clay Co", "tier": "Gold"}
    customer.save()

    client_logged_in.post("/settings/contact/", {**CONTACT, "custom_company": "", "custom_birthday": ""})

    customer.refresh_from_db()
    assert customer.custom_field_values == {"tier": "Gold"}


@pytest.mark.parametrize(
    ("type_", "raw", "stored"),
    [
        ("number", " 12.50 ", "12.5"),
        ("number", "1e3", "1000"),
        ("number", "-0.25", "-0.25"),
        ("date", "2027-01-31", "2027-01-31"),
        ("text", "  hello  ", "hello"),
        ("text", "", ""),
        ("choice", "Gold", "Gold"),
    ],
)
def test_values_are_stored_in_one_form_per_type(type_, raw, stored):
    field = CustomField(key="k", label="K", type=type_, choices="Gold\nSilver")

    assert custom_field_value_clean(field=field, value=raw) == stored


@pytest.mark.parametrize(
    ("type_", "raw"), [("number", "NaN"), ("number", "12,5"), ("date", "2027-02-30"), ("choice", "gold")]
)
def test_values_of_the_wrong_type_are_refused(type_, raw):
    from django.core.exceptions import ValidationError

    field = CustomField(key="k", label="K", type=type_, choices="Gold\nSilver")

    with pytest.raises(ValidationError):
        custom_field_value_clean(field=field, value=raw)
