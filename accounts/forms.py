import re
from functools import lru_cache

from allauth.account.forms import RequestLoginCodeForm
from allauth.account.models import EmailAddress
from django import forms
from django.db.models.fields import BLANK_CHOICE_DASH
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django_countries import countries

from portal.forms import LongSelect

from .avatars import AvatarError, avatar_inspect
from .contact import CONTACT_FORM_FIELDS
from .models import Customer, CustomField, CustomFieldType, language_choices, time_zone_choices
from .services import CUSTOM_TEXT_MAX_LENGTH, custom_field_value_clean
from .social import NETWORKS, SOCIAL_FIELDS, clean_username
from .taxids import TAX_ID_TYPES, eu_vat_country, tax_id_compact, tax_id_is_valid

# Error messages as constants, so tests compare the exact text.
TAX_ID_VALUE_WITHOUT_TYPE = _("Choose the kind of tax ID.")
TAX_ID_TYPE_WITHOUT_VALUE = _("Enter the tax ID, or set its kind to none.")
TAX_ID_INVALID = _("This is not a valid %(type)s. Check it against your registration, e.g. %(example)s.")
TAX_ID_NEEDS_COUNTRY = _("Choose the country of your address so the tax ID can be checked.")
TAX_ID_WRONG_COUNTRY = _("A %(type)s cannot belong to an address in %(country)s.")
TAX_ID_EU_PREFIX_MISMATCH = _("This VAT number is registered in %(vat_country)s, but your address is in %(country)s.")
PHONE_INVALID = _("Enter a phone number of 6 to 15 digits; +, spaces, dots, hyphens and brackets are allowed.")
CONTROL_CHARACTERS = _("Remove the control characters (such as NUL) from this field.")
MARKUP_NOT_ALLOWED = _("Angle brackets < > are not allowed here.")
WEBSITE_NOT_HTTPS = _("Enter an address that starts with https://")

_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_PHONE = re.compile(r"\+?[0-9 ().\-]{6,24}")


def reject_control_characters(value: str) -> None:
    """Refuse NUL and other control characters, and bidirectional overrides that disguise text."""
    if value and _CONTROL.search(value):
        raise forms.ValidationError(CONTROL_CHARACTERS, code="control_characters")


LINE_BREAKS = _("This field is a single line; remove the line breaks and tabs.")


def reject_line_breaks(value: str) -> None:
    if value and any(ch in value for ch in "\n\r\t"):
        raise forms.ValidationError(LINE_BREAKS, code="line_breaks")


def reject_markup(value: str) -> None:
    if value and ("<" in value or ">" in value):
        raise forms.ValidationError(MARKUP_NOT_ALLOWED, code="markup")


class PortalFormMixin:
    """Validators every customer-facing text field shares."""

    plain_text_fields: tuple[str, ...] = ()

    def _post_clean_text(self):
        for name, field in self.fields.items():
            if isinstance(field, forms.CharField):
                field.validators = [*field.validators, reject_control_characters]
                if not isinstance(field.widget, forms.Textarea):
                    field.validators.append(reject_line_breaks)
                if name in self.plain_text_fields:
                    field.validators.append(reject_markup)


def country_choices() -> list[tuple[str, str]]:
    """The address countries in the active language, the empty choice first.

    The same list for each language (the country select then makes its options' markup once per
    language; django-countries' own list is rebuilt as it is read); accounts.receivers clears the lists when
    a COUNTRIES_ setting changes."""
    return _country_choices(get_language())


@lru_cache(maxsize=32)
def _country_choices(language: str | None) -> list[tuple[str, str]]:
    return [*BLANK_CHOICE_DASH, *((country.code, str(country.name)) for country in countries)]


def country_choices_clear() -> None:
    """Forget the country lists, ours and django-countries' own (which it keeps until told)."""
    del countries.countries
    _country_choices.cache_clear()


def tax_id_type_choices() -> list[tuple[str, str]]:
    """The tax ID types in the active language, "None" first: the same list for each language."""
    return _tax_id_type_choices(get_language())


@lru_cache(maxsize=32)
def _tax_id_type_choices(language: str | None) -> list[tuple[str, str]]:
    return [("", str(_("None"))), *((tax_type.code, str(tax_type.label)) for tax_type in TAX_ID_TYPES.values())]


# Each form copies its fields; a list of 250 translated choices took a tenth of the page to copy, a
# function giving the active language's list copies for nothing.
_LONG_CHOICES = {"country": country_choices, "tax_id_type": tax_id_type_choices}


def _contact_form_field(model_field, **kwargs):
    """The model field's form field, its choices given by one of the functions above when it has one."""
    field = model_field.formfield(**kwargs)
    if model_field.name in _LONG_CHOICES:
        field.choices = _LONG_CHOICES[model_field.name]
    return field


class ContactForm(PortalFormMixin, forms.ModelForm):
    plain_text_fields = tuple(field for field in CONTACT_FORM_FIELDS if field not in _LONG_CHOICES)

    class Meta:
        model = Customer
        formfield_callback = _contact_form_field
        fields = CONTACT_FORM_FIELDS
        widgets = {
            "full_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "phone": forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
            "address_line1": forms.TextInput(attrs={"autocomplete": "address-line1"}),
            "address_line2": forms.TextInput(attrs={"autocomplete": "address-line2"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
            "region": forms.TextInput(attrs={"autocomplete": "address-level1"}),
            "postal_code": forms.TextInput(attrs={"autocomplete": "postal-code"}),
            "country": LongSelect(attrs={"autocomplete": "country"}),
            "tax_id_type": LongSelect(),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "tax_id_type" in self.fields:  # the admin shows them read-only to staff who may only view
            self.fields["tax_id_value"].help_text = _("Checked against the rules of your address's country.")
        self._post_clean_text()

    def clean_full_name(self):
        return " ".join(self.cleaned_data["full_name"].split())

    def clean_phone(self):
        phone = self.cleaned_data["phone"].strip()
        digits = re.sub(r"\D", "", phone)
        if phone and (not _PHONE.fullmatch(phone) or not 6 <= len(digits) <= 15):
            raise forms.ValidationError(PHONE_INVALID, code="invalid_phone")
        return phone

    def clean(self):
        cleaned = super().clean()
        type_code = cleaned.get("tax_id_type") or ""
        value = (cleaned.get("tax_id_value") or "").strip()
        country = cleaned.get("country") or ""
        if "tax_id_type" in self.errors or "tax_id_value" in self.errors:
            return cleaned
        if value and not type_code:
            self.add_error("tax_id_type", forms.ValidationError(TAX_ID_VALUE_WITHOUT_TYPE, code="required"))
        elif type_code and not value:
            self.add_error("tax_id_value", forms.ValidationError(TAX_ID_TYPE_WITHOUT_VALUE, code="required"))
        elif type_code:
            self._clean_tax_id(type_code, value, str(country))
        return cleaned

    def _clean_tax_id(self, type_code: str, value: str, country: str) -> None:
        tax_type = TAX_ID_TYPES[type_code]
        if not tax_id_is_valid(type_code=type_code, value=value):
            self.add_error(
                "tax_id_value",
                forms.ValidationError(
                    TAX_ID_INVALID, code="invalid_tax_id", params={"type": tax_type.label, "example": tax_type.example}
                ),
            )
            return
        compact = tax_id_compact(type_code=type_code, value=value)
        if not country:
            self.add_error("country", forms.ValidationError(TAX_ID_NEEDS_COUNTRY, code="required"))
            return
        country_name = dict(self.fields["country"].choices).get(country, country)
        if country not in tax_type.countries:
            self.add_error(
                "tax_id_value",
                forms.ValidationError(
                    TAX_ID_WRONG_COUNTRY,
                    code="tax_id_country",
                    params={"type": tax_type.label, "country": country_name},
                ),
            )
            return
        if type_code == "eu_vat" and eu_vat_country(compact) != country:
            vat_country = dict(self.fields["country"].choices).get(eu_vat_country(compact), compact[:2])
            self.add_error(
                "tax_id_value",
                forms.ValidationError(
                    TAX_ID_EU_PREFIX_MISMATCH,
                    code="tax_id_country",
                    params={"vat_country": vat_country, "country": country_name},
                ),
            )
            return
        self.cleaned_data["tax_id_value"] = compact


def profile_language_choices() -> list[tuple[str, str]]:
    return [("", _("Automatic")), *language_choices()]


class ProfileForm(forms.ModelForm):
    language = forms.ChoiceField(
        label=_("Language"),
        choices=profile_language_choices,
        required=False,
        help_text=_(
            "For pages, receipts and emails. Automatic follows your browser; "
            "emails then use the site's default language."
        ),
    )
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices, widget=LongSelect)

    class Meta:
        model = Customer
        fields = [
            "language",
            "time_zone",
            "notify_billing_notices",
            "notify_renewal_reminders",
            "notify_card_expiry_reminders",
        ]
        help_texts = {
            "notify_billing_notices": _("Card changes, and subscriptions cancelled, paused or resumed."),
            "notify_renewal_reminders": _(
                "A few days before a monthly subscription renews, with the amount and date, when we send them."
            ),
            "notify_card_expiry_reminders": _("A month before the card that pays a subscription expires."),
        }


class HubLinkRequestForm(forms.Form):
    """Ask for a fresh sign-in link by email (from the page of an expired or broken link)."""

    email = forms.EmailField(label=_("Email address"), widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class VerifiedAddressLoginCodeForm(RequestLoginCodeForm):
    """allauth's "email me a sign-in code" form, sending codes only to verified addresses.

    An address nobody proved may be a stranger's: someone signs up with it, or adds it to their own account
    as a second, pending address; the owner's code must then not open that account. The owner gets
    allauth's "no account with this address" email instead, and the page reads the same either way."""

    def clean_email(self):
        email = super().clean_email()
        user = getattr(self, "_user", None)
        if user is not None and not EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists():
            self._user = None
        return email


class AvatarForm(forms.Form):
    avatar = forms.FileField(
        label=_("New avatar"),
        help_text=_("JPEG, PNG or WebP, up to 2 MB. We crop it to a square and remove its metadata."),
        # A plain file input: the avatar is removed by its own button, never "cleared" through this form.
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    def clean_avatar(self):
        upload = self.cleaned_data["avatar"]
        try:
            avatar_inspect(upload)
        except AvatarError as error:
            raise forms.ValidationError(error.message, code="invalid_avatar") from None
        return upload


class SocialForm(PortalFormMixin, forms.ModelForm):
    plain_text_fields = ("location", *(network.field for network in NETWORKS))

    class Meta:
        model = Customer
        fields = list(SOCIAL_FIELDS)
        widgets = {"bio": forms.Textarea(attrs={"rows": 4, "maxlength": 500})}
        help_texts = {
            "bio": _("Up to 500 characters, shown as plain text."),
            "website_url": _("Must start with https://"),
            "directory_opt_in": _("Show my avatar, name, bio, location and links to other customers."),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["website_url"].assume_scheme = "https"
        for network in NETWORKS:
            # Allow a pasted profile URL or @handle; clean_username() reduces it to the username.
            self.fields[network.field].max_length = 200
            self.fields[network.field].validators = []
            self.fields[network.field].widget.attrs.pop("maxlength", None)
        self._post_clean_text()

    def _clean_network(self, field):
        return clean_username(field, self.cleaned_data[field])

    def clean_x_username(self):
        return self._clean_network("x_username")

    def clean_instagram_username(self):
        return self._clean_network("instagram_username")

    def clean_linkedin_username(self):
        return self._clean_network("linkedin_username")

    def clean_youtube_handle(self):
        return self._clean_network("youtube_handle")

    def clean_tiktok_username(self):
        return self._clean_network("tiktok_username")

    def clean_website_url(self):
        url = self.cleaned_data["website_url"]
        if url and not url.startswith("https://"):
            raise forms.ValidationError(WEBSITE_NOT_HTTPS, code="not_https")
        return url


# --- Custom fields ----------------------------------------------------------------------------------

CUSTOM_FIELD_PREFIX = "custom_"


def custom_form_field(field: CustomField) -> forms.Field:
    """A form field for a custom field; its value is checked by custom_field_value_clean in the form's clean()."""
    options = {"label": field.label, "help_text": field.help_text, "required": False}
    if field.type == CustomFieldType.CHOICE:
        return forms.ChoiceField(choices=[("", "—"), *((c, c) for c in field.choice_list)], **options)
    if field.type == CustomFieldType.NUMBER:
        return forms.CharField(widget=forms.TextInput(attrs={"inputmode": "decimal"}), **options)
    if field.type == CustomFieldType.DATE:
        return forms.CharField(widget=forms.DateInput(attrs={"type": "date"}), **options)
    return forms.CharField(max_length=CUSTOM_TEXT_MAX_LENGTH, **options)


class CustomFieldsMixin:
    """Custom fields as form fields named custom_<key>, initially the customer's stored values."""

    custom_fields: tuple[CustomField, ...] = ()

    def _init_custom_fields(self):
        values = self.instance.custom_field_values or {}
        for field in self.custom_fields:
            self.initial.setdefault(CUSTOM_FIELD_PREFIX + field.key, values.get(field.key, ""))

    def _clean_custom_fields(self):
        for field in self.custom_fields:
            name = CUSTOM_FIELD_PREFIX + field.key
            if name not in self.cleaned_data:
                continue
            try:
                self.cleaned_data[name] = custom_field_value_clean(field=field, value=self.cleaned_data[name])
            except forms.ValidationError as error:
                self.add_error(name, error)

    def custom_field_values(self) -> dict[str, str]:
        """The submitted custom values by key, for accounts.services.customer_set_custom_fields."""
        return {
            field.key: self.cleaned_data[CUSTOM_FIELD_PREFIX + field.key]
            for field in self.custom_fields
            if CUSTOM_FIELD_PREFIX + field.key in self.cleaned_data
        }


def with_custom_fields(form_class: type[forms.ModelForm], custom_fields) -> type[forms.ModelForm]:
    """Return a subclass of the customer form with one declared field per custom field.

    Made once per form and set of custom fields as they stand (making a form class costs 0.2 ms): a
    custom field edited in admin has a new signature, so a new class."""
    custom_fields = tuple(custom_fields)
    signature = tuple((f.pk, f.key, f.label, f.type, f.choices, f.help_text) for f in custom_fields)
    return _form_with_custom_fields(form_class, signature, custom_fields)


@lru_cache(maxsize=64)
def _form_with_custom_fields(form_class, signature, custom_fields) -> type[forms.ModelForm]:
    declared = {CUSTOM_FIELD_PREFIX + field.key: custom_form_field(field) for field in custom_fields}

    def __init__(self, *args, **kwargs):
        form_class.__init__(self, *args, **kwargs)
        self._init_custom_fields()

    def clean(self):
        cleaned = form_class.clean(self)
        self._clean_custom_fields()
        return cleaned

    attrs = {**declared, "custom_fields": custom_fields, "__init__": __init__, "clean": clean}
    return type(form_class.__name__, (CustomFieldsMixin, form_class), attrs)
