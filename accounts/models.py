import zoneinfo
from functools import cache

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django_countries.fields import CountryField

from .managers import UserManager
from .taxids import TAX_ID_TYPE_CHOICES

BIO_MAX_LENGTH = 500


@cache
def time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name.replace("_", " ")) for name in sorted(zoneinfo.available_timezones())]


def language_choices() -> list[tuple[str, str]]:
    return list(settings.LANGUAGES)


# The support staff's role, a group made by migration accounts.0004 and changed by later ones; the
# creator is a superuser. This is the role as the migrations leave it today (each migration keeps its
# own frozen list), used to make the group again when it is missing.
SUPPORT_GROUP = "Support"
SUPPORT_PERMISSIONS = (
    "accounts.view_customer",
    "accounts.change_customer",
    "accounts.view_as_customer",
    "accounts.send_login_email",
    "accounts.view_customfield",
    "purchases.view_product",
    "purchases.view_offer",
    "purchases.view_purchase",
    "purchases.view_receipt",
    "purchases.view_refund",
    "purchases.add_refund",
    "purchases.view_accessgrant",
    "purchases.add_accessgrant",
    "billing.view_card",
    "billing.view_subscription",
    "billing.change_subscription",
    "billing.view_cancellationfeedback",
    "portal.view_auditentry",
)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: a customer, a support agent or the creator. Email is the login."""

    email = models.EmailField(_("email address"), unique=True)
    is_staff = models.BooleanField(
        _("staff status"), default=False, help_text=_("Whether the user can sign in to the admin.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique")]

    def __str__(self):
        return self.email

    def clean(self):
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()


class TaxIdStatus(models.TextChoices):
    NONE = "", _("None")
    FORMAT_VALID = "format_valid", _("Format checked")
    VERIFIED = "verified", _("Verified")
    UNVERIFIED = "unverified", _("Could not be verified")


class Customer(models.Model):
    """The contact record of a person who buys from the business."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer")
    # Contact
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    email = models.EmailField(_("email"), blank=True, help_text=_("Mirrors the verified primary address."))
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    tax_id_type = models.CharField(_("tax ID type"), max_length=16, choices=TAX_ID_TYPE_CHOICES, blank=True)
    tax_id_value = models.CharField(_("tax ID"), max_length=32, blank=True)
    tax_id_status = models.CharField(
        _("tax ID status"), max_length=16, choices=TaxIdStatus.choices, default=TaxIdStatus.NONE, blank=True
    )
    address_line1 = models.CharField(_("address line 1"), max_length=200, blank=True)
    address_line2 = models.CharField(_("address line 2"), max_length=200, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    region = models.CharField(_("state or region"), max_length=100, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    country = CountryField(_("country"), blank=True)
    # Profile
    time_zone = models.CharField(_("time zone"), max_length=64, default="UTC")
    # Blank follows the site: the browser's Accept-Language on pages, LANGUAGE_CODE in emails.
    language = models.CharField(_("language"), max_length=8, choices=language_choices, blank=True)
    notify_billing_notices = models.BooleanField(_("billing notices"), default=True)
    # The reminders a customer may turn off; annual renewal and trial-ending reminders always go out.
    notify_renewal_reminders = models.BooleanField(_("renewal reminders for monthly plans"), default=True)
    notify_card_expiry_reminders = models.BooleanField(_("card expiry reminders"), default=True)
    avatar = models.ImageField(_("avatar"), upload_to="avatars/", blank=True)
    # Social profile
    bio = models.TextField(_("bio"), blank=True, validators=[MaxLengthValidator(BIO_MAX_LENGTH)])
    location = models.CharField(_("location"), max_length=100, blank=True)
    x_username = models.CharField(_("X username"), max_length=15, blank=True)
    instagram_username = models.CharField(_("Instagram username"), max_length=30, blank=True)
    linkedin_username = models.CharField(_("LinkedIn profile"), max_length=100, blank=True)
    youtube_handle = models.CharField(_("YouTube handle"), max_length=30, blank=True)
    tiktok_username = models.CharField(_("TikTok username"), max_length=24, blank=True)
    website_url = models.URLField(_("website"), max_length=200, blank=True)
    directory_opt_in = models.BooleanField(_("listed in the customer directory"), default=False)
    # Integrations and bookkeeping
    external_user_id = models.CharField(_("external user ID"), max_length=100, blank=True, db_index=True)
    custom_field_values = models.JSONField(_("custom fields"), default=dict, blank=True)
    stripe_customer_id = models.CharField(_("Stripe customer ID"), max_length=64, blank=True, db_index=True)
    # Signed into every hub link (accounts.hub) and replaced when a link is used or every session is
    # signed out, so that a link works once.
    hub_link_nonce = models.CharField(_("hub link nonce"), max_length=32, blank=True, editable=False)
    last_activity_at = models.DateTimeField(_("last activity"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        indexes = [
            models.Index(fields=["directory_opt_in", "full_name"], name="accounts_cust_directory_idx"),
            # The admin's contact list: newest first by default, filtered by country.
            models.Index(fields=["-created_at", "-id"], name="accounts_cust_created_idx"),
            models.Index(fields=["country"], name="accounts_cust_country_idx"),
        ]
        permissions = [
            ("view_as_customer", _("Can view the portal as the customer sees it")),
            ("send_login_email", _("Can send the customer a sign-in or password-reset email")),
        ]

    def __str__(self):
        return self.full_name or self.email or f"Customer {self.pk}"

    def get_absolute_url(self):
        return reverse("accounts:contact")

    @property
    def display_name(self) -> str:
        return self.full_name or self.email.split("@")[0]

    @property
    def public_name(self) -> str:
        """The name other customers see: never derived from the email address."""
        return self.full_name or str(_("A customer"))

    @property
    def initials(self) -> str:
        words = [w for w in self.full_name.split() if w[:1].isalpha()]
        if words:
            return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()
        return "?"

    @property
    def address_lines(self) -> list[str]:
        """The postal address as printable lines, without empty ones."""
        city_line = " ".join(part for part in [self.postal_code, self.city] if part)
        lines = [self.address_line1, self.address_line2, city_line, self.region]
        if self.country:
            lines.append(str(self.country.name))
        return [line for line in lines if line]


CUSTOM_FIELD_CHOICES_REQUIRED = _("List the choices, one per line.")
CUSTOM_FIELD_EDITABLE_NOT_VISIBLE = _("A field the customer can edit must be shown to them.")


class CustomFieldType(models.TextChoices):
    TEXT = "text", _("Text")
    NUMBER = "number", _("Number")
    DATE = "date", _("Date")
    CHOICE = "choice", _("Choice")


class CustomField(models.Model):
    """A contact field the creator defines; each customer's value sits in `Customer.custom_field_values[key]`."""

    key = models.SlugField(
        _("key"),
        max_length=50,
        unique=True,
        help_text=_("Names the value in CSV files and integrations; it cannot be changed later."),
    )
    label = models.CharField(_("label"), max_length=100)
    type = models.CharField(_("type"), max_length=8, choices=CustomFieldType.choices, default=CustomFieldType.TEXT)
    choices = models.TextField(_("choices"), blank=True, help_text=_("For the choice type: one choice per line."))
    help_text = models.CharField(_("help text"), max_length=200, blank=True)
    visible_to_customer = models.BooleanField(
        _("shown to the customer"), default=False, help_text=_("Shown on the customer's contact page.")
    )
    editable_by_customer = models.BooleanField(
        _("editable by the customer"), default=False, help_text=_("The customer can change it on their contact page.")
    )
    position = models.PositiveSmallIntegerField(_("position"), default=0)

    class Meta:
        verbose_name = _("custom field")
        verbose_name_plural = _("custom fields")
        ordering = ["position", "label", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(editable_by_customer=False) | models.Q(visible_to_customer=True),
                name="accounts_customfield_editable_is_visible",
            ),
        ]

    def __str__(self):
        return self.label

    def clean(self):
        super().clean()
        errors = {}
        if self.type == CustomFieldType.CHOICE and not self.choice_list:
            errors["choices"] = CUSTOM_FIELD_CHOICES_REQUIRED
        if self.editable_by_customer and not self.visible_to_customer:
            errors["visible_to_customer"] = CUSTOM_FIELD_EDITABLE_NOT_VISIBLE
        if errors:
            raise ValidationError(errors)

    @property
    def choice_list(self) -> list[str]:
        return [line.strip() for line in self.choices.splitlines() if line.strip()]
