"""The settings pages fed through their views: bad input is refused with a clear field error and
leaves the database row as it was; good input is saved in its normal form."""

import pytest
from django.contrib.messages import get_messages
from django.urls import get_resolver
from django.utils.html import escape

from accounts.forms import (
    CONTROL_CHARACTERS,
    MARKUP_NOT_ALLOWED,
    PHONE_INVALID,
    TAX_ID_EU_PREFIX_MISMATCH,
    TAX_ID_INVALID,
    TAX_ID_NEEDS_COUNTRY,
    TAX_ID_TYPE_WITHOUT_VALUE,
    TAX_ID_VALUE_WITHOUT_TYPE,
    TAX_ID_WRONG_COUNTRY,
    WEBSITE_NOT_HTTPS,
)
from accounts.models import Customer, TaxIdStatus
from accounts.signals import contact_changed
from accounts.social import NETWORKS_BY_FIELD

CONTACT_URL = "/settings/contact/"
PROFILE_URL = "/settings/profile/"
SOCIAL_URL = "/settings/social/"

CONTACT_FORM_FIELDS = (
    "full_name",
    "phone",
    "tax_id_type",
    "tax_id_value",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
)
SOCIAL_FORM_FIELDS = (
    "bio",
    "location",
    "x_username",
    "instagram_username",
    "linkedin_username",
    "youtube_handle",
    "tiktok_username",
    "website_url",
)

NULL_CHARACTERS = "Null characters are not allowed."
INVALID_URL = "Enter a valid URL."


def too_long(limit, length):
    return f"Ensure this value has at most {limit} characters (it has {length})."


def invalid_choice(value):
    return f"Select a valid choice. {value} is not one of the available choices."


def invalid_username(field):
    network = NETWORKS_BY_FIELD[field]
    return f"That is not a valid {network.label} username. {network.rule}"


def contact_data(customer, **changes):
    """The contact form as the browser would post it: the stored values, with some changed."""
    stored = Customer.objects.get(pk=customer.pk)
    data = {field: getattr(stored, field) for field in CONTACT_FORM_FIELDS}
    data["country"] = stored.country.code or ""
    data.update(changes)
    return data


def profile_data(customer, **changes):
    stored = Customer.objects.get(pk=customer.pk)
    data = {"time_zone": stored.time_zone}
    for field in ("notify_renewal_reminders", "notify_card_expiry_reminders"):
        if getattr(stored, field):
            data[field] = "on"
    data.update(changes)
    return data


def social_data(customer, **changes):
    stored = Customer.objects.get(pk=customer.pk)
    data = {field: getattr(stored, field) for field in SOCIAL_FORM_FIELDS}
    if stored.directory_opt_in:
        data["directory_opt_in"] = "on"
    data.update(changes)
    return data


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def contact_signals():
    received = []

    def receiver(sender, changed_fields, by, **kwargs):
        received.append((changed_fields, by))

    contact_changed.connect(receiver, weak=False, dispatch_uid="tests.views.contact_signals")
    yield received
    contact_changed.disconnect(dispatch_uid="tests.views.contact_signals")


def assert_refused(response, field, message, *, before, after):
    """The page is shown again with `message` under `field`, and the row did not change."""
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert field in errors, f"expected an error on {field!r}, got {errors.as_data()}"
    assert str(message) in errors[field], f"{field}: {errors[field]}"
    assert escape(str(message)) in response.content.decode()
    assert after == before


# --- contact -------------------------------------------------------------------------------

# (changes to a valid form, the field that must carry the error, the error text)
CONTACT_REFUSALS = {
    "tax id value without type": (
        {"tax_id_type": "", "tax_id_value": "DE123456788", "country": "DE"},
        "tax_id_type",
        TAX_ID_VALUE_WITHOUT_TYPE,
    ),
    "tax id type without value": (
        {"tax_id_type": "eu_vat", "tax_id_value": "", "country": "DE"},
        "tax_id_value",
        TAX_ID_TYPE_WITHOUT_VALUE,
    ),
    "tax id type of only blanks": (
        {"tax_id_type": "eu_vat", "tax_id_value": "   ", "country": "DE"},
        "tax_id_value",
        TAX_ID_TYPE_WITHOUT_VALUE,
    ),
    "unknown tax id type": ({"tax_id_type": "xx_tin", "tax_id_value": "123"}, "tax_id_type", invalid_choice("xx_tin")),
    "unknown country": ({"country": "XX"}, "country", invalid_choice("XX")),
    "10000 character name": ({"full_name": "A" * 10_000}, "full_name", too_long(150, 10_000)),
    "10000 character address": ({"address_line1": "1" * 10_000}, "address_line1", too_long(200, 10_000)),
    "10000 character city": ({"city": "c" * 10_000}, "city", too_long(100, 10_000)),
    "10000 character postal code": ({"postal_code": "9" * 10_000}, "postal_code", too_long(20, 10_000)),
    "10000 character phone": ({"phone": "1" * 10_000}, "phone", too_long(32, 10_000)),
    "10000 character tax id": (
        {"tax_id_type": "eu_vat", "tax_id_value": "DE" + "1" * 9_998, "country": "DE"},
        "tax_id_value",
        too_long(32, 10_000),
    ),
    "NUL in name": ({"full_name": "Ada\x00Lovelace"}, "full_name", NULL_CHARACTERS),
    "NUL in address": ({"address_line2": "Flat 1\x00"}, "address_line2", NULL_CHARACTERS),
    "bell in name": ({"full_name": "Ada\x07"}, "full_name", CONTROL_CHARACTERS),
    "terminal escape in city": ({"city": "\x1b[2JLondon"}, "city", CONTROL_CHARACTERS),
    "DEL in region": ({"region": "Kent\x7f"}, "region", CONTROL_CHARACTERS),
    "right-to-left override in name": ({"full_name": "Ada \u202eecalevol"}, "full_name", CONTROL_CHARACTERS),
    "bidi isolate in address": ({"address_line1": "\u20661 High St\u2069"}, "address_line1", CONTROL_CHARACTERS),
    "script tag in name": ({"full_name": "<script>alert(1)</script>"}, "full_name", MARKUP_NOT_ALLOWED),
    "markup in address": ({"address_line1": '<img src=x onerror="alert(1)">'}, "address_line1", MARKUP_NOT_ALLOWED),
    "markup in postal code": ({"postal_code": "<b>"}, "postal_code", MARKUP_NOT_ALLOWED),
    "invalid EU VAT checksum": (
        {"tax_id_type": "eu_vat", "tax_id_value": "DE123456789", "country": "DE"},
        "tax_id_value",
        str(TAX_ID_INVALID) % {"type": "EU VAT number", "example": "DE123456788"},
    ),
    "EU VAT without country prefix": (
        {"tax_id_type": "eu_vat", "tax_id_value": "123456788", "country": "DE"},
        "tax_id_value",
        str(TAX_ID_INVALID) % {"type": "EU VAT number", "example": "DE123456788"},
    ),
    "invalid US EIN": (
        {"tax_id_type": "us_ein", "tax_id_value": "00-0000000", "country": "US"},
        "tax_id_value",
        str(TAX_ID_INVALID) % {"type": "US EIN", "example": "12-3456789"},
    ),
    "UK VAT for an address in Germany": (
        {"tax_id_type": "gb_vat", "tax_id_value": "GB980780684", "country": "DE"},
        "tax_id_value",
        str(TAX_ID_WRONG_COUNTRY) % {"type": "UK VAT number", "country": "Germany"},
    ),
    "EU VAT for an address in the US": (
        {"tax_id_type": "eu_vat", "tax_id_value": "DE123456788", "country": "US"},
        "tax_id_value",
        str(TAX_ID_WRONG_COUNTRY) % {"type": "EU VAT number", "country": "United States of America"},
    ),
    "German VAT for an address in France": (
        {"tax_id_type": "eu_vat", "tax_id_value": "DE123456788", "country": "FR"},
        "tax_id_value",
        str(TAX_ID_EU_PREFIX_MISMATCH) % {"vat_country": "Germany", "country": "France"},
    ),
    "tax id without a country": (
        {"tax_id_type": "eu_vat", "tax_id_value": "DE123456788", "country": ""},
        "country",
        TAX_ID_NEEDS_COUNTRY,
    ),
    "phone of words": ({"phone": "call me maybe"}, "phone", PHONE_INVALID),
    "phone too short": ({"phone": "12345"}, "phone", PHONE_INVALID),
    "phone with 16 digits": ({"phone": "+1234567890123456"}, "phone", PHONE_INVALID),
    "phone with letters inside": ({"phone": "+44 20 7946 O958"}, "phone", PHONE_INVALID),
}


@pytest.mark.parametrize(("changes", "field", "message"), CONTACT_REFUSALS.values(), ids=CONTACT_REFUSALS.keys())
def test_contact_form_refuses_bad_input_and_saves_nothing(
    client_logged_in, customer, stored_row, contact_signals, changes, field, message
):
    before = stored_row(customer)

    response = client_logged_in.post(CONTACT_URL, contact_data(customer, **changes))

    assert_refused(response, field, message, before=before, after=stored_row(customer))
    assert contact_signals == []


@pytest.mark.parametrize("character", ["\x85", "\x9b"], ids=["C1 next line", "C1 control sequence introducer"])
def test_contact_form_refuses_c1_control_characters(client_logged_in, customer, stored_row, character):
    """U+0080–U+009F are control characters too (U+009B starts a terminal escape sequence)."""
    before = stored_row(customer)

    response = client_logged_in.post(CONTACT_URL, contact_data(customer, full_name=f"Ada{character}31m"))

    assert_refused(response, "full_name", CONTROL_CHARACTERS, before=before, after=stored_row(customer))


@pytest.mark.parametrize(
    ("value", "country", "stored_value"),
    [
        ("de 123 456 788", "DE", "DE123456788"),
        ("DE123456788", "DE", "DE123456788"),
        ("EL 094259216", "GR", "EL094259216"),
        ("123456789", "US", "12-3456789"),  # Stripe documents us_ein in its formatted form
    ],
)
def test_contact_form_saves_a_valid_tax_id_in_compact_form(
    client_logged_in, customer, contact_signals, value, country, stored_value
):
    type_code = "us_ein" if country == "US" else "eu_vat"
    data = contact_data(customer, tax_id_type=type_code, tax_id_value=value, country=country)

    response = client_logged_in.post(CONTACT_URL, data)

    assert response.status_code == 302
    assert response["Location"] == CONTACT_URL
    assert messages_of(response) == ["Your contact information was saved."]
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.tax_id_type, stored.tax_id_value, stored.country.code) == (type_code, stored_value, country)
    assert stored.tax_id_status == TaxIdStatus.FORMAT_VALID
    assert contact_signals == [(frozenset({"tax_id_type", "tax_id_value", "country"}), customer.user)]


def test_contact_form_saves_name_and_address_and_announces_exactly_those(client_logged_in, customer, contact_signals):
    data = contact_data(
        customer, full_name="  Ada   Lovelace ", address_line1="12 St James's Square", phone="+44 (20) 7946-0958"
    )

    response = client_logged_in.post(CONTACT_URL, data)

    assert response.status_code == 302
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.full_name == "Ada Lovelace"
    assert stored.address_line1 == "12 St James's Square"
    assert stored.phone == "+44 (20) 7946-0958"
    assert contact_signals == [(frozenset({"full_name", "address_line1", "phone"}), customer.user)]


def test_contact_form_posted_unchanged_says_nothing_changed(client_logged_in, customer, stored_row, contact_signals):
    before = stored_row(customer)

    response = client_logged_in.post(CONTACT_URL, contact_data(customer))

    assert response.status_code == 302
    assert messages_of(response) == ["Nothing changed."]
    assert stored_row(customer) == before
    assert contact_signals == []


def test_contact_form_in_the_home_dialog_saves_and_sends_htmx_back_home(client_logged_in, customer):
    data = contact_data(customer, city="Cambridge", next_page="home")

    response = client_logged_in.post(CONTACT_URL, data, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/"
    assert Customer.objects.get(pk=customer.pk).city == "Cambridge"


def test_contact_form_in_the_home_dialog_shows_errors_in_the_partial(client_logged_in, customer, stored_row):
    before = stored_row(customer)

    response = client_logged_in.post(
        CONTACT_URL, contact_data(customer, full_name="<b>x</b>", next_page="home"), headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert "<html" not in body and 'name="next_page" value="home"' in body
    assert escape(str(MARKUP_NOT_ALLOWED)) in body
    assert stored_row(customer) == before


# --- profile -------------------------------------------------------------------------------

PROFILE_REFUSALS = {
    "unknown time zone": ({"time_zone": "Mars/Olympus_Mons"}, "time_zone", invalid_choice("Mars/Olympus_Mons")),
    "10000 character time zone": ({"time_zone": "E" * 10_000}, "time_zone", invalid_choice("E" * 10_000)),
    "NUL in time zone": ({"time_zone": "Europe/Berlin\x00"}, "time_zone", invalid_choice("Europe/Berlin\x00")),
    "empty time zone": ({"time_zone": ""}, "time_zone", "This field is required."),
}


@pytest.mark.parametrize(("changes", "field", "message"), PROFILE_REFUSALS.values(), ids=PROFILE_REFUSALS.keys())
def test_profile_form_refuses_bad_input_and_saves_nothing(
    client_logged_in, customer, stored_row, changes, field, message
):
    before = stored_row(customer)
    data = profile_data(customer, notify_card_expiry_reminders="on", **changes)

    response = client_logged_in.post(PROFILE_URL, data)

    assert_refused(response, field, message, before=before, after=stored_row(customer))


def test_profile_form_saves_time_zone_and_notifications(client_logged_in, customer):
    data = {"time_zone": "Europe/Berlin", "notify_billing_notices": "on", "notify_card_expiry_reminders": "on"}

    response = client_logged_in.post(PROFILE_URL, data)

    assert response.status_code == 302
    assert response["Location"] == PROFILE_URL
    assert messages_of(response) == ["Your profile was saved."]
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.time_zone == "Europe/Berlin"
    assert (stored.notify_billing_notices, stored.notify_renewal_reminders, stored.notify_card_expiry_reminders) == (
        True,
        False,
        True,
    )


# --- social --------------------------------------------------------------------------------

SOCIAL_REFUSALS = {
    "bio over 500 characters": ({"bio": "b" * 501}, "bio", too_long(500, 501)),
    "10000 character bio": ({"bio": "b" * 10_000}, "bio", too_long(500, 10_000)),
    "NUL in bio": ({"bio": "Hi\x00there"}, "bio", NULL_CHARACTERS),
    "right-to-left override in bio": ({"bio": "Hi \u202ethere"}, "bio", CONTROL_CHARACTERS),
    "markup in location": ({"location": "<script>alert(1)</script>"}, "location", MARKUP_NOT_ALLOWED),
    "control character in location": ({"location": "Paris\x1b[0m"}, "location", CONTROL_CHARACTERS),
    "10000 character location": ({"location": "L" * 10_000}, "location", too_long(100, 10_000)),
    "X username with spaces": ({"x_username": "not valid"}, "x_username", invalid_username("x_username")),
    "X username of 16 characters": ({"x_username": "a" * 16}, "x_username", invalid_username("x_username")),
    "10000 character X username": ({"x_username": "a" * 10_000}, "x_username", invalid_username("x_username")),
    "X profile URL with a bad name": (
        {"x_username": "https://x.com/bad-name!"},
        "x_username",
        invalid_username("x_username"),
    ),
    "markup as X username": ({"x_username": "<script>"}, "x_username", MARKUP_NOT_ALLOWED),
    "NUL in X username": ({"x_username": "some\x00one"}, "x_username", invalid_username("x_username")),
    "RLO in X username": ({"x_username": "some\u202eone"}, "x_username", CONTROL_CHARACTERS),
    "Instagram name starting with a dot": (
        {"instagram_username": ".someone"},
        "instagram_username",
        invalid_username("instagram_username"),
    ),
    "LinkedIn name too short": (
        {"linkedin_username": "ab"},
        "linkedin_username",
        invalid_username("linkedin_username"),
    ),
    "YouTube handle with a space": (
        {"youtube_handle": "@my handle"},
        "youtube_handle",
        invalid_username("youtube_handle"),
    ),
    "TikTok name of one character": ({"tiktok_username": "x"}, "tiktok_username", invalid_username("tiktok_username")),
    "http website": ({"website_url": "http://example.com/"}, "website_url", WEBSITE_NOT_HTTPS),
    "ftp website": ({"website_url": "ftp://example.com/"}, "website_url", WEBSITE_NOT_HTTPS),
    "javascript website": ({"website_url": "javascript:alert(1)"}, "website_url", INVALID_URL),
    "10000 character website": (
        {"website_url": "https://" + "a" * 9_988 + ".com"},
        "website_url",
        too_long(200, 10_000),
    ),
}


@pytest.mark.parametrize(("changes", "field", "message"), SOCIAL_REFUSALS.values(), ids=SOCIAL_REFUSALS.keys())
def test_social_form_refuses_bad_input_and_saves_nothing(
    client_logged_in, customer, stored_row, changes, field, message
):
    before = stored_row(customer)

    response = client_logged_in.post(SOCIAL_URL, social_data(customer, directory_opt_in="on", **changes))

    assert_refused(response, field, message, before=before, after=stored_row(customer))


def test_social_form_reduces_pasted_urls_and_handles_to_usernames(client_logged_in, customer):
    data = social_data(
        customer,
        bio="Potter.\nLikes <em>clay</em>.",  # shown as plain text, so markup is allowed and escaped
        location="Bath",
        x_username="https://x.com/someone",
        instagram_username="@some.one",
        linkedin_username="https://www.linkedin.com/in/jane-doe/",
        youtube_handle="@handle",
        tiktok_username="https://www.tiktok.com/@tik.tok",
        website_url="example.com",
        directory_opt_in="on",
    )

    response = client_logged_in.post(SOCIAL_URL, data)

    assert response.status_code == 302
    assert response["Location"] == SOCIAL_URL
    assert messages_of(response) == ["Your social profile was saved."]
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.x_username, stored.instagram_username, stored.linkedin_username) == (
        "someone",
        "some.one",
        "jane-doe",
    )
    assert (stored.youtube_handle, stored.tiktok_username) == ("handle", "tik.tok")
    assert stored.website_url == "https://example.com"
    assert stored.bio == "Potter.\nLikes <em>clay</em>."
    assert stored.directory_opt_in is True


def test_social_form_can_clear_every_field(client_logged_in, customer):
    Customer.objects.filter(pk=customer.pk).update(
        bio="Old", x_username="someone", website_url="https://example.com", directory_opt_in=True
    )

    response = client_logged_in.post(SOCIAL_URL, {field: "" for field in SOCIAL_FORM_FIELDS})

    assert response.status_code == 302
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.bio, stored.x_username, stored.website_url, stored.directory_opt_in) == ("", "", "", False)


# --- isolation: every settings view acts on request.user only ----------------------------


def test_no_settings_url_takes_an_id():
    """Nothing in a settings URL can point at another customer's record; the only accounts URLs with a
    parameter are the emailed links, whose signed token is checked before anything is shown."""
    from accounts import urls

    signed_links = {"hub/<str:token>/", "email/unsubscribe/<str:token>/"}
    for pattern in urls.urlpatterns:
        if str(pattern.pattern) in signed_links:
            assert set(pattern.pattern.regex.groupindex) == {"token"}
            continue
        assert not pattern.pattern.regex.groupindex, pattern.pattern
        assert "<" not in str(pattern.pattern)
    assert get_resolver().resolve("/settings/contact/").kwargs == {}


def test_contact_post_ignores_ids_and_protected_fields(client_logged_in, customer, other_customer, stored_row):
    other_before = stored_row(other_customer)
    own_before = stored_row(customer)
    data = contact_data(customer, full_name="Changed By Me")
    data.update(
        {
            "id": other_customer.pk,
            "pk": other_customer.pk,
            "user": other_customer.user.pk,
            "user_id": other_customer.user.pk,
            "customer": other_customer.pk,
            "is_staff": "on",
            "is_superuser": "on",
            "stripe_customer_id": "cus_attacker",
            "external_user_id": "attacker",
            "email": "attacker@example.com",
            "tax_id_status": TaxIdStatus.VERIFIED,
            "custom_field_values": '{"vip": true}',
        }
    )

    client_logged_in.post(CONTACT_URL, data)

    assert stored_row(other_customer) == other_before
    own = stored_row(customer)
    for field in ("user_id", "email", "stripe_customer_id", "external_user_id", "tax_id_status", "custom_field_values"):
        assert own[field] == own_before[field], field
    customer.user.refresh_from_db()
    assert (customer.user.is_staff, customer.user.is_superuser) == (False, False)
    assert customer.user.email == own_before["email"]
    assert own["full_name"] == "Changed By Me"


@pytest.mark.parametrize(
    ("url", "data"),
    [
        (PROFILE_URL, {"time_zone": "Asia/Tokyo", "notify_card_expiry_reminders": "on"}),
        (SOCIAL_URL, {"bio": "Mine", "directory_opt_in": "on"}),
    ],
)
def test_profile_and_social_posts_with_other_ids_change_only_the_signed_in_customer(
    client_logged_in, customer, other_customer, stored_row, url, data
):
    other_before = stored_row(other_customer)

    client_logged_in.post(
        url,
        {
            **data,
            "id": other_customer.pk,
            "user": other_customer.user.pk,
            "customer": other_customer.pk,
            "pk": other_customer.pk,
        },
    )

    assert stored_row(other_customer) == other_before
    own = Customer.objects.get(pk=customer.pk)
    assert own.time_zone == data.get("time_zone", "UTC")
    assert own.bio == data.get("bio", customer.bio)


@pytest.mark.parametrize("url", [CONTACT_URL, PROFILE_URL, SOCIAL_URL, "/"])
def test_settings_pages_show_only_the_signed_in_customers_data(client_logged_in, customer, other_customer, url):
    Customer.objects.filter(pk=other_customer.pk).update(
        full_name="Zelda Other", bio="Other bio", phone="+49 30 1234567", x_username="zelda_other"
    )

    response = client_logged_in.get(
        url, {"id": other_customer.pk, "pk": other_customer.pk, "user": other_customer.user.pk}
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert escape(customer.full_name) in body
    for secret in ("Zelda Other", "Other bio", "+49 30 1234567", "zelda_other", other_customer.email):
        assert secret not in body
