from django.contrib import admin
from django.shortcuts import redirect

from .models import AuditEntry, SiteSettings
from .selectors import site_settings_get


@admin.register(SiteSettings)
class SiteSettingsAdmin(admin.ModelAdmin):
    fieldsets = [
        (
            "Business (shown on receipts)",
            {"fields": ["business_name", "business_address", "business_tax_id", "business_email", "logo"]},
        ),
        ("Receipts", {"fields": ["receipt_prefix", "receipt_mode"]}),
        ("Billing", {"fields": ["processor_attached", "self_cancel_enabled", "self_cancel_instructions"]}),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def changelist_view(self, request, extra_context=None):
        return redirect("admin:portal_sitesettings_change", site_settings_get().pk)


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["created_at", "action", "customer", "actor", "actor_kind"]
    list_filter = ["actor_kind", "action"]
    search_fields = ["customer__email", "customer__full_name", "action"]
    list_select_related = ["customer", "actor"]
    raw_id_fields = ["customer", "actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
