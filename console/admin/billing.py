from functools import partial

from django.contrib import admin, messages
from django.db import models
from django.urls import path
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.models import (
    CancellationFeedback,
    Card,
    CustomerPush,
    RetentionOfferRedemption,
    Subscription,
    WebhookEvent,
    WebhookStatus,
)
from billing.services.pushes import customer_push_now
from billing.webhooks import webhook_event_apply
from console import staff
from purchases.money import format_money


class ReadOnlyAdmin(admin.ModelAdmin):
    """Mirrors of the processor: changed through services, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Card)
class CardAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "customer", "exp_month", "exp_year", "is_default", "created_at"]
    list_filter = ["is_default", "brand"]
    list_select_related = ["customer"]
    search_fields = ["stripe_payment_method_id", "customer__email", "last4"]
    raw_id_fields = ["customer"]


@admin.register(CancellationFeedback)
class CancellationFeedbackAdmin(ReadOnlyAdmin):
    """Reasons customers gave on the cancel page; the dashboard counts them."""

    list_display = ["created_at", "customer", "subscription", "reason", "offer_accepted", "comment"]
    list_filter = ["reason", "offer_accepted"]
    list_select_related = ["customer", "subscription__offer"]
    search_fields = ["customer__email", "comment"]
    raw_id_fields = ["customer", "subscription"]
    date_hierarchy = "created_at"


@admin.register(RetentionOfferRedemption)
class RetentionOfferRedemptionAdmin(ReadOnlyAdmin):
    list_display = ["applied_at", "customer", "subscription", "coupon_id"]
    list_select_related = ["customer", "subscription"]
    search_fields = ["customer__email", "coupon_id"]
    raw_id_fields = ["customer", "subscription"]


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    change_form_template = "admin/billing/subscription/change_form.html"

    list_display = [
        "__str__",
        "customer",
        "status",
        "amount_display",
        "current_period_end",
        "cancel_at_period_end",
        "pause_display",
        "scheduled_change_display",
    ]
    list_filter = ["status", "cancel_at_period_end", "paused", "paused_by_customer"]
    list_select_related = ["customer", "offer", "scheduled_offer"]
    search_fields = ["stripe_subscription_id", "customer__email"]
    raw_id_fields = ["customer"]

    @admin.display(description=_("pause"), ordering="resumes_at")
    def pause_display(self, obj: Subscription) -> str:
        if not obj.paused:
            return "—"
        who = _("by the customer") if obj.paused_by_customer else _("by staff or in Stripe")
        if obj.resumes_at is None:
            return _("Paused %(who)s, until resumed") % {"who": who}
        day = formats.date_format(timezone.localtime(obj.resumes_at), "DATE_FORMAT")
        return _("Paused %(who)s, until %(date)s") % {"who": who, "date": day}

    @admin.display(description=_("scheduled change"), ordering="scheduled_change_at")
    def scheduled_change_display(self, obj: Subscription) -> str:
        if not obj.has_scheduled_change:
            return "—"
        offer = obj.scheduled_offer.name if obj.scheduled_offer else obj.scheduled_price_id
        if obj.scheduled_change_at is None:
            return _("Changes to %(offer)s at the next renewal") % {"offer": offer}
        day = formats.date_format(timezone.localtime(obj.scheduled_change_at), "DATE_FORMAT")
        return _("Changes to %(offer)s on %(date)s") % {"offer": offer, "date": day}

    def get_urls(self):
        view = partial(staff.subscription_action_view, admin_site=self.admin_site)
        return [
            path(
                f"<int:pk>/{action}/",
                self.admin_site.admin_view(partial(view, action=action)),
                name=f"billing_subscription_{action}",
            )
            for action in staff.SUBSCRIPTION_ACTIONS
        ] + super().get_urls()

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, subscription):
        return format_money(subscription.amount, subscription.currency)

    def get_readonly_fields(self, request, obj=None):
        fields = [field.name for field in self.model._meta.fields if field.name not in ("amount", "currency")]
        return ["amount_display", "scheduled_change_display", *fields]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj)

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context["can_act"] = request.user.has_perm("billing.change_subscription")
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)


class RetryFilter(admin.SimpleListFilter):
    """Rows the sweep still retries, and rows whose retries gave up (they wait for a person)."""

    title = _("retries")
    parameter_name = "retries"

    def lookups(self, request, model_admin):
        return [("waiting", _("waiting for a retry")), ("gave_up", _("gave up"))]

    def queryset(self, request, queryset):
        if self.value() == "waiting":
            return queryset.filter(self.waiting_filter, next_attempt_at__isnull=False)
        if self.value() == "gave_up":
            return queryset.filter(self.waiting_filter, next_attempt_at__isnull=True)
        return queryset

    waiting_filter = models.Q()


class WebhookRetryFilter(RetryFilter):
    waiting_filter = models.Q(status__in=[WebhookStatus.FAILED, WebhookStatus.RECEIVED])


@admin.register(CustomerPush)
class CustomerPushAdmin(ReadOnlyAdmin):
    """Contact changes the processor has not confirmed yet (billing.services.pushes); the sweep retries
    them, and "Push now" sends those whose retries gave up."""

    list_display = ["customer", "since", "attempts", "next_attempt_at", "error"]
    list_filter = [RetryFilter]
    list_select_related = ["customer"]
    search_fields = ["customer__email", "customer__stripe_customer_id"]
    readonly_fields = ["customer", "key", "since", "attempts", "next_attempt_at", "error"]
    actions = ["push_now"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("billing.change_customerpush")

    @admin.action(description=_("Push the selected contact details to Stripe now"), permissions=["change"])
    def push_now(self, request, queryset):
        pushed = failed = 0
        for push in queryset:
            if customer_push_now(customer_id=push.customer_id):
                pushed += 1
            else:
                failed += 1
        if pushed:
            self.message_user(request, ngettext("%d push sent.", "%d pushes sent.", pushed) % pushed)
        if failed:
            self.message_user(
                request,
                ngettext("%d push failed again; see its error.", "%d pushes failed again; see their errors.", failed)
                % failed,
                messages.ERROR,
            )


@admin.register(WebhookEvent)
class WebhookEventAdmin(ReadOnlyAdmin):
    list_display = [
        "stripe_event_id",
        "type",
        "object_id",
        "status",
        "attempts",
        "received_at",
        "processed_at",
        "next_attempt_at",
    ]
    list_filter = ["status", WebhookRetryFilter, "type"]
    search_fields = ["stripe_event_id", "object_id"]
    readonly_fields = [
        "stripe_event_id",
        "type",
        "object_id",
        "status",
        "error",
        "attempts",
        "received_at",
        "processed_at",
        "next_attempt_at",
        "payload",
    ]
    actions = ["retry"]

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("billing.change_webhookevent")

    @admin.action(description=_("Retry the selected failed events"), permissions=["change"])
    def retry(self, request, queryset):
        applied = failed = 0
        # Failed ones, and any left "received" by a process that died while applying it.
        for event in queryset.filter(status__in=[WebhookStatus.FAILED, WebhookStatus.RECEIVED]):
            result = webhook_event_apply(event=event)
            if result.status == WebhookStatus.PROCESSED:
                applied += 1
            else:
                failed += 1
        if applied:
            self.message_user(request, ngettext("%d event applied.", "%d events applied.", applied) % applied)
        if failed:
            self.message_user(
                request,
                ngettext("%d event failed again; see its error.", "%d events failed again; see their errors.", failed)
                % failed,
                messages.ERROR,
            )
        if not applied and not failed:
            self.message_user(request, _("Only failed or unapplied events can be retried."), messages.WARNING)
