from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .colours import BrandPalette, brand_colour_validate, brand_palette


class ReceiptMode(models.TextChoices):
    RESYNC = "resync", _("Resync: past receipts follow the customer's current details")
    FROZEN = "frozen", _("Frozen: receipts keep the details they were issued with")


class SiteSettings(models.Model):
    """The business's own settings: one row, edited by the creator in admin."""

    business_name = models.CharField(_("business name"), max_length=150, default="Customer Portal")
    business_address = models.TextField(_("business address"), blank=True)
    business_tax_id = models.CharField(_("business tax ID"), max_length=40, blank=True)
    business_email = models.EmailField(_("support email"), blank=True)
    logo = models.ImageField(_("logo"), upload_to="site/", blank=True)
    receipt_prefix = models.CharField(
        _("receipt number prefix"),
        max_length=12,
        default="R",
        validators=[
            RegexValidator(
                r"^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$",
                _("Use letters, digits and single hyphens only: the number is part of the receipt's web address."),
            )
        ],
        help_text=_("Receipts are numbered PREFIX-000001, PREFIX-000002 … per prefix."),
    )
    receipt_mode = models.CharField(
        _("receipt mode"), max_length=10, choices=ReceiptMode.choices, default=ReceiptMode.RESYNC
    )
    self_cancel_enabled = models.BooleanField(_("customers may cancel their own subscriptions"), default=True)
    self_cancel_instructions = models.TextField(
        _("instructions shown when self-cancellation is off"),
        blank=True,
        default="To cancel your subscription, email us and we will take care of it.",
    )
    self_pause_enabled = models.BooleanField(
        _("customers may pause their own subscriptions"),
        default=False,
        help_text=_(
            "For one to three billing cycles, resumed by the customer at any time. No invoices are charged "
            "while paused; access to the products is kept."
        ),
    )
    plan_changes_enabled = models.BooleanField(
        _("customers may change plan"),
        default=False,
        help_text=_(
            "Between the subscription offers that share a plan change group. The difference is prorated "
            "and charged at once."
        ),
    )
    processor_attached = models.BooleanField(
        _("payment processor attached"),
        default=True,
        help_text=_("When off, the Billing section is hidden and customers are told whom to contact."),
    )
    # One offer a customer may take instead of cancelling: a coupon the creator made in Stripe.
    retention_coupon_id = models.CharField(
        _("retention offer: Stripe coupon"),
        max_length=64,
        blank=True,
        help_text=_(
            "The ID of a coupon in your Stripe account (e.g. 3MONTHS50). Customers who go to cancel are offered it "
            "once; empty for no offer."
        ),
    )
    retention_offer_text = models.CharField(
        _("retention offer: text"),
        max_length=200,
        blank=True,
        help_text=_("What customers read, e.g. “Stay and get half price for your next 3 months.”"),
    )
    # Reminders before a subscription renews (billing.services.reminders). California's automatic-renewal
    # law asks for 15 to 45 days' notice before a yearly plan renews, so the annual reminder is always
    # sent and its lead time is held to that window.
    renewal_reminder_days = models.PositiveSmallIntegerField(
        _("annual renewal reminder: days before"),
        default=30,
        validators=[MinValueValidator(15), MaxValueValidator(45)],
        help_text=_(
            "Customers on yearly plans are reminded this many days before their plan renews, with the amount, "
            "the date and a link to manage or cancel it (15 to 45 days, as automatic-renewal laws ask)."
        ),
    )
    monthly_renewal_reminders_enabled = models.BooleanField(
        _("remind customers on monthly plans too"),
        default=False,
        help_text=_("Customers may still turn these reminders off in their email preferences."),
    )
    monthly_renewal_reminder_days = models.PositiveSmallIntegerField(
        _("monthly renewal reminder: days before"),
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(14)],
    )
    brand_colour = models.CharField(
        _("brand colour"),
        max_length=7,
        blank=True,
        validators=[brand_colour_validate],
        help_text=_(
            "Links, buttons and highlights in this colour, e.g. #3b5bdb; empty for the portal's blue. "
            "It must be dark enough for white text on it."
        ),
    )

    class Meta:
        verbose_name = _("site settings")
        verbose_name_plural = _("site settings")
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="portal_sitesettings_singleton")]

    def __str__(self):
        return str(_("Site settings"))

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if not self.self_cancel_enabled and not self.self_cancel_instructions.strip():
            raise ValidationError(
                {
                    "self_cancel_instructions": _(
                        "Say how customers can cancel: with self-cancellation off, this is all they are shown."
                    )
                }
            )

        if bool(self.retention_coupon_id.strip()) != bool(self.retention_offer_text.strip()):
            field = "retention_offer_text" if self.retention_coupon_id.strip() else "retention_coupon_id"
            raise ValidationError(
                {field: _("A retention offer needs both the Stripe coupon and the text customers read.")}
            )

    @property
    def retention_offer_on(self) -> bool:
        return bool(self.retention_coupon_id and self.retention_offer_text)

    @property
    def is_frozen(self) -> bool:
        return self.receipt_mode == ReceiptMode.FROZEN

    @property
    def brand_palette(self) -> BrandPalette | None:
        """The stylesheet's accent colours made from the brand colour, or None for the portal's own."""
        return brand_palette(self.brand_colour) if self.brand_colour else None


class ActorKind(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    STAFF = "staff", _("Staff")
    STRIPE = "stripe", _("Stripe webhook")
    SYSTEM = "system", _("System")


class AuditEntry(models.Model):
    """Who changed what, and when, for one customer's records."""

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_kind = models.CharField(_("actor kind"), max_length=10, choices=ActorKind.choices)
    customer = models.ForeignKey(
        "accounts.Customer", on_delete=models.CASCADE, null=True, blank=True, related_name="audit_entries"
    )
    action = models.CharField(_("action"), max_length=64)
    changes = models.JSONField(_("changes"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="portal_audit_customer_idx")]

    def __str__(self):
        return f"{self.action} at {self.created_at:%Y-%m-%d %H:%M}"


class EmailKind(models.TextChoices):
    WELCOME = "welcome", _("Welcome")
    HUB_LINK = "hub_link", _("Sign-in link")
    RECEIPT = "receipt", _("Receipt")
    PAYMENT_FAILED = "payment_failed", _("Payment failed")
    CARD_UPDATE_LINK = "card_update_link", _("Card update link")
    REFUND_ISSUED = "refund_issued", _("Refund issued")
    REFUND_FAILED = "refund_failed", _("Refund failed")
    CARD_UPDATED = "card_updated", _("Card updated")
    SUBSCRIPTION_CANCEL_SCHEDULED = "subscription_cancel_scheduled", _("Subscription cancellation scheduled")
    SUBSCRIPTION_CANCELED = "subscription_canceled", _("Subscription cancelled")
    SUBSCRIPTION_PAUSED = "subscription_paused", _("Subscription paused")
    SUBSCRIPTION_RESUMED = "subscription_resumed", _("Subscription resumed")
    PLAN_CHANGED = "plan_changed", _("Plan changed")
    PLAN_CHANGE_SCHEDULED = "plan_change_scheduled", _("Plan change scheduled")
    RETENTION_OFFER_APPLIED = "retention_offer_applied", _("Retention offer applied")
    RENEWAL_REMINDER = "renewal_reminder", _("Renewal reminder")
    TRIAL_ENDING = "trial_ending", _("Trial ending reminder")
    CARD_EXPIRING = "card_expiring", _("Card expiry reminder")


class EmailStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    SENT = "sent", _("Sent")
    SKIPPED = "skipped", _("Not sent: the customer turned these emails off")
    FAILED = "failed", _("Failed")


class OutboundEmail(models.Model):
    """One email to a customer about one event; the unique key makes sure it goes out once."""

    key = models.CharField(_("event key"), max_length=200, unique=True)
    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="emails")
    kind = models.CharField(_("kind"), max_length=40, choices=EmailKind.choices)
    context = models.JSONField(_("context"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=10, choices=EmailStatus.choices, default=EmailStatus.QUEUED)
    to = models.EmailField(_("sent to"), blank=True)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    last_error = models.TextField(_("last error"), blank=True)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    created_at = models.DateTimeField(_("queued"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        verbose_name = _("email")
        verbose_name_plural = _("emails")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-created_at"], name="portal_email_customer_idx")]

    def __str__(self):
        return f"{self.get_kind_display()} → {self.to or self.customer_id} ({self.get_status_display()})"
