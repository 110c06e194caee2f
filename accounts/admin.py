from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import Customer, User
from .services import customer_update_contact
from .signals import CONTACT_FIELDS


class CustomerInline(admin.StackedInline):
    model = Customer
    can_delete = False
    fk_name = "user"
    extra = 0
    readonly_fields = ["email", "stripe_customer_id", "last_activity_at", "created_at", "updated_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    inlines = [CustomerInline]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["__str__", "email", "country", "last_activity_at", "created_at"]
    list_filter = ["country", "directory_opt_in"]
    search_fields = ["full_name", "email", "external_user_id", "tax_id_value"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["email", "stripe_customer_id", "last_activity_at", "created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        """Save contact fields through the service, so receipts and Stripe follow staff edits too."""
        if not change:
            return super().save_model(request, obj, form, change)
        other = [field for field in form.changed_data if field not in CONTACT_FIELDS]
        if other:
            obj.save(update_fields=[*other, "updated_at"])
        contact = {field: getattr(obj, field) for field in CONTACT_FIELDS if field in form.changed_data}
        customer_update_contact(customer=obj, data=contact, by=request.user)
