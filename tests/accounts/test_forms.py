"""The settings forms on their own: every text field shares the same guards, and every tax ID
type the portal offers accepts its own example and stores it the way Stripe expects."""

import pytest
from django import forms

from accounts.forms import (
    CONTROL_CHARACTERS,
    MARKUP_NOT_ALLOWED,
    TAX_ID_WRONG_COUNTRY,
    ContactForm,
    SocialForm,
)
from accounts.social import NETWORKS
from accounts.taxids import TAX_ID_TYPES, tax_id_compact, tax_id_is_valid

VALID_CONTACT = {
    "full_name": "Ada Lovelace",
    "phone": "+44 20 7946 0958",
    "tax_id_type": "",
    "tax_id_value": "",
    "address_line1": "12 St James's Square",
    "address_line2": "",
    "city": "London",
    "region": "",
    "postal_code": "SW1Y 4LB",
    "country": "GB",
}


def contact_form(customer, **changes):
    return ContactForm({**VALID_CONTACT, **changes}, instance=customer)


def social_form(customer, **changes):
    return SocialForm({**changes}, instance=customer)


def _text_fields(form_class, customer):
    form = form_class(instance=customer)
    return [
        name
        for name, field in form.fields.items()
        if isinstance(field, forms.CharField) and not isinstance(field, forms.URLField)
    ]


def test_the_valid_contact_data_used_here_is_valid(customer):
    form = contact_form(customer)
    assert form.is_valid(), form.errors


@pytest.mark.parametrize("character", ["\x01", "\x08", "\x0b", "\x1f", "\x7f", "\u202a", "\u202e", "\u2066", "\u2069"])
def test_every_contact_text_field_refuses_control_characters(customer, character):
    fields = [f for f in _text_fields(ContactForm, customer) if f != "tax_id_type"]
    assert {"full_name", "phone", "tax_id_value", "address_line1", "city", "postal_code"} <= set(fields)
    for name in fields:
        form = contact_form(customer, **{name: f"ab{character}cd"})
        assert not form.is_valid()
        assert str(CONTROL_CHARACTERS) in form.errors.get(name, []), (name, form.errors)


def test_every_contact_text_field_refuses_angle_brackets(customer):
    for name in ContactForm.plain_text_fields:
        form = contact_form(customer, **{name: "a<b"})
        assert not form.is_valid()
        assert str(MARKUP_NOT_ALLOWED) in form.errors.get(name, []), (name, form.errors)


@pytest.mark.parametrize("network", NETWORKS, ids=lambda n: n.field)
def test_every_social_username_refuses_markup_and_control_characters(customer, network):
    form = social_form(customer, **{network.field: "<img src=x>"})
    assert str(MARKUP_NOT_ALLOWED) in form.errors[network.field]

    form = social_form(customer, **{network.field: "abc\u202edef"})
    assert str(CONTROL_CHARACTERS) in form.errors[network.field]


def test_social_bio_may_contain_line_breaks_and_angle_brackets_as_plain_text(customer):
    form = social_form(customer, bio="I <3 clay.\r\nAnd code.")

    assert form.is_valid(), form.errors
    assert form.cleaned_data["bio"] == "I <3 clay.\r\nAnd code."


def _home_country(tax_type):
    return "DE" if tax_type.code == "eu_vat" else sorted(tax_type.countries)[0]


@pytest.mark.parametrize("tax_type", TAX_ID_TYPES.values(), ids=lambda t: t.code)
def test_every_tax_id_type_accepts_its_own_example_in_its_country(customer, tax_type):
    form = contact_form(
        customer, tax_id_type=tax_type.code, tax_id_value=tax_type.example, country=_home_country(tax_type)
    )

    assert form.is_valid(), form.errors
    stored = form.cleaned_data["tax_id_value"]
    assert stored == tax_id_compact(type_code=tax_type.code, value=tax_type.example)
    assert tax_id_is_valid(type_code=tax_type.code, value=stored)


@pytest.mark.parametrize("tax_type", [t for t in TAX_ID_TYPES.values() if t.code != "eu_vat"], ids=lambda t: t.code)
def test_every_national_tax_id_type_is_refused_for_an_address_elsewhere(customer, tax_type):
    elsewhere = "JP"  # not the home of any offered type

    form = contact_form(customer, tax_id_type=tax_type.code, tax_id_value=tax_type.example, country=elsewhere)

    assert not form.is_valid()
    assert form.errors["tax_id_value"] == [str(TAX_ID_WRONG_COUNTRY) % {"type": tax_type.label, "country": "Japan"}]


@pytest.mark.parametrize(
    ("type_code", "value", "country", "stored"),
    [
        ("eu_vat", "DE 123 456 788", "DE", "DE123456788"),
        ("eu_vat", "el094259216", "GR", "EL094259216"),
        # Stripe's gb_vat format is GB followed by nine digits (its example: GB123456789).
        ("gb_vat", "GB 980 780 684", "GB", "GB980780684"),
        ("gb_vat", "GB980780684", "GB", "GB980780684"),
    ],
)
def test_vat_numbers_are_stored_with_their_country_prefix(customer, type_code, value, country, stored):
    form = contact_form(customer, tax_id_type=type_code, tax_id_value=value, country=country)

    assert form.is_valid(), form.errors
    assert form.cleaned_data["tax_id_value"] == stored


def _options(form, name) -> list[str]:
    return [label for _value, label in form.fields[name].widget.choices]


def test_the_country_and_tax_id_lists_are_in_the_active_language_and_follow_country_settings(settings):
    from django.utils import translation

    with translation.override("de"):
        german = ContactForm()
        assert "Deutschland" in _options(german, "country") and "Keine" in _options(german, "tax_id_type")
        assert '<option value="DE">Deutschland</option>' in str(german["country"])
    english = ContactForm()
    assert _options(english, "country")[0] == "---------" and "Germany" in _options(english, "country")
    assert _options(english, "tax_id_type")[:2] == ["None", "EU VAT number"]

    settings.COUNTRIES_ONLY = ["GB", "IE"]
    assert _options(ContactForm(), "country") == ["---------", "Ireland", "United Kingdom"]
