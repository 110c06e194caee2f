"""The contacts console: the creator's and support staff's view of customers.

Every change made here goes through accounts.services (and purchases.services), like the customer's
own pages: receipts resync, the Stripe customer follows, and each change is audited.
"""

from functools import partial

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, F, OuterRef
from django.db.models.expressions import OrderBy
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST
from django_countries import countries
from import_export.admin import ImportExportModelAdmin
from import_export.formats.base_formats import CSV

from accounts import selectors, services
from accounts.forms import CUSTOM_FIELD_PREFIX, ContactForm, with_custom_fields
from accounts.models import Customer, CustomField, User
from accounts.resources import CustomerResource
from accounts.services import PROFILE_FIELDS, CustomerError
from accounts.social import SOCIAL_FIELDS
from billing.models import CancellationFeedback, Subscription
from console import selectors as console_selectors
from console import services as console_services
from console.admin.purchases import ReadOnlyInline
from portal.models import AuditEntry
from purchases.models import AccessGrant, Offer, Purchase, Receipt
from purchases.money import format_money

# Said on the add page, the list and the actions: people expect every new customer to get one.
LOGIN_EMAIL_NOTE = _(
    "Only customers added by hand here get a welcome email with a sign-in link. Customers who buy, "
    "sign up by themselves or are imported from a CSV file get none; send them one with the "
    "“Send a sign-in link” action."
)
HISTORY_SHOWN = 50


class CustomerInline(admin.StackedInline):
    """The contact record on the user page, read-only: contact edits go through the customer page."""

    model = Customer
    can_delete = False
    fk_name = "user"
    extra = 0
    show_change_link = True
    view_on_site = False  # the portal's contact page is the signed-in person's own
    fields = ["full_name", "email", "country", "last_activity_at"]
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "is_staff", "is_active", "date_joined", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email"]
    fieldsets = [
        (_("Account"), {"fields": ["email", "password"]}),
        (_("Permissions"), {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(_("Account"), {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]
    inlines = [CustomerInline]


# --- List filters ---------------------------------------------------------------------------------


class CountryFilter(admin.SimpleListFilter):
    """Only the countries customers actually have, not all 250."""

    title = _("country")
    parameter_name = "country"

    def lookups(self, request, model_admin):
        return sorted(((code, countries.name(code)) for code in selectors.countries_in_use()), key=lambda c: c[1])

    def queryset(self, request, queryset):
        return queryset.filter(country=self.value()) if self.value() else queryset


class ActiveSubscriptionFilter(admin.SimpleListFilter):
    title = _("active subscription")
    parameter_name = "active_subscription"

    def lookups(self, request, model_admin):
        return [("yes", _("Has one")), ("no", _("Has none"))]

    def queryset(self, request, queryset):
        has_one = Exists(console_selectors.active_subscriptions_of(OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(has_one)
        if self.value() == "no":
            return queryset.filter(~has_one)
        return queryset


# --- Read-only rows on the contact page -------------------------------------------------------------

# A contact's page lists the newest rows of each kind; "records" links to the whole, filtered lists.
INLINE_ROWS_SHOWN = 20


class LatestRowsInline(ReadOnlyInline):
    """The contact's newest INLINE_ROWS_SHOWN rows only, so the page costs the same for 5 or 5,000."""

    newest_first: tuple[str, ...] = ("-pk",)

    def get_queryset(self, request):
        queryset = super().get_queryset(request).order_by(*self.newest_first)
        match = request.resolver_match
        contact = match.kwargs.get("object_id") if match else None
        if contact is None:
            return queryset
        newest = self.model._default_manager.filter(customer=contact).order_by(*self.newest_first)
        return queryset.filter(pk__in=newest.values("pk")[:INLINE_ROWS_SHOWN])


class PurchaseInline(LatestRowsInline):
    model = Purchase
    fields = ["offer", "amount_display", "status", "purchased_at"]
    show_change_link = True
    verbose_name_plural = _("purchases (newest)")
    newest_first = ("-purchased_at", "-pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("offer")

    @admin.display(description=_("amount"))
    def amount_display(self, purchase):
        refunded = purchase.amount_refunded
        shown = format_money(purchase.amount, purchase.currency)
        if refunded:
            return _("%(amount)s (%(refunded)s refunded)") % {
                "amount": shown,
                "refunded": format_money(refunded, purchase.currency),
            }
        return shown


class SubscriptionInline(LatestRowsInline):
    model = Subscription
    fields = ["offer", "status_display", "amount_display", "current_period_end", "cancel_at_period_end"]
    show_change_link = True

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("offer")

    @admin.display(description=_("status"))
    def status_display(self, subscription):
        return subscription.display_status

    @admin.display(description=_("amount"))
    def amount_display(self, subscription):
        amount = format_money(subscription.amount, subscription.currency)
        return f"{amount} / {subscription.interval}" if subscription.interval else amount


class CancellationFeedbackInline(LatestRowsInline):
    """What the contact said when they went to cancel (billing.retention), newest first."""

    model = CancellationFeedback
    fields = ["created_at", "subscription", "reason", "comment", "offer_accepted"]
    verbose_name_plural = _("cancellation reasons (newest)")
    newest_first = ("-created_at", "-pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("subscription__offer")


class AccessInline(LatestRowsInline):
    model = AccessGrant
    fields = ["product", "purchase", "granted_at", "revoked_at", "revoke_reason"]
    verbose_name_plural = _("access (newest)")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "purchase__offer")


class ReceiptInline(LatestRowsInline):
    model = Receipt
    fields = ["number", "issued_at", "total_display", "corrects"]
    show_change_link = True
    verbose_name_plural = _("receipts (newest)")
    newest_first = ("-issued_at", "-pk")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("corrects")

    @admin.display(description=_("total"))
    def total_display(self, receipt):
        return format_money(receipt.total, receipt.currency)


# --- Forms ------------------------------------------------------------------------------------------


class CustomerAddForm(forms.ModelForm):
    """Add a customer by hand: who they are and, optionally, an offer whose products they get."""

    offer = forms.ModelChoiceField(
        Offer.objects.filter(is_active=True),
        required=False,
        label=_("Offer to grant"),
        help_text=_("Gives access to the offer's products without a purchase or a receipt."),
    )

    class Meta:
        model = Customer
        fields = ["full_name", "email"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True
        self.fields["email"].help_text = _("The welcome email goes to this address.")

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(services.EMAIL_TAKEN, code="email_taken", params={"email": email})
        return email


class CustomerChangeForm(ContactForm):
    """The contact page in admin: the same checks as the customer's own contact form (tax ID, phone …)."""

    class Meta(ContactForm.Meta):
        fields = "__all__"


# --- The contacts list and page -------------------------------------------------------------------


class ContactChangeList(ChangeList):
    """The contacts list pages the bare rows first, then computes the totals of the rows shown only.

    The totals (console_selectors.customers_with_totals) are correlated subqueries: left on the paginated query,
    the database computes them for every row the OFFSET skips too (page 1,000 of 100,000 contacts took
    1.2 s). A sort by one of them needs that one on the whole list, so only it is added before paging.
    """

    def get_queryset(self, request, exclude_parameters=None):
        if not hasattr(self, "bare_queryset"):  # once: the filters' facet counts call this again
            self.bare_queryset = self.root_queryset
            ordering = self.get_ordering(request, console_selectors.customers_with_totals(self.root_queryset))
            sorted_by = {_ordering_name(item) for item in ordering}.intersection(console_selectors.CUSTOMER_TOTALS)
            self.root_queryset = console_selectors.customers_with_totals(self.root_queryset, names=sorted_by)
        return super().get_queryset(request, exclude_parameters)

    def get_results(self, request):
        super().get_results(request)
        # Still one query: the page's ids (filtered, searched, sorted and sliced) are its subquery.
        shown = self.apply_select_related(self.bare_queryset.filter(pk__in=self.result_list.values("pk")))
        self.result_list = console_selectors.customers_with_totals(shown).order_by(*self.queryset.query.order_by)


def _ordering_name(item) -> str | None:
    """The field or annotation an ordering item ("-name", F("name").desc(), …) sorts by."""
    if isinstance(item, str):
        return item.removeprefix("-")
    if isinstance(item, OrderBy):
        item = item.expression
    return item.name if isinstance(item, F) else None


@admin.register(Customer)
class CustomerAdmin(ImportExportModelAdmin):
    list_display = [
        "name",
        "email",
        "country_code",
        "active_subscriptions_display",
        "lifetime_value_display",
        "last_activity_at",
        "created_at",
    ]
    list_filter = [
        CountryFilter,
        ActiveSubscriptionFilter,
        "directory_opt_in",
        ("last_activity_at", admin.DateFieldListFilter),
    ]
    search_fields = ["full_name", "email", "external_user_id", "tax_id_value"]
    search_help_text = _("Name, email, external user ID or tax ID.")
    ordering = ["-created_at"]
    list_per_page = 50
    view_on_site = False  # the portal's contact page is always the signed-in person's own; see "View as customer"
    # 100,000 contacts: never count the whole table just to show "of N".
    show_full_result_count = False
    readonly_fields = [
        "user",
        "email",
        "tax_id_status",
        "avatar",
        "stripe_customer_id",
        "lifetime_value_summary",
        "last_activity_at",
        "created_at",
        "updated_at",
        "history",
        "custom_fields_summary",
        "records",
    ]
    inlines = [PurchaseInline, SubscriptionInline, CancellationFeedbackInline, AccessInline, ReceiptInline]
    actions = ["send_login_email", "send_password_reset"]
    resource_classes = [CustomerResource]
    import_formats = [CSV]
    export_formats = [CSV]
    change_list_template = "admin/accounts/customer/change_list.html"
    change_form_template = "admin/accounts/customer/change_form.html"

    # -- queries

    def get_changelist(self, request, **kwargs):
        return ContactChangeList

    def get_queryset(self, request):
        """Customers only: the creator's and support staff's own records are not contacts (list, search,
        export and the contact pages alike)."""
        return super().get_queryset(request).filter(user__is_staff=False)

    def _custom_fields(self, request) -> list[CustomField]:
        """The custom field definitions, read once per request (the form and the fieldsets both need them)."""
        if not hasattr(request, "_portal_custom_fields"):
            request._portal_custom_fields = selectors.custom_fields_all()
        return request._portal_custom_fields

    # -- the contact page

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (_("Contact information"), {"fields": ["full_name", "email", "offer"], "description": LOGIN_EMAIL_NOTE})
            ]
        fieldsets = [
            (_("Contact information"), {"fields": ["full_name", "email", "phone", "user"]}),
            (
                _("Address"),
                {"fields": ["address_line1", "address_line2", "city", "region", "postal_code", "country"]},
            ),
            (_("Tax ID"), {"fields": ["tax_id_type", "tax_id_value", "tax_id_status"]}),
            (
                _("Integrations"),
                {
                    "fields": ["external_user_id", "stripe_customer_id"],
                    "description": _(
                        "The external user ID ties this contact to the same person in another system "
                        "(a community, a course platform, a CRM); integrations look customers up by it."
                    ),
                },
            ),
        ]
        if custom_fields := self._custom_fields(request):
            if self.has_change_permission(request, obj):
                names = [CUSTOM_FIELD_PREFIX + field.key for field in custom_fields]
            else:  # read-only staff see the values, not form fields
                names = ["custom_fields_summary"]
            fieldsets.append((_("Custom fields"), {"fields": names}))
        fieldsets += [
            (
                _("Activity and value"),
                {"fields": ["lifetime_value_summary", "last_activity_at", "created_at", "records"]},
            ),
            (_("Profile"), {"fields": [*PROFILE_FIELDS, "avatar", *SOCIAL_FIELDS], "classes": ["collapse"]}),
            (_("History"), {"fields": ["history"]}),
        ]
        return fieldsets

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = CustomerAddForm
        else:
            kwargs["form"] = with_custom_fields(CustomerChangeForm, self._custom_fields(request))
        return super().get_form(request, obj, change=change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_inlines(self, request, obj):
        return [] if obj is None else self.inlines

    def save_model(self, request, obj, form, change):
        """Save through the services, so receipts, Stripe and the audit trail follow staff edits too."""
        if not change:
            customer = console_services.customer_add_by_hand(
                email=form.cleaned_data["email"],
                full_name=form.cleaned_data["full_name"],
                offer=form.cleaned_data.get("offer"),
                by=request.user,
            )
            obj.pk, obj.user_id = customer.pk, customer.user_id
            return
        changed = [name for name in form.changed_data if not name.startswith(CUSTOM_FIELD_PREFIX)]
        services.customer_update_details(
            customer=obj, data={name: form.cleaned_data[name] for name in changed}, by=request.user
        )
        custom_values = form.custom_field_values()
        changed_custom = {
            key: value for key, value in custom_values.items() if CUSTOM_FIELD_PREFIX + key in form.changed_data
        }
        services.customer_set_custom_fields(customer=obj, values=changed_custom, by=request.user)

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            _("A welcome email with a sign-in link is on its way to %(email)s.") % {"email": obj.email},
            messages.SUCCESS,
        )
        return super().response_add(request, obj, post_url_continue)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_view_as": request.user.has_perm("accounts.view_as_customer"),
            "can_send_login_email": request.user.has_perm("accounts.send_login_email"),
            "can_export_data": request.user.has_perm("accounts.view_customer"),
            "can_erase": request.user.has_perm("accounts.delete_customer"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "login_email_note": LOGIN_EMAIL_NOTE}
        return super().changelist_view(request, extra_context)

    # -- columns and read-only values

    @admin.display(description=_("name"), ordering="full_name")
    def name(self, customer):
        return customer.full_name or "—"

    @admin.display(description=_("country"), ordering="country")
    def country_code(self, customer):
        return customer.country.code or "—"

    @admin.display(description=_("active subscriptions"), ordering="active_subscriptions")
    def active_subscriptions_display(self, customer):
        return customer.active_subscriptions

    @admin.display(description=_("lifetime value"), ordering="lifetime_value")
    def lifetime_value_display(self, customer):
        if not customer.lifetime_currency:
            return "—"
        if customer.lifetime_currency_count > 1:
            return _("%(count)s currencies") % {"count": customer.lifetime_currency_count}
        return format_money(customer.lifetime_value, customer.lifetime_currency)

    @admin.display(description=_("values"))
    def custom_fields_summary(self, customer):
        values = customer.custom_field_values or {}
        return format_html_join(
            mark_safe("<br>"),
            "{}: {}",
            ((field.label, values.get(field.key) or "—") for field in selectors.custom_fields_all()),
        )

    @admin.display(description=_("lifetime value"))
    def lifetime_value_summary(self, customer):
        values = console_selectors.customer_lifetime_values(customer=customer)
        return ", ".join(format_money(total, currency) for currency, total in values) or "—"

    @admin.display(description=_("records"))
    def records(self, customer):
        """How many of each the contact has, each a link to the whole list filtered to them."""
        kinds = [
            (_("purchases"), Purchase, "admin:purchases_purchase_changelist"),
            (_("subscriptions"), Subscription, "admin:billing_subscription_changelist"),
            (_("access grants"), AccessGrant, "admin:purchases_accessgrant_changelist"),
            (_("receipts"), Receipt, "admin:purchases_receipt_changelist"),
        ]
        links = []
        for label, model, url_name in kinds:
            count = model._default_manager.filter(customer=customer).count()
            try:
                url = reverse(url_name) + f"?customer__id__exact={customer.pk}"
            except NoReverseMatch:  # a list this admin site does not have
                links.append(format_html("{} {}", count, label))
                continue
            links.append(format_html('<a href="{}">{} {}</a>', url, count, label))
        return format_html_join(" · ", "{}", ((link,) for link in links))

    @admin.display(description=_("history"))
    def history(self, customer):
        entries = list(
            AuditEntry.objects.filter(customer=customer)
            .select_related("actor")
            .order_by("-created_at", "-pk")[: HISTORY_SHOWN + 1]
        )
        return render_to_string(
            "admin/accounts/customer/history.html",
            {
                "entries": entries[:HISTORY_SHOWN],
                "more": len(entries) > HISTORY_SHOWN,
                "all_url": reverse("admin:portal_auditentry_changelist") + f"?customer__id__exact={customer.pk}",
            },
        )

    # -- import and export: the creator's, not support's

    def has_import_permission(self, request):
        return request.user.has_perm("accounts.add_customer") and request.user.has_perm("accounts.change_customer")

    def has_export_permission(self, request):
        # All contacts at once is the creator's: support staff correct one contact at a time.
        return request.user.has_perm("accounts.add_customer") and request.user.has_perm("accounts.change_customer")

    def get_import_data_kwargs(self, **kwargs):
        # One bad row stops the whole file, at confirmation too: nothing is ever half-imported.
        return {**super().get_import_data_kwargs(**kwargs), "rollback_on_validation_errors": True}

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            self.message_user(request, _("Nothing was imported: the file no longer passes its checks."), messages.ERROR)
            return redirect("admin:accounts_customer_import")
        return super().process_result(result, request)

    # -- emails (never to staff: services.sign_in_email_refuse_staff), and viewing the portal as the customer

    def has_send_login_email_permission(self, request):
        return request.user.has_perm("accounts.send_login_email")

    @admin.action(description=_("Send a sign-in link (welcome email)"), permissions=["send_login_email"])
    def send_login_email(self, request, queryset):
        customers = list(_customers_not_staff(queryset))
        for customer in customers:
            services.customer_send_login_email(customer=customer, by=request.user)
        self.message_user(
            request, _("Sign-in link emailed to %(count)s customers.") % {"count": len(customers)}, messages.SUCCESS
        )

    @admin.action(description=_("Send a password reset email"), permissions=["send_login_email"])
    def send_password_reset(self, request, queryset):
        customers = list(_customers_not_staff(queryset))
        for customer in customers:
            services.customer_send_password_reset(customer=customer, by=request.user, request=request)
        self.message_user(
            request, _("Password reset emailed to %(count)s customers.") % {"count": len(customers)}, messages.SUCCESS
        )

    def get_urls(self):
        from console.admin import data_rights as data_rights_admin  # data rights act across the apps

        def view(function):
            return self.admin_site.admin_view(require_POST(function))

        def data_rights(name, function):
            return path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(partial(function, admin_site=self.admin_site)),
                name=f"accounts_customer_{name.replace('-', '_')}",
            )

        return [
            data_rights("data-export", data_rights_admin.data_export_view),
            data_rights("erase", data_rights_admin.erase_view),
            path("<int:pk>/view-as/", view(self.view_as_view), name="accounts_customer_view_as"),
            path("<int:pk>/send-login-email/", view(self.send_login_email_view), name="accounts_customer_login_email"),
            path(
                "<int:pk>/send-password-reset/",
                view(self.send_password_reset_view),
                name="accounts_customer_password_reset",
            ),
            *super().get_urls(),
        ]

    def _customer_for(self, request, pk, permission):
        if not request.user.has_perm(permission):
            raise PermissionDenied
        return get_object_or_404(Customer.objects.select_related("user"), pk=pk)

    def view_as_view(self, request, pk):
        customer = self._customer_for(request, pk, "accounts.view_as_customer")
        try:
            services.view_as_start(session=request.session, staff=request.user, customer=customer)
        except CustomerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:accounts_customer_change", customer.pk)
        return redirect("portal:home")

    def send_login_email_view(self, request, pk):
        customer = self._customer_for(request, pk, "accounts.send_login_email")
        try:
            services.customer_send_login_email(customer=customer, by=request.user)
        except CustomerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:accounts_customer_change", customer.pk)
        self.message_user(
            request, _("Sign-in link emailed to %(email)s.") % {"email": customer.user.email}, messages.SUCCESS
        )
        return redirect("admin:accounts_customer_change", customer.pk)

    def send_password_reset_view(self, request, pk):
        customer = self._customer_for(request, pk, "accounts.send_login_email")
        try:
            services.customer_send_password_reset(customer=customer, by=request.user, request=request)
        except CustomerError as error:
            self.message_user(request, error.message, messages.ERROR)
            return redirect("admin:accounts_customer_change", customer.pk)
        self.message_user(
            request, _("Password reset emailed to %(email)s.") % {"email": customer.user.email}, messages.SUCCESS
        )
        return redirect("admin:accounts_customer_change", customer.pk)


def _customers_not_staff(queryset):
    """The active, non-staff customers of a selection: bulk sign-in emails skip the others quietly."""
    return queryset.filter(user__is_active=True, user__is_staff=False, user__is_superuser=False).select_related("user")


@admin.register(CustomField)
class CustomFieldAdmin(admin.ModelAdmin):
    list_display = ["label", "key", "type", "visible_to_customer", "editable_by_customer", "position"]
    list_editable = ["position"]
    fields = ["label", "key", "type", "choices", "help_text", "visible_to_customer", "editable_by_customer", "position"]
    prepopulated_fields = {"key": ["label"]}

    def get_readonly_fields(self, request, obj=None):
        return ["key"] if obj is not None else []

    def get_prepopulated_fields(self, request, obj=None):
        return {} if obj is not None else self.prepopulated_fields
