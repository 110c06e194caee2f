"""Staff actions in admin that change money or access: each a confirmation page, then one service call.

The page says exactly what will happen; the POST calls the same services the customer's own pages
use, so the processor, the mirror, the audit trail and the customer's emails stay in step. A
processor failure is shown in words and changes nothing of ours.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing import services
from billing.gateways.base import PaymentError, TemporarilyUnavailable
from billing.models import Subscription
from portal.errors import UserFacingError
from purchases.models import Purchase
from purchases.money import format_money, to_major, to_minor


@dataclass
class Confirmation:
    title: str
    consequences: list[str]
    button: str
    danger: bool = True


class RefundForm(forms.Form):
    amount = forms.DecimalField(label=gettext_lazy("Amount to refund"), min_value=Decimal("0.01"), decimal_places=3)
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)
    # One refund someone set out to make: fresh in each form shown, kept when the form comes back
    # with an error, so pressing Refund again repeats that refund and never makes a second.
    attempt = forms.RegexField(regex=r"^[0-9a-f]{32}$", widget=forms.HiddenInput)

    def __init__(self, *args, purchase: Purchase, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["attempt"].initial = uuid.uuid4().hex
        self.purchase = purchase
        self.fields["amount"].initial = to_major(purchase.amount_remaining, purchase.currency)
        self.fields["amount"].help_text = _("At most %(left)s, what is left of this purchase.") % {
            "left": format_money(purchase.amount_remaining, purchase.currency)
        }

    def clean_amount(self):
        try:
            amount = to_minor(self.cleaned_data["amount"], self.purchase.currency)
        except ValueError:
            raise forms.ValidationError(_("Too many decimal places for this currency.")) from None
        if amount > self.purchase.amount_remaining:
            raise forms.ValidationError(
                _("That is more than the %(left)s left on this purchase.")
                % {"left": format_money(self.purchase.amount_remaining, self.purchase.currency)}
            )
        return amount


class CancelPaymentsForm(forms.Form):
    WHEN_CHOICES = [
        ("period_end", gettext_lazy("At the end of the paid period (access kept until then)")),
        ("now", gettext_lazy("Now (no further charges)")),
    ]
    when = forms.ChoiceField(label=gettext_lazy("Stop the payments"), choices=WHEN_CHOICES, widget=forms.RadioSelect)
    revoke_access = forms.BooleanField(label=gettext_lazy("Also revoke product access now"), required=False)


class PauseForm(forms.Form):
    resumes_on = forms.DateField(
        label=gettext_lazy("Resume on (optional)"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=gettext_lazy("Leave empty to pause until someone resumes it."),
    )

    def clean_resumes_on(self):
        day = self.cleaned_data["resumes_on"]
        if day and day <= timezone.localdate():
            raise forms.ValidationError(_("Choose a date in the future."))
        return day


def _date(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT") if value else _("the end of the period")


def _run(request, action, success) -> bool:
    """Run one staff action; show `success` (or `success(result)`), or why it was not done."""
    try:
        result = action()
    except (UserFacingError, services.BillingError) as error:
        messages.error(request, error.message)
        return False
    except TemporarilyUnavailable as error:
        # The request may have reached Stripe before the answer was lost: say so, and that a retry is safe.
        messages.error(
            request,
            _(
                "Stripe did not answer, so this may or may not have been done; its webhook will tell us shortly. "
                "Pressing the button again is safe: it is never done twice. (%(why)s)"
            )
            % {"why": error.user_message},
        )
        return False
    except PaymentError as error:
        messages.error(request, _("Stripe refused this, so nothing was changed: %(why)s") % {"why": error.user_message})
        return False
    messages.success(request, success(result) if callable(success) else success)
    return True


def _render(request, admin_site, *, obj, confirmation: Confirmation, form=None, back_url: str):
    context = {
        **admin_site.each_context(request),
        "title": confirmation.title,
        "object": obj,
        "confirmation": confirmation,
        "form": form,
        "back_url": back_url,
    }
    return TemplateResponse(request, "admin/portal/confirm_action.html", context)


# Purchases ---------------------------------------------------------------------------------------


def purchase_refund_view(request, pk, *, admin_site):
    if not request.user.has_perm("purchases.add_refund"):
        raise PermissionDenied
    purchase = get_object_or_404(Purchase.objects.select_related("customer", "offer"), pk=pk)
    back = reverse("admin:purchases_purchase_change", args=[pk])
    form = RefundForm(request.POST or None, purchase=purchase)
    if request.method == "POST" and form.is_valid():
        amount = form.cleaned_data["amount"]
        done = _run(
            request,
            lambda: services.purchase_refund(
                purchase=purchase,
                amount=amount,
                reason=form.cleaned_data["reason"],
                by=request.user,
                attempt=form.cleaned_data["attempt"],
            ),
            lambda refund: (
                (
                    _("Refund of %(amount)s started: Stripe has it as pending and will tell us when it is made.")
                    if refund.status == "pending"
                    else _("Refunded %(amount)s.")
                )
                % {"amount": format_money(amount, purchase.currency)}
            ),
        )
        if done:
            return redirect(back)
    where = (
        _("to the card it was paid with, through Stripe")
        if purchase.stripe_charge_id or purchase.stripe_payment_intent_id
        else _("recorded here only: it was not paid through Stripe, so return the money the way it was paid")
    )
    confirmation = Confirmation(
        title=_("Refund %(offer)s for %(customer)s") % {"offer": purchase.offer.name, "customer": purchase.customer},
        consequences=[
            _("Paid %(paid)s; %(left)s is left to refund.")
            % {
                "paid": format_money(purchase.amount, purchase.currency),
                "left": format_money(purchase.amount_remaining, purchase.currency),
            },
            _("The refund goes %(where)s; the customer is emailed and the receipt shows it.") % {"where": where},
            _("Access to the products is not changed; revoke it separately if needed."),
        ],
        button=_("Refund"),
    )
    return _render(request, admin_site, obj=purchase, confirmation=confirmation, form=form, back_url=back)


def purchase_revoke_view(request, pk, *, admin_site):
    if not request.user.has_perm("purchases.add_accessgrant"):
        raise PermissionDenied
    purchase = get_object_or_404(Purchase.objects.select_related("customer", "offer"), pk=pk)
    back = reverse("admin:purchases_purchase_change", args=[pk])
    products = [grant.product.name for grant in purchase.grants.filter(revoked_at=None).select_related("product")]
    if request.method == "POST":
        _run(
            request,
            lambda: services.purchase_access_revoke(purchase=purchase, by=request.user),
            _("Access revoked: %(products)s.") % {"products": ", ".join(products) or "—"},
        )
        return redirect(back)
    confirmation = Confirmation(
        title=_("Revoke access bought with %(offer)s") % {"offer": purchase.offer.name},
        consequences=[
            _("%(customer)s loses access to: %(products)s.")
            % {"customer": purchase.customer, "products": ", ".join(products) or _("nothing (already revoked)")},
            _("Billing continues: no payment is cancelled and nothing is refunded."),
        ],
        button=_("Revoke access"),
    )
    return _render(request, admin_site, obj=purchase, confirmation=confirmation, back_url=back)


def purchase_cancel_view(request, pk, *, admin_site):
    """Cancel the payments of a subscription or payment plan purchase, optionally revoking access too."""
    if not request.user.has_perm("billing.change_subscription"):
        raise PermissionDenied
    purchase = get_object_or_404(Purchase.objects.select_related("customer", "offer"), pk=pk)
    back = reverse("admin:purchases_purchase_change", args=[pk])
    subscription = services.purchase_subscription(purchase=purchase)
    if subscription is None:
        messages.error(request, _("This purchase has no recurring payments to cancel."))
        return redirect(back)
    form = CancelPaymentsForm(request.POST or None, initial={"when": "period_end"})
    if request.method == "POST" and form.is_valid():
        now = form.cleaned_data["when"] == "now"
        revoke = form.cleaned_data["revoke_access"]

        def cancel_then_revoke():
            services.subscription_cancel(subscription=subscription, by=request.user, at_period_end=not now)
            if revoke:
                services.purchase_access_revoke(purchase=purchase, by=request.user, reason="payments cancelled")

        if _run(request, cancel_then_revoke, _("Payments cancelled.") + (" " + _("Access revoked.") if revoke else "")):
            return redirect(back)
    confirmation = Confirmation(
        title=_("Cancel payments for %(offer)s") % {"offer": purchase.offer.name},
        consequences=[
            _("At period end: no charge after %(date)s, and access stays until then.")
            % {"date": _date(subscription.current_period_end)},
            _("Now: the subscription ends today; access ends with it."),
            _("Tick “also revoke” to remove product access today whichever you choose. Nothing is refunded."),
        ],
        button=_("Cancel payments"),
    )
    return _render(request, admin_site, obj=purchase, confirmation=confirmation, form=form, back_url=back)


# Subscriptions ----------------------------------------------------------------------------------


def subscription_action_view(request, pk, action, *, admin_site):
    if not request.user.has_perm("billing.change_subscription"):
        raise PermissionDenied
    subscription = get_object_or_404(Subscription.objects.select_related("customer", "offer"), pk=pk)
    back = reverse("admin:billing_subscription_change", args=[pk])
    name = subscription.offer.name if subscription.offer else subscription.stripe_subscription_id
    form = None
    if action == "cancel_at_period_end":
        confirmation = Confirmation(
            _("Cancel %(name)s at period end") % {"name": name},
            [
                _("No charge after %(date)s; the customer keeps access until then and is emailed.")
                % {"date": _date(subscription.current_period_end)}
            ],
            _("Cancel at period end"),
        )
        act = lambda: services.subscription_cancel(subscription=subscription, by=request.user, at_period_end=True)  # noqa: E731
    elif action == "cancel_now":
        confirmation = Confirmation(
            _("Cancel %(name)s now") % {"name": name},
            [
                _(
                    "The subscription ends today: no further charges, and the access it paid for ends now. "
                    "Nothing is refunded."
                )
            ],
            _("Cancel now"),
        )
        act = lambda: services.subscription_cancel(subscription=subscription, by=request.user, at_period_end=False)  # noqa: E731
    elif action == "keep":
        confirmation = Confirmation(
            _("Undo the cancellation of %(name)s") % {"name": name},
            [_("Charges continue after %(date)s as before.") % {"date": _date(subscription.current_period_end)}],
            _("Keep the subscription"),
            danger=False,
        )
        act = lambda: services.subscription_cancel_undo(subscription=subscription, by=request.user)  # noqa: E731
    elif action == "pause":
        form = PauseForm(request.POST or None)
        confirmation = Confirmation(
            _("Pause %(name)s") % {"name": name},
            [_("No invoices are charged while paused; access is not changed. The customer is emailed.")],
            _("Pause"),
        )

        def act():
            day = form.cleaned_data["resumes_on"]
            resumes_at = (
                timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) if day else None
            )
            services.subscription_pause(subscription=subscription, by=request.user, resumes_at=resumes_at)
    elif action == "resume":
        confirmation = Confirmation(
            _("Resume %(name)s") % {"name": name},
            [_("Charges start again from the next invoice. The customer is emailed.")],
            _("Resume"),
            danger=False,
        )
        act = lambda: services.subscription_resume(subscription=subscription, by=request.user)  # noqa: E731
    elif action == "card_link":
        confirmation = Confirmation(
            _("Email %(customer)s a card-update link") % {"customer": subscription.customer},
            [_("The email has a sign-in link that opens the card form directly; it works for a few days.")],
            _("Send the link"),
            danger=False,
        )
        act = lambda: services.card_update_link_send(customer=subscription.customer, by=request.user)  # noqa: E731
    else:
        raise PermissionDenied
    if request.method == "POST" and (form is None or form.is_valid()):
        if _run(request, act, _("Done: %(what)s.") % {"what": confirmation.title}):
            return redirect(back)
    return _render(request, admin_site, obj=subscription, confirmation=confirmation, form=form, back_url=back)


SUBSCRIPTION_ACTIONS = ["cancel_at_period_end", "cancel_now", "keep", "pause", "resume", "card_link"]
