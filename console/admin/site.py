from allauth.core import ratelimit
from allauth.usersessions.admin import UserSessionAdmin as AllauthUserSessionAdmin
from allauth.usersessions.models import UserSession
from django import forms
from django.contrib import admin
from django.shortcuts import redirect
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.avatars import UPLOAD_RATE_LIMITED, AvatarError, logo_reencode
from console.emails import email_requeue
from console.templatetags.portal import audit_changes
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from portal.selectors import site_settings_get
from portal.services import site_settings_update

SITE_SETTINGS_FIELDSETS = [
    (
        _("Business (shown on receipts)"),
        {"fields": ["business_name", "business_address", "business_tax_id", "business_email", "logo"]},
    ),
    (_("Receipts"), {"fields": ["receipt_prefix", "receipt_mode"]}),
    (
        _("Billing"),
        {
            "fields": [
                "processor_attached",
                "self_cancel_enabled",
                "self_cancel_instructions",
                "self_pause_enabled",
                "plan_changes_enabled",
                "retention_coupon_id",
                "retention_offer_text",
            ]
        },
    ),
    (
        _("Reminders"),
        {"fields": ["renewal_reminder_days", "monthly_renewal_reminders_enabled", "monthly_renewal_reminder_days"]},
    ),
    (_("Look"), {"fields": ["brand_colour"]}),
]


class SiteSettingsForm(forms.ModelForm):
    request = None  # set by SiteSettingsAdmin.get_form
    # A plain file field: Django's ImageField would open the upload with Pillow before our checks.
    logo = forms.FileField(
        label=_("logo"),
        required=False,
        help_text=_("JPEG, PNG or WebP, up to 2 MB. It is re-encoded as a PNG of at most 960 × 384 pixels."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )

    class Meta:
        model = SiteSettings
        fields = [field for _title, options in SITE_SETTINGS_FIELDSETS for field in options["fields"]]

    def clean_logo(self):
        """A new upload is checked from its header, then re-encoded so only its pixels are kept."""
        logo = self.cleaned_data["logo"]
        if not logo or logo == self.initial.get("logo"):
            return logo  # cleared, or left as it was
        # Counted before the image is looked at: decoding one costs CPU and memory whether or not it is kept.
        if not ratelimit.consume(self.request, action="upload_logo"):
            raise forms.ValidationError(UPLOAD_RATE_LIMITED, code="rate_limited")
        try:
            return logo_reencode(logo)
        except AvatarError as error:
            raise forms.ValidationError(error.message, code="invalid_logo") from None


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    form = SiteSettingsForm
    fieldsets = SITE_SETTINGS_FIELDSETS

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:portal_sitesettings_change", site_settings_get().pk)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"request": request})  # the logo's upload limit counts per user

    def save_model(self, request, obj, form, change):
        """Save through the service, which records who changed which setting."""
        site_settings_update(data={field: getattr(obj, field) for field in form.changed_data}, by=request.user)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "customer", "actor", "actor_kind", "changes_display"]
    list_filter = ["actor_kind", "action"]
    search_fields = ["customer__email", "customer__full_name", "action"]
    list_select_related = ["customer", "actor"]
    raw_id_fields = ["customer", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("changes"))
    def changes_display(self, entry):
        return "; ".join(
            f"{label}: {new}" if old is None else f"{label}: {old or '—'} → {new or '—'}"
            for label, old, new in audit_changes(entry)
        )

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(OutboundEmail)
class OutboundEmailAdmin(admin.ModelAdmin):
    """Every customer email, one row per event: what went out, what was skipped, what failed and why."""

    list_display = ["created_at", "kind", "customer", "to", "status", "attempts", "next_attempt_at", "sent_at"]
    list_filter = ["status", "kind"]
    search_fields = ["key", "customer__email", "customer__full_name", "to", "subject"]
    list_select_related = ["customer"]
    raw_id_fields = ["customer"]
    date_hierarchy = "created_at"
    actions = ["send_again"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Send the selected queued or failed emails again"), permissions=["change"])
    def send_again(self, request, queryset):
        count = sum(email_requeue(email=email) for email in queryset)
        self.message_user(
            request,
            ngettext("%(count)d email queued again.", "%(count)d emails queued again.", count) % {"count": count},
        )


# allauth's own admin searches user__username, a field our user model does not have (people sign in
# with their email): a search there would be a 500. Sessions are searched by email and address.
admin.site.unregister(UserSession)


@admin.register(UserSession)
class UserSessionAdmin(AllauthUserSessionAdmin):
    search_fields = ["user__email", "ip"]
    list_select_related = ["user"]
