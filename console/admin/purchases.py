import uuid
from functools import partial

from allauth.core import ratelimit
from django import forms
from django.contrib import admin, messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from console import staff
from portal.selectors import site_settings_get
from purchases.models import AccessGrant, Offer, Product, Purchase, Receipt, Refund
from purchases.money import format_money, to_major, to_minor
from purchases.pdf import receipt_filename, receipt_pdf
from purchases.receipts import RECEIPT_RESEND_ALREADY, RECEIPT_RESEND_RATE_LIMITED, RECEIPT_RESENT, receipt_resend
from purchases.services import GRANT_PURCHASE_OF_ANOTHER_CUSTOMER, access_grant, access_revoke, purchase_record


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "access_url", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}


TOO_MANY_DECIMALS = _("Too many decimal places for this currency.")


class OfferForm(forms.ModelForm):
    """The price typed as money (49.00), kept as minor units (4900) in the offer's currency."""

    price = forms.DecimalField(
        label=_("price"), min_value=0, decimal_places=3, help_text=_("Per payment, in the offer's currency: 49.00.")
    )

    class Meta:
        model = Offer
        fields = ["name", "kind", "currency", "interval", "installments", "products", "stripe_price_id", "is_active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["price"].initial = to_major(self.instance.price_amount, self.instance.currency)

    def clean(self):
        cleaned = super().clean()
        price, currency = cleaned.get("price"), cleaned.get("currency")
        if price is not None and currency:
            try:
                self.instance.price_amount = to_minor(price, currency)
            except ValueError:
                self.add_error("price", TOO_MANY_DECIMALS)
        return cleaned


class PurchaseAddForm(forms.ModelForm):
    """A sale entered by hand: the amount typed as money in the offer's currency (empty: the offer's price)."""

    amount = forms.DecimalField(
        label=_("amount"),
        required=False,
        min_value=0,
        decimal_places=3,
        help_text=_("In the offer's currency, e.g. 49.00; empty for the offer's price."),
    )

    class Meta:
        model = Purchase
        fields = ["customer", "offer", "purchased_at"]

    def clean(self):
        cleaned = super().clean()
        amount, offer = cleaned.get("amount"), cleaned.get("offer")
        if amount is not None and offer is not None:
            try:
                cleaned["amount"] = to_minor(amount, offer.currency)
            except ValueError:
                self.add_error("amount", TOO_MANY_DECIMALS)
        return cleaned


@admin.register(Offer)
class OfferAdmin(admin.ModelAdmin):
    form = OfferForm
    fields = ["name", "kind", "price", "currency", "interval", "installments", "switch_group"]
    fields += ["products", "stripe_price_id", "is_active"]
    list_display = ["name", "kind", "price", "interval", "installments", "switch_group", "is_active"]
    list_filter = ["kind", "is_active", "currency", "switch_group"]
    search_fields = ["name", "stripe_price_id"]
    filter_horizontal = ["products"]

    @admin.display(description=_("price"), ordering="price_amount")
    def price(self, offer):
        return format_money(offer.price_amount, offer.currency)


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on a purchase; they change only through the purchases services."""

    extra = 0
    can_delete = False
    view_on_site = False  # a receipt's portal page is its customer's own; staff use "View as customer"

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class ReceiptInline(ReadOnlyInline):
    model = Receipt
    fields = ["number", "issued_at", "total_display", "billing_name", "corrects"]
    show_change_link = True

    @admin.display(description=_("total"))
    def total_display(self, receipt):
        return format_money(receipt.total, receipt.currency)


class AccessGrantInline(ReadOnlyInline):
    model = AccessGrant
    fields = ["product", "granted_at", "granted_by", "revoked_at", "revoked_by", "revoke_reason"]


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = [
        "amount_display",
        "status",
        "failure_reason",
        "reason",
        "created_at",
        "created_by",
        "stripe_refund_id",
    ]

    @admin.display(description=_("amount"))
    def amount_display(self, refund):
        return format_money(refund.amount, refund.currency)


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ["__str__", "customer", "amount_display", "status", "purchased_at"]
    list_filter = ["status", "offer"]
    search_fields = ["customer__full_name", "customer__email", "stripe_invoice_id", "stripe_charge_id"]
    list_select_related = ["customer", "offer"]
    raw_id_fields = ["customer"]
    date_hierarchy = "purchased_at"
    readonly_fields = ["amount_refunded", "status"]
    inlines = [ReceiptInline, AccessGrantInline, RefundInline]
    change_form_template = "admin/purchases/purchase/change_form.html"

    def get_urls(self):
        def route(name, view):
            return path(
                f"<int:pk>/{name}/",
                self.admin_site.admin_view(partial(view, admin_site=self.admin_site)),
                name=f"purchases_purchase_{name}",
            )

        return [
            route("refund", staff.purchase_refund_view),
            route("revoke", staff.purchase_revoke_view),
            route("cancel", staff.purchase_cancel_view),
        ] + super().get_urls()

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        context.update(
            can_refund=request.user.has_perm("purchases.add_refund"),
            can_revoke=request.user.has_perm("purchases.add_accessgrant"),
            can_cancel=request.user.has_perm("billing.change_subscription")
            and bool(obj and obj.stripe_subscription_id),
        )
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    # Shown as money in place of the minor-unit columns.
    MONEY_FIELDS = {"amount": "amount_display", "amount_refunded": "refunded_display"}

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = PurchaseAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:  # recording a sale by hand: who bought which offer, for how much, when
            return ["customer", "offer", "amount", "purchased_at"]
        return [self.MONEY_FIELDS.get(name, name) for name in super().get_fields(request, obj)]

    def get_readonly_fields(self, request, obj=None):
        """A recorded sale is a financial record: changed only through the actions (refund, revoke,
        cancel), which go through the services, so receipts, access and the audit trail follow."""
        if obj is None:
            return super().get_readonly_fields(request, obj)
        fields = [field.name for field in self.model._meta.fields]
        return [self.MONEY_FIELDS.get(name, name) for name in fields if name != "currency"]

    def get_changeform_initial_data(self, request):
        return {"amount": None}

    def save_model(self, request, obj, form, change):
        """A sale added by hand is recorded like any other: access granted and a receipt issued."""
        if change:
            return super().save_model(request, obj, form, change)
        recorded = purchase_record(
            customer=obj.customer,
            offer=obj.offer,
            amount=form.cleaned_data.get("amount"),
            purchased_at=obj.purchased_at,
            by=request.user,
        )
        obj.pk = recorded.pk
        obj.currency = recorded.currency

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, purchase):
        return format_money(purchase.amount, purchase.currency)

    @admin.display(description=_("refunded"))
    def refunded_display(self, purchase):
        return format_money(purchase.amount_refunded, purchase.currency)


class AccessGrantForm(forms.ModelForm):
    class Meta:
        model = AccessGrant
        fields = ["customer", "product", "purchase"]

    def clean(self):
        cleaned = super().clean()
        purchase, customer = cleaned.get("purchase"), cleaned.get("customer")
        if purchase and customer and purchase.customer_id != customer.pk:
            self.add_error("purchase", GRANT_PURCHASE_OF_ANOTHER_CUSTOMER)
        return cleaned


@admin.register(AccessGrant)
class AccessGrantAdmin(admin.ModelAdmin):
    form = AccessGrantForm
    list_display = ["product", "customer", "purchase", "granted_at", "revoked_at"]
    list_filter = ["product", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["customer__full_name", "customer__email", "product__name"]
    list_select_related = ["product", "customer", "purchase__offer"]
    raw_id_fields = ["customer", "purchase"]
    fields = ["customer", "product", "purchase"]
    actions = ["revoke_selected"]

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        """Granting by hand goes through the same service as a purchase."""
        grant = access_grant(customer=obj.customer, product=obj.product, purchase=obj.purchase, by=request.user)
        obj.pk = grant.pk

    @admin.action(description=_("Revoke access of the selected grants"), permissions=["add"])
    def revoke_selected(self, request, queryset):
        grants = list(queryset.filter(revoked_at__isnull=True))
        for grant in grants:
            access_revoke(grant=grant, by=request.user, reason="revoked in admin")
        self.message_user(request, _("%(count)s grants revoked.") % {"count": len(grants)}, messages.SUCCESS)


class ResendForm(forms.Form):
    # One press of "Resend": fresh in each page shown, so the same press arriving twice sends one email.
    click = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)


@admin.register(Receipt)
class ReceiptAdmin(admin.ModelAdmin):
    change_form_template = "admin/purchases/receipt/change_form.html"
    list_display = ["number", "customer", "total_display", "issued_at", "billing_name", "pdf_link"]
    search_fields = ["number", "billing_name", "billing_email", "customer__email"]
    list_select_related = ["customer"]
    date_hierarchy = "issued_at"
    view_on_site = False  # the portal's receipt page is its customer's own; staff use "View as customer"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in Receipt._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, receipt):
        return format_money(receipt.total, receipt.currency)

    @admin.display(description=_("PDF"))
    def pdf_link(self, receipt):
        return format_html('<a href="{}">{}</a>', reverse("admin:purchases_receipt_pdf", args=[receipt.pk]), _("PDF"))

    def get_urls(self):
        return [
            path("<int:pk>/pdf/", self.admin_site.admin_view(self.pdf_view), name="purchases_receipt_pdf"),
            path("<int:pk>/resend/", self.admin_site.admin_view(self.resend_view), name="purchases_receipt_resend"),
            *super().get_urls(),
        ]

    def pdf_view(self, request, pk):
        receipt = self.get_object(request, str(pk))
        if receipt is None or not self.has_view_permission(request, receipt):
            return HttpResponse(status=404)
        response = HttpResponse(receipt_pdf(receipt=receipt, site=site_settings_get()), content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="{receipt_filename(receipt)}"'
        return response

    def resend_view(self, request, pk):
        """Email the receipt to its customer again, after a confirmation page naming the address."""
        receipt = self.get_object(request, str(pk))
        if receipt is None or not self.has_view_permission(request, receipt):
            return HttpResponse(status=404)
        back = reverse("admin:purchases_receipt_change", args=[pk])
        form = ResendForm(request.POST or None, initial={"click": uuid.uuid4().hex})
        if request.method == "POST" and form.is_valid():
            if not ratelimit.consume(request, action="resend_receipt", key=receipt.number):
                messages.error(request, RECEIPT_RESEND_RATE_LIMITED)
            elif receipt_resend(receipt=receipt, by=request.user, click=form.cleaned_data["click"]):
                email = receipt.customer.user.email
                messages.success(request, RECEIPT_RESENT % {"number": receipt.number, "email": email})
            else:
                messages.info(request, RECEIPT_RESEND_ALREADY % {"number": receipt.number})
            return redirect(back)
        from console.staff import Confirmation  # the console's one confirmation page

        confirmation = Confirmation(
            title=gettext("Resend receipt %(number)s") % {"number": receipt.number},
            consequences=[
                gettext("The receipt email goes again to %(email)s.") % {"email": receipt.customer.user.email}
            ],
            button=gettext("Resend receipt"),
            danger=False,
        )
        context = {
            **self.admin_site.each_context(request),
            "title": confirmation.title,
            "object": receipt,
            "confirmation": confirmation,
            "form": form,
            "back_url": back,
        }
        return TemplateResponse(request, "admin/portal/confirm_action.html", context)
