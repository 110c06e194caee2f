"""The customer's "Your data" page: download a copy, delete the account."""

from allauth.account.decorators import reauthentication_required
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.decorators import login_required
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext_lazy

from accounts.services import customer_get_or_create
from billing.gateways.base import PaymentError
from portal.forms import AccountDeleteForm

from .data_rights import DataRightsError, customer_data_export, customer_erase

ACCOUNT_ERASED = gettext_lazy(
    "Your account was deleted. Your receipts are kept as the law requires, without your login."
)


def export_response(*, customer, by) -> StreamingHttpResponse:
    """The customer's data as a streamed ZIP download (used by the customer page and the admin)."""
    chunks = customer_data_export(customer=customer, by=by)
    language, zone = translation.get_language(), timezone.get_current_timezone()

    def stream():
        # The body is written after the view returns; the PDFs keep the reader's language and zone.
        with translation.override(language), timezone.override(zone):
            yield from chunks

    response = StreamingHttpResponse(stream(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="my-data-{timezone.localdate():%Y-%m-%d}.zip"'
    return response


@login_required
def data(request):
    customer = customer_get_or_create(user=request.user)
    form = AccountDeleteForm(user=request.user)
    return render(request, "accounts/data.html", {"customer": customer, "form": form})


@login_required
def data_export(request):
    return export_response(customer=customer_get_or_create(user=request.user), by=request.user)


def _without_password(request) -> bool:
    return not request.user.has_usable_password()


@login_required
@reauthentication_required(enabled=_without_password)  # no password to ask for: an emailed code or 2FA
def account_delete(request):
    customer = customer_get_or_create(user=request.user)
    if request.method != "POST":
        return redirect("accounts:data")
    form = AccountDeleteForm(request.POST, user=request.user)
    if form.is_valid():
        try:
            customer_erase(customer=customer, by=request.user)
        except DataRightsError as error:
            form.add_error(None, error.message)
        except PaymentError as error:
            form.add_error(None, error.user_message)
        else:
            logout(request)
            messages.success(request, ACCOUNT_ERASED)
            return redirect("account_login")
    return render(request, "accounts/data.html", {"customer": customer, "form": form}, status=400)
