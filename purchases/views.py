import uuid

from allauth.core import ratelimit
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.services import customer_get_or_create
from portal.selectors import site_settings_get

from . import selectors
from .forms import PurchaseFilterForm
from .pdf import receipt_filename
from .pdf import receipt_pdf as render_receipt_pdf
from .receipts import (
    RECEIPT_RESEND_ALREADY,
    RECEIPT_RESEND_RATE_LIMITED,
    RECEIPT_RESENT,
    receipt_resend,
    receipts_zip_stream,
)
from .services import PurchaseError, receipt_issue_correction


@login_required
def index(request):
    customer = customer_get_or_create(user=request.user)
    offers, years = selectors.purchase_facets(customer=customer)
    form = PurchaseFilterForm(request.GET, offers=offers, years=years)
    filters = form.filters
    page = Paginator(
        selectors.purchases_for_customer(customer=customer, **filters), selectors.PURCHASES_PER_PAGE
    ).get_page(request.GET.get("page"))
    return render(
        request,
        "purchases/index.html",
        {
            "page": page,
            "filter_form": form,
            "filtered": any(filters.values()),
            "years": years,
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
            # One press of "Email me this receipt": the same press arriving twice sends one email.
            "resend_click": uuid.uuid4().hex,
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
def receipt_resend_view(request, number):
    customer = customer_get_or_create(user=request.user)
    receipt = selectors.receipt_for_customer(customer=customer, number=number)
    click = request.POST.get("click", "")
    if len(click) != 32 or not all(ch in "0123456789abcdef" for ch in click):
        click = uuid.uuid4().hex  # an old form without one: this press is its own
    if not ratelimit.consume(request, action="resend_receipt", key=receipt.number):
        messages.error(request, RECEIPT_RESEND_RATE_LIMITED)
    elif receipt_resend(receipt=receipt, by=request.user, click=click):
        messages.success(request, RECEIPT_RESENT % {"number": receipt.number, "email": request.user.email})
    else:
        messages.info(request, RECEIPT_RESEND_ALREADY % {"number": receipt.number})
    return redirect(receipt)


@login_required
def receipts_year_zip(request, year):
    customer = customer_get_or_create(user=request.user)
    receipts = selectors.receipts_of_year(customer=customer, year=year)
    if not receipts.exists():
        raise Http404("No receipts that year")
    site = site_settings_get()
    language, zone = translation.get_language(), timezone.get_current_timezone()

    def stream():
        # The body is written after the view returns; the PDFs keep the customer's language and zone.
        with translation.override(language), timezone.override(zone):
            yield from receipts_zip_stream(receipts=receipts.iterator(chunk_size=50), site=site)

    response = StreamingHttpResponse(stream(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="receipts-{year}.zip"'
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
