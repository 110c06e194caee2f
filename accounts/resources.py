"""Contacts as CSV rows (django-import-export): one column per contact field and per custom field.

Rows are validated like the customer's own contact form and saved through accounts.services, so an
import resyncs receipts, pushes to Stripe and is audited exactly like an edit on the contact page.
"""

import re

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources, widgets

from .contact import CONTACT_FIELDS
from .forms import ContactForm
from .models import Customer
from .selectors import custom_fields_all
from .services import custom_field_value_clean, customer_create, customer_set_custom_fields, customer_update_details

CUSTOM_COLUMN_PREFIX = "custom:"
EMAIL_REQUIRED = _("Enter the customer's email address.")
# Written by the import; email names the row's customer and is set only on new ones.
ISO_DATETIME = widgets.DateTimeWidget(format="%Y-%m-%dT%H:%M:%S%z")
IMPORTED_FIELDS = [field for field in CONTACT_FIELDS if field != "email"] + ["external_user_id"]

# A cell a spreadsheet would evaluate starts with one of these (OWASP, "CSV injection"). Exported,
# such a value is prefixed with an apostrophe, which spreadsheets read as "this is text"; imported,
# that apostrophe is taken off again, so an export re-imports unchanged. Phone numbers stay as
# they are: +44 20 7946 0958 is not a formula.
FORMULA_START = tuple("=+-@\t\r")
PLAIN_NUMBER = re.compile(r"[+-]?[\d ().-]+")
TEXT_MARK = "'"


# The diff library marks changes with inline styles, which the site's Content-Security-Policy blocks.
DIFF_INLINE_STYLE = re.compile(r'<(ins|del) style="[^"]*">')


class PreviewDiff(resources.Diff):
    """The import preview's changed values, marked by <ins> and <del> alone (admin.css colours them)."""

    def as_html(self):
        return [mark_safe(DIFF_INLINE_STYLE.sub(r"<\1>", html)) for html in super().as_html()]


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return TEXT_MARK + value
    return value


def spreadsheet_unescape(value):
    if isinstance(value, str) and value.startswith(TEXT_MARK) and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


class EmailField(fields.Field):
    """The row's email address: it finds an existing customer, and is stored only for a new one."""

    def save(self, instance, row, is_m2m=False, **kwargs):
        if instance.pk is None:
            super().save(instance, row, is_m2m, **kwargs)


class CustomValueField(fields.Field):
    """One custom field's value, in the column custom:<key>."""

    def __init__(self, custom_field):
        self.custom_field = custom_field
        super().__init__(
            attribute=f"custom_field_values__{custom_field.key}",
            column_name=CUSTOM_COLUMN_PREFIX + custom_field.key,
        )

    def save(self, instance, row, is_m2m=False, **kwargs):
        value = custom_field_value_clean(field=self.custom_field, value=self.clean(row, **kwargs))
        values = dict(instance.custom_field_values or {})
        if value:
            values[self.custom_field.key] = value
        else:
            values.pop(self.custom_field.key, None)
        instance.custom_field_values = values


class CustomerResource(resources.ModelResource):
    email = EmailField(attribute="email", column_name="email")
    directory_opt_in = fields.Field(
        attribute="directory_opt_in", column_name="directory_opt_in", readonly=True, widget=widgets.BooleanWidget()
    )
    last_activity_at = fields.Field(
        attribute="last_activity_at", column_name="last_activity_at", readonly=True, widget=ISO_DATETIME
    )
    created_at = fields.Field(attribute="created_at", column_name="created_at", readonly=True, widget=ISO_DATETIME)

    class Meta:
        model = Customer
        fields = ["email", *IMPORTED_FIELDS, "directory_opt_in", "last_activity_at", "created_at"]
        import_id_fields = ["email"]
        use_transactions = True
        clean_model_instances = False  # validate_instance() runs the contact form's own checks instead
        skip_unchanged = True
        report_skipped = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for custom_field in custom_fields_all():
            self.fields[CUSTOM_COLUMN_PREFIX + custom_field.key] = CustomValueField(custom_field)

    @classmethod
    def get_diff_class(cls):
        return PreviewDiff

    def get_user_visible_fields(self):
        """The columns an import reads (the export-only ones are left out of the import page's list)."""
        return [field for field in super().get_user_visible_fields() if not field.readonly]

    def get_queryset(self):
        return Customer.objects.order_by("pk")

    def export_field(self, field, instance, **kwargs):
        return spreadsheet_safe(super().export_field(field, instance, **kwargs))

    def before_import_row(self, row, **kwargs):
        for column, value in row.items():
            row[column] = spreadsheet_unescape(value)

    def get_instance(self, instance_loader, row):
        email = (row.get("email") or "").strip()
        if not email:
            return None
        return Customer.objects.select_related("user").filter(user__email__iexact=email).first()

    def import_instance(self, instance, row, **kwargs):
        """Set each column on the instance; gather every bad value, named by its column."""
        errors = {}
        for field in self.get_import_fields():
            try:
                self.import_field(field, instance, row, **kwargs)
            except (ValueError, ValidationError) as error:
                errors[field.column_name] = getattr(error, "messages", [str(error)])
        if errors:
            raise ValidationError(errors)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        """Check the row as the customer's contact form would; use its cleaned values (compact tax IDs …)."""
        errors = dict(import_validation_errors or {})
        if instance.pk is None:
            try:
                validate_email(instance.email or "")
            except ValidationError as error:
                errors["email"] = error.messages if instance.email else [str(EMAIL_REQUIRED)]
        data = {field: str(getattr(instance, field) or "").strip() for field in CONTACT_FIELDS}
        data["country"] = data["country"].upper()
        form = ContactForm(data=data, instance=Customer())
        if form.is_valid():
            for field in IMPORTED_FIELDS:
                if field in form.cleaned_data:
                    setattr(instance, field, form.cleaned_data[field])
        else:
            for field, messages in form.errors.items():
                errors.setdefault(field, []).extend(messages)
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        """Save through the services: the same receipts resync, Stripe push and audit as any contact edit."""
        by = kwargs.get("user")
        data = {field: getattr(instance, field) for field in IMPORTED_FIELDS if field in row}
        custom_keys = [column[len(CUSTOM_COLUMN_PREFIX) :] for column in row if column.startswith(CUSTOM_COLUMN_PREFIX)]
        custom_values = {key: instance.custom_field_values.get(key, "") for key in custom_keys if key in self._custom}
        if is_create:
            customer = customer_create(email=instance.email, contact=data, by=by)
            instance.pk, instance.user_id, instance.email = customer.pk, customer.user_id, customer.email
        else:
            customer = instance
        customer_update_details(customer=customer, data=data, by=by)
        customer_set_custom_fields(customer=customer, values=custom_values, by=by)

    @property
    def _custom(self) -> set[str]:
        return {field.custom_field.key for field in self.fields.values() if isinstance(field, CustomValueField)}
