"""Mirrors of the payment processor's cards and subscriptions, and the webhook inbox.

The processor is the source of truth; these rows are what our pages read, kept current by our
own writes, by webhooks and by `manage.py stripe_sync`.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.encoding import force_str
from django.utils.translation import gettext_lazy as _

from purchases.payment_methods import BRAND_NAMES


class Card(models.Model):
    """A card on file: the mirror of one processor PaymentMethod."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="cards")
    stripe_payment_method_id = models.CharField(_("Stripe payment method"), max_length=64, unique=True)
    brand = models.CharField(_("brand"), max_length=32)
    last4 = models.CharField(_("last 4"), max_length=4)
    exp_month = models.PositiveSmallIntegerField(_("expiry month"))
    exp_year = models.PositiveSmallIntegerField(_("expiry year"))
    is_default = models.BooleanField(_("default"), default=False)
    created_at = models.DateTimeField(_("added"), default=timezone.now)

    class Meta:
        verbose_name = _("card")
        verbose_name_plural = _("cards")
        ordering = ["-is_default", "-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(is_default=True), name="billing_card_one_default_per_customer"
            ),
        ]

    def __str__(self):
        return f"{self.brand_display} •••• {self.last4}"

    @property
    def brand_display(self) -> str:
        return BRAND_NAMES.get(self.brand, self.brand.title())

    @property
    def is_expired(self) -> bool:
        today = timezone.localdate()
        return (self.exp_year, self.exp_month) < (today.year, today.month)


class SubscriptionStatus(models.TextChoices):
    ACTIVE = "active", _("Active")
    TRIALING = "trialing", _("Trialing")
    PAST_DUE = "past_due", _("Past due")
    PAUSED = "paused", _("Paused")
    CANCELED = "canceled", _("Cancelled")
    INCOMPLETE = "incomplete", _("Incomplete")
    INCOMPLETE_EXPIRED = "incomplete_expired", _("Expired")
    UNPAID = "unpaid", _("Unpaid")


# A subscription's billing interval as Stripe names it, in the reader's language ("/ Monat").
INTERVAL_LABELS = {"day": _("day"), "week": _("week"), "month": _("month"), "year": _("year")}


# Statuses in which the processor will still charge the customer's card.
LIVE_STATUSES = (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE)


class Subscription(models.Model):
    """The mirror of one processor subscription (or payment plan)."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="subscriptions")
    offer = models.ForeignKey(
        "purchases.Offer", on_delete=models.PROTECT, null=True, blank=True, related_name="subscriptions"
    )
    stripe_subscription_id = models.CharField(_("Stripe subscription"), max_length=64, unique=True)
    stripe_price_id = models.CharField(_("Stripe price"), max_length=64, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=SubscriptionStatus.choices, db_index=True)
    amount = models.PositiveIntegerField(_("amount (minor units)"), default=0)
    currency = models.CharField(_("currency"), max_length=3, default="gbp")
    interval = models.CharField(_("interval"), max_length=8, blank=True)
    interval_count = models.PositiveSmallIntegerField(_("intervals per billing cycle"), default=1)
    current_period_end = models.DateTimeField(_("current period ends"), null=True, blank=True)
    cancel_at_period_end = models.BooleanField(_("cancels at period end"), default=False)
    # The date it is set to end on, when Stripe holds one (it does for period-end cancellations too).
    cancel_at = models.DateTimeField(_("set to end on"), null=True, blank=True)
    # The staff member who scheduled the cancellation: the customer may not undo it then.
    cancel_requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("cancellation scheduled by"),
    )
    canceled_at = models.DateTimeField(_("cancelled"), null=True, blank=True)
    paused = models.BooleanField(_("paused"), default=False)
    resumes_at = models.DateTimeField(_("resumes"), null=True, blank=True)
    # The customer paused it themselves, so they may resume it; a pause by staff or in Stripe is not theirs.
    paused_by_customer = models.BooleanField(_("paused by the customer"), default=False)
    # The subscription's own default card, when it has one; otherwise the customer's default pays.
    default_payment_method_id = models.CharField(_("own default card"), max_length=64, blank=True)
    # The invoice whose payment failed and is still open (what "Pay now" retries); cleared once it is paid.
    unpaid_invoice_id = models.CharField(_("unpaid invoice"), max_length=64, blank=True)
    unpaid_amount = models.PositiveIntegerField(_("unpaid amount (minor units)"), default=0)
    unpaid_invoice_date = models.DateTimeField(_("unpaid invoice date"), null=True, blank=True)
    # How many of its invoices were recorded as purchases (what a payment plan's instalments left are
    # counted from): kept by invoice_record_paid, so the billing page need not count purchases per row.
    payments_recorded = models.PositiveIntegerField(_("payments recorded"), default=0)
    # The processor's subscription schedule that manages it, while one does (even after its last change began).
    stripe_schedule_id = models.CharField(_("Stripe subscription schedule"), max_length=64, blank=True)
    # A change of plan that the schedule makes at a later renewal: to what, and when. Cleared once it began,
    # or when the schedule let go of the subscription before.
    scheduled_offer = models.ForeignKey(
        "purchases.Offer",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("changes to"),
    )
    scheduled_price_id = models.CharField(_("changes to Stripe price"), max_length=64, blank=True)
    scheduled_change_at = models.DateTimeField(_("changes on"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    synced_at = models.DateTimeField(_("last synced"), default=timezone.now)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["customer", "status"], name="billing_sub_customer_status")]

    def __str__(self):
        return f"{self.offer or self.stripe_price_id} ({self.get_status_display()})"

    @property
    def interval_label(self) -> str:
        return str(INTERVAL_LABELS.get(self.interval, self.interval))

    @property
    def is_live(self) -> bool:
        """Still charging: active, trialing or past due."""
        return self.status in LIVE_STATUSES and not self.paused

    @property
    def needs_payment(self) -> bool:
        """A payment failed and the customer can pay the open invoice now."""
        return bool(self.unpaid_invoice_id) and self.status in (SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID)

    @property
    def is_active(self) -> bool:
        return self.status in (SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING) and not self.paused

    @property
    def ends_at(self):
        """When a subscription that is set to end will end (None when it renews)."""
        if self.cancel_at:
            return self.cancel_at
        return self.current_period_end if self.cancel_at_period_end else None

    @property
    def has_scheduled_change(self) -> bool:
        return bool(self.scheduled_price_id) and self.status != SubscriptionStatus.CANCELED

    @property
    def is_set_to_end(self) -> bool:
        return self.status != SubscriptionStatus.CANCELED and (self.cancel_at_period_end or self.cancel_at is not None)

    @property
    def display_status(self) -> str:
        if self.paused and self.status != SubscriptionStatus.CANCELED:
            return str(SubscriptionStatus.PAUSED.label)
        # get_status_display()'s answer, without translating every status label to hash them.
        return force_str(dict(SubscriptionStatus.choices).get(self.status, self.status), strings_only=True)


class WebhookStatus(models.TextChoices):
    RECEIVED = "received", _("Received")
    PROCESSED = "processed", _("Processed")
    IGNORED = "ignored", _("Ignored (type not handled)")
    FAILED = "failed", _("Failed")


class WebhookEvent(models.Model):
    """One Stripe event, stored before it is applied, unique by Stripe's event id."""

    stripe_event_id = models.CharField(_("Stripe event"), max_length=64, unique=True)
    type = models.CharField(_("type"), max_length=64, db_index=True)
    object_id = models.CharField(_("object"), max_length=64, blank=True, db_index=True)
    payload = models.JSONField(_("payload"))
    status = models.CharField(
        _("status"), max_length=16, choices=WebhookStatus.choices, default=WebhookStatus.RECEIVED, db_index=True
    )
    error = models.TextField(_("error"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    # When the sweep applies it next, if it is still received or failed; empty once applied, and for a
    # failed event the retries gave up on (billing.webhooks.webhook_retry_at).
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, default=timezone.now)

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-received_at", "-pk"]

    def __str__(self):
        return f"{self.type} {self.stripe_event_id}"


class CustomerPush(models.Model):
    """A contact change the processor's customer record has not confirmed yet: the durable intent to push.

    Written in the transaction that changes the contact (billing.receivers) and deleted by the push that
    sent the details as they are now (billing.pushes), so a push lost with its task, its worker or its
    queue is found by the sweep and sent again, whatever happened to the job.
    """

    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.CASCADE, related_name="processor_push", verbose_name=_("customer")
    )
    # A new one per change: it makes the idempotency key of the push, and a push clears only the change it sent.
    key = models.CharField(_("change"), max_length=64)
    since = models.DateTimeField(_("waiting since"), default=timezone.now)
    attempts = models.PositiveSmallIntegerField(_("failed attempts"), default=0)
    # When the sweep queues it again unless a push clears it first; empty once the retries gave up.
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, default=timezone.now)
    error = models.TextField(_("last error"), blank=True)

    class Meta:
        verbose_name = _("pending Stripe push")
        verbose_name_plural = _("pending Stripe pushes")
        ordering = ["since", "pk"]
        indexes = [models.Index(fields=["next_attempt_at"], name="billing_push_next_attempt")]

    def __str__(self):
        return f"{self.customer_id}: {self.key}"


class CancellationReason(models.TextChoices):
    """Why a customer cancelled: Stripe's `cancellation_details.feedback` codes, in the customer's words."""

    TOO_EXPENSIVE = "too_expensive", _("It is too expensive")
    UNUSED = "unused", _("I do not use it enough")
    MISSING_FEATURES = "missing_features", _("Something I need is missing")
    SWITCHED_SERVICE = "switched_service", _("I am switching to another service")
    TOO_COMPLEX = "too_complex", _("It is too complicated")
    LOW_QUALITY = "low_quality", _("The quality was not what I expected")
    CUSTOMER_SERVICE = "customer_service", _("I was not happy with the support")
    OTHER = "other", _("Another reason")


class CancellationFeedback(models.Model):
    """What a customer said when they went to cancel, and whether they took the retention offer instead."""

    customer = models.ForeignKey("accounts.Customer", on_delete=models.CASCADE, related_name="cancellation_feedback")
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="cancellation_feedback")
    reason = models.CharField(_("reason"), max_length=20, choices=CancellationReason.choices, blank=True)
    comment = models.TextField(_("comment"), blank=True)
    offer_accepted = models.BooleanField(_("took the retention offer"), default=False)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("cancellation reason")
        verbose_name_plural = _("cancellation reasons")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return force_str(self.get_reason_display() or _("No reason given"))


class RetentionOfferRedemption(models.Model):
    """The retention offer a customer took: once per customer, whichever subscription it went on."""

    customer = models.OneToOneField(
        "accounts.Customer", on_delete=models.CASCADE, related_name="retention_offer_redemption"
    )
    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="+")
    coupon_id = models.CharField(_("Stripe coupon"), max_length=64)
    offer_text = models.CharField(_("offer"), max_length=200)
    applied_at = models.DateTimeField(_("applied"), default=timezone.now)

    class Meta:
        verbose_name = _("retention offer taken")
        verbose_name_plural = _("retention offers taken")
        ordering = ["-applied_at", "-pk"]

    def __str__(self):
        return f"{self.coupon_id} → {self.subscription.stripe_subscription_id}"
