"""Staff in admin act on a customer's data rights: download the copy, erase the account (after a
confirmation page). The same services as the customer's own page; both audited with the staff member."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.models import Customer
from billing.gateways.base import PaymentError
from console.data_rights import DataRightsError, customer_erase
from console.data_rights_views import export_response

EXPORT_PERMISSION = "accounts.view_customer"
ERASE_PERMISSION = "accounts.delete_customer"


def _customer(request, pk, permission) -> Customer:
    if not request.user.has_perm(permission):
        raise PermissionDenied
    return get_object_or_404(Customer.objects.select_related("user"), pk=pk)


def data_export_view(request, pk, *, admin_site):
    return export_response(customer=_customer(request, pk, EXPORT_PERMISSION), by=request.user)


def erase_view(request, pk, *, admin_site):
    from console.staff import Confirmation  # the console's one confirmation page

    customer = _customer(request, pk, ERASE_PERMISSION)
    back = reverse("admin:accounts_customer_change", args=[pk])
    if request.method == "POST":
        try:
            customer_erase(customer=customer, by=request.user)
        except DataRightsError as error:
            messages.error(request, error.message)
        except PaymentError as error:
            messages.error(request, error.user_message)
        else:
            messages.success(request, _("The account was erased; its receipts are kept."))
        return redirect(back)
    confirmation = Confirmation(
        title=_("Erase the account of %(customer)s") % {"customer": customer},
        consequences=[
            _("The login, contact details, profile, avatar, cards and sessions are erased; the person is signed out."),
            _("The customer at Stripe is deleted, which ends their subscriptions now."),
            _("Receipts are kept with the billing details they show, as tax law requires; purchases stay."),
            _("This cannot be undone."),
        ],
        button=_("Erase account"),
    )
    context = {
        **admin_site.each_context(request),
        "title": confirmation.title,
        "object": customer,
        "confirmation": confirmation,
        "back_url": back,
    }
    return TemplateResponse(request, "admin/portal/confirm_action.html", context)
