from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.services import customer_get_or_create
from portal.selectors import site_settings_get

from . import selectors
from .pdf import receipt_filename
from .pdf import receipt_pdf as render_receipt_pdf
from .services import PurchaseError, receipt_issue_correction


@login_required
def index(request):
    customer = customer_get_or_create(user=request.user)
    page = Paginator(selectors.purchases_for_customer(customer=customer), selectors.PURCHASES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "purchases/index.html",
        {
            "page": page,
            "products": selectors.products_for_customer(customer=customer),
        },
    )


@login_required
def receipt(request, number):
    customer = customer_get_or_create(user=request.user)
    receipt = selectors.receipt_for_customer(customer=customer, number=number)
    return render(
        request,
        "purchases/receipt.html",
        {
            "receipt": receipt,
            "refunds": selectors.receipt_refunds(receipt=receipt),
            "corrections": selectors.receipt_corrections(receipt=receipt),
        },
    )


@login_required
def receipt_pdf(request, number):
    customer = customer_get_or_create(user=request.user)
    receipt = selectors.receipt_for_customer(customer=customer, number=number)
    response = HttpResponse(
        render_receipt_pdf(receipt=receipt, site=site_settings_get()), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="{receipt_filename(receipt)}"'
    return response


@login_required
@require_POST
def receipt_correct(request, number):
    customer = customer_get_or_create(user=request.user)
    original = selectors.receipt_for_customer(customer=customer, number=number)
    try:
        correction = receipt_issue_correction(receipt=original, by=request.user)
    except PurchaseError as error:
        messages.error(request, error.message)
        return redirect(original)
    messages.success(
        request, _("Corrected copy %(number)s issued with your current details.") % {"number": correction.number}
    )
    return redirect(correction)
