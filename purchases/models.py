from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .payment_methods import card_brand_name

# Money is an integer amount in the currency's minor unit plus an ISO 4217 code (lower case, as Stripe).


class Product(models.Model):
    """Something a customer gets access to: a course, a membership area, a download."""

    name = models.CharField(_("name"), max_length=150)
    slug = models.SlugField(_("slug"), unique=True)
    description = models.TextField(_("description"), blank=True)
    access_url = models.URLField(_("access URL"), help_text=_("Where the customer uses the product."))
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["name"]

    def __str__(self):
        return self.name


class OfferKind(models.TextChoices):
    ONE_TIME = "one_time", _("One-time payment")
    SUBSCRIPTION = "subscription", _("Subscription")
    PAYMENT_PLAN = "payment_plan", _("Payment plan")


class BillingInterval(models.TextChoices):
    MONTH = "month", _("month")
    YEAR = "year", _("year")


class Offer(models.Model):
    """What is sold: a price, how it is paid, and the products it grants."""

    name = models.CharField(_("name"), max_length=150)
    kind = models.CharField(_("kind"), max_length=16, choices=OfferKind.choices, default=OfferKind.ONE_TIME)
    price_amount = models.PositiveIntegerField(_("price (minor units)"), help_text=_("Per payment, e.g. 4900 = 49.00."))
    currency = models.CharField(_("currency"), max_length=3, default="gbp")
    interval = models.CharField(_("billing interval"), max_length=8, choices=BillingInterval.choices, blank=True)
    installments = models.PositiveSmallIntegerField(
        _("instalments"),
        null=True,
        blank=True,
        validators=[MinValueValidator(2)],
        help_text=_("Number of payments of a payment plan."),
    )
    products = models.ManyToManyField(Product, related_name="offers", verbose_name=_("products"))
    stripe_price_id = models.CharField(_("Stripe price ID"), max_length=64, blank=True, db_index=True)
    is_active = models.BooleanField(_("on sale"), default=True)
    switch_group = models.SlugField(
        _("plan change group"),
        max_length=40,
        blank=True,
        help_text=_(
            "Subscribers may switch between the subscription offers on sale that share this group and "
            "currency (for example monthly and yearly). Blank: not switchable."
        ),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(kind="payment_plan") | Q(installments__gte=2), name="purchases_offer_plan_installments"
            ),
            models.CheckConstraint(
                condition=Q(kind="one_time") | ~Q(interval=""), name="purchases_offer_recurring_interval"
            ),
        ]

    def __str__(self):
        return self.name


class PurchaseStatus(models.TextChoices):
    PAID = "paid", _("Paid")
    PARTIALLY_REFUNDED = "partially_refunded", _("Partly refunded")
    REFUNDED = "refunded", _("Refunded")
    CANCELLED = "cancelled", _("Cancelled")


class Purchase(models.Model):
    """One payment for an offer by a customer (a one-time sale, or one invoice of a subscription or plan)."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="purchases")
    offer = models.ForeignKey(Offer, on_delete=models.PROTECT, related_name="purchases")
    amount = models.PositiveIntegerField(_("amount (minor units)"))
    amount_refunded = models.PositiveIntegerField(_("refunded (minor units)"), default=0)
    currency = models.CharField(_("currency"), max_length=3)
    status = models.CharField(_("status"), max_length=20, choices=PurchaseStatus.choices, default=PurchaseStatus.PAID)
    purchased_at = models.DateTimeField(_("purchased"), default=timezone.now)
    stripe_invoice_id = models.CharField(_("Stripe invoice"), max_length=64, blank=True)
    stripe_payment_intent_id = models.CharField(_("Stripe payment"), max_length=64, blank=True)
    stripe_charge_id = models.CharField(_("Stripe charge"), max_length=64, blank=True, db_index=True)
    stripe_subscription_id = models.CharField(_("Stripe subscription"), max_length=64, blank=True, db_index=True)
    # The card that paid, as the processor's charge recorded it when the purchase was recorded; empty
    # for purchases recorded by hand, other payment methods, or before this was kept.
    card_brand = models.CharField(_("card brand"), max_length=20, blank=True)
    card_last4 = models.CharField(_("card last 4"), max_length=4, blank=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        ordering = ["-purchased_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-purchased_at"], name="purchases_customer_date_idx")]
        constraints = [
            # A paid Stripe invoice creates its purchase exactly once.
            models.UniqueConstraint(
                fields=["stripe_invoice_id"],
                condition=~Q(stripe_invoice_id=""),
                name="purchases_purchase_invoice_unique",
            ),
            models.CheckConstraint(
                condition=Q(amount_refunded__lte=models.F("amount")), name="purchases_purchase_refund_not_above_amount"
            ),
        ]

    def __str__(self):
        return f"{self.offer} ({self.purchased_at:%Y-%m-%d})"

    @property
    def amount_remaining(self) -> int:
        return self.amount - self.amount_refunded

    @property
    def payment_method_display(self) -> str:
        """The card that paid, "Visa •••• 4242", or "" when not known."""
        if not self.card_last4:
            return ""
        brand = card_brand_name(self.card_brand) or str(_("Card"))
        return f"{brand} •••• {self.card_last4}"

    @property
    def status_label(self) -> str:
        """The status in the active language: get_status_display()'s answer, translating only this label
        (that method translates every status label to look one up, a cost on a list of purchases)."""
        try:
            return PurchaseStatus(self.status).label
        except ValueError:
            return self.status


class AccessGrant(models.Model):
    """A customer's access to a product, from a purchase or given by staff; revoked, never deleted."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="access_grants")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="grants")
    purchase = models.ForeignKey(Purchase, on_delete=models.SET_NULL, null=True, blank=True, related_name="grants")
    granted_at = models.DateTimeField(_("granted"), default=timezone.now)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("revoked by"),
    )
    revoke_reason = models.CharField(_("reason"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("access grant")
        verbose_name_plural = _("access grants")
        ordering = ["-granted_at"]
        indexes = [models.Index(fields=["customer", "revoked_at"], name="purchases_grant_active_idx")]
        constraints = [
            # One active grant per product and purchase, and one hand-given (purchase-less) grant.
            models.UniqueConstraint(
                fields=["customer", "product", "purchase"],
                condition=Q(revoked_at__isnull=True, purchase__isnull=False),
                name="purchases_grant_one_active",
            ),
            models.UniqueConstraint(
                fields=["customer", "product"],
                condition=Q(revoked_at__isnull=True, purchase__isnull=True),
                name="purchases_grant_one_active_by_hand",
            ),
        ]

    def __str__(self):
        return f"{self.product} → {self.customer}"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class ReceiptSequence(models.Model):
    """The last receipt number issued for a prefix; its row lock serialises numbering."""

    prefix = models.CharField(max_length=12, primary_key=True)
    last_number = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("receipt sequence")

    def __str__(self):
        return f"{self.prefix}: {self.last_number}"


class Receipt(models.Model):
    """A receipt for a purchase, with a snapshot of the customer's billing details."""

    number = models.CharField(_("number"), max_length=32, unique=True)
    prefix = models.CharField(_("prefix"), max_length=12)
    sequence = models.PositiveIntegerField(_("sequence"))
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="receipts")
    # Denormalised from the purchase so a contact change rewrites all receipts in one UPDATE.
    customer = models.ForeignKey("accounts.Customer", on_delete=models.PROTECT, related_name="receipts")
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections", verbose_name=_("corrects")
    )
    issued_at = models.DateTimeField(_("issued"), default=timezone.now)
    currency = models.CharField(_("currency"), max_length=3)
    lines = models.JSONField(_("lines"), default=list, help_text=_("[{description, quantity, unit_amount, amount}]"))
    subtotal = models.IntegerField(_("subtotal"))
    tax_rate = models.DecimalField(_("tax rate %"), max_digits=5, decimal_places=2, default=0)
    tax_amount = models.IntegerField(_("tax"), default=0)
    total = models.IntegerField(_("total"))
    # Billing snapshot
    billing_name = models.CharField(_("billing name"), max_length=150, blank=True)
    billing_email = models.EmailField(_("billing email"), blank=True)
    billing_tax_id_type = models.CharField(_("billing tax ID type"), max_length=16, blank=True)
    billing_tax_id = models.CharField(_("billing tax ID"), max_length=32, blank=True)
    billing_address_line1 = models.CharField(max_length=200, blank=True)
    billing_address_line2 = models.CharField(max_length=200, blank=True)
    billing_city = models.CharField(max_length=100, blank=True)
    billing_region = models.CharField(max_length=100, blank=True)
    billing_postal_code = models.CharField(max_length=20, blank=True)
    billing_country = models.CharField(max_length=2, blank=True)
    billing_updated_at = models.DateTimeField(_("billing details updated"), null=True, blank=True)

    class Meta:
        verbose_name = _("receipt")
        verbose_name_plural = _("receipts")
        ordering = ["-issued_at", "-pk"]
        indexes = [models.Index(fields=["customer", "-issued_at"], name="purchases_receipt_customer_idx")]
        constraints = [
            models.UniqueConstraint(fields=["prefix", "sequence"], name="purchases_receipt_prefix_sequence_unique"),
        ]

    def __str__(self):
        return self.number

    def get_absolute_url(self):
        return reverse("purchases:receipt", kwargs={"number": self.number})

    @property
    def tax_rate_display(self) -> str:
        """The tax rate without trailing zeros: 20, 7.5."""
        return f"{self.tax_rate.normalize():f}"

    @property
    def net_total(self) -> int:
        """What the receipt's payment still amounts to after the refunds counted on its purchase."""
        return self.total - self.purchase.amount_refunded

    @property
    def billing_address_lines(self) -> list[str]:
        from django_countries import countries

        city_line = " ".join(part for part in [self.billing_postal_code, self.billing_city] if part)
        lines = [self.billing_address_line1, self.billing_address_line2, city_line, self.billing_region]
        if self.billing_country:
            lines.append(str(countries.name(self.billing_country)))
        return [line for line in lines if line]


class RefundStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Refunded")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Cancelled")


# A refund holds money back from the purchase while it is on its way or made; a failed one gives it back.
REFUND_COUNTED_STATUSES = (RefundStatus.PENDING, RefundStatus.SUCCEEDED)


class Refund(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="refunds")
    amount = models.PositiveIntegerField(_("amount (minor units)"), validators=[MinValueValidator(1)])
    currency = models.CharField(_("currency"), max_length=3)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("refunded"), default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    stripe_refund_id = models.CharField(_("Stripe refund"), max_length=64, blank=True)
    # As the processor last said; a refund paid outside Stripe is made when it is recorded.
    status = models.CharField(_("status"), max_length=10, choices=RefundStatus.choices, default=RefundStatus.SUCCEEDED)
    failure_reason = models.CharField(_("why it failed"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("refund")
        verbose_name_plural = _("refunds")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["stripe_refund_id"], condition=~Q(stripe_refund_id=""), name="purchases_refund_stripe_unique"
            ),
        ]

    def __str__(self):
        return f"{self.amount} {self.currency} on {self.purchase_id}"
