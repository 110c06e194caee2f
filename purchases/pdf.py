"""Receipt PDFs with reportlab: the same content as the receipt page, one A4 page."""

import io
from functools import cache

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from .models import Receipt
from .money import format_money

FONT = "PortalVera"
FONT_BOLD = "PortalVeraBold"


@cache
def _register_fonts() -> None:
    # Vera ships with reportlab; unlike the built-in Helvetica it is not limited to Latin-1.
    pdfmetrics.registerFont(TTFont(FONT, "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(FONT_BOLD, "VeraBd.ttf"))


def receipt_filename(receipt: Receipt) -> str:
    """The download's file name, chosen by us: ASCII letters, digits and hyphens only."""
    safe_number = "".join(ch for ch in receipt.number if ch.isascii() and (ch.isalnum() or ch == "-"))
    return f"receipt-{safe_number or receipt.pk}.pdf"


def _date(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def receipt_pdf(*, receipt: Receipt, site) -> bytes:
    """Render the receipt; dates in the active (customer's) time zone, money in the active locale."""
    _register_fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(_("Receipt %(number)s") % {"number": receipt.number})
    pdf.setAuthor(site.business_name)
    width, height = A4
    left, right = 20 * mm, width - 20 * mm
    y = height - 22 * mm

    if site.logo:
        try:
            with site.logo.open("rb") as handle:
                pdf.drawImage(
                    ImageReader(io.BytesIO(handle.read())),
                    right - 40 * mm,
                    y - 12 * mm,
                    width=40 * mm,
                    height=16 * mm,
                    preserveAspectRatio=True,
                    anchor="ne",
                    mask="auto",
                )
        except OSError:
            pass  # a missing logo file must not stop the receipt
    pdf.setFont(FONT_BOLD, 16)
    pdf.drawString(left, y, site.business_name)
    pdf.setFont(FONT, 9)
    for line in [*site.business_address.splitlines(), site.business_tax_id and _("Tax ID: %s") % site.business_tax_id]:
        if line:
            y -= 4.5 * mm
            pdf.drawString(left, y, line)

    y -= 14 * mm
    pdf.setFont(FONT_BOLD, 13)
    title = _("Receipt %(number)s") % {"number": receipt.number}
    pdf.drawString(left, y, title)
    pdf.setFont(FONT, 9)
    y -= 5.5 * mm
    pdf.drawString(left, y, _("Issued %(date)s") % {"date": _date(receipt.issued_at)})
    if receipt.corrects_id:
        y -= 4.5 * mm
        pdf.drawString(left, y, _("Corrected copy of receipt %(number)s") % {"number": receipt.corrects.number})

    y -= 10 * mm
    pdf.setFont(FONT_BOLD, 10)
    pdf.drawString(left, y, _("Billed to"))
    pdf.setFont(FONT, 10)
    billed = [receipt.billing_name, receipt.billing_email, *receipt.billing_address_lines]
    if receipt.billing_tax_id:
        billed.append(_("Tax ID: %s") % receipt.billing_tax_id)
    for line in billed:
        if line:
            y -= 5 * mm
            pdf.drawString(left, y, line[:90])

    y -= 12 * mm
    pdf.setFont(FONT_BOLD, 10)
    pdf.drawString(left, y, _("Description"))
    pdf.drawRightString(right - 45 * mm, y, _("Qty"))
    pdf.drawRightString(right, y, _("Amount"))
    pdf.line(left, y - 2 * mm, right, y - 2 * mm)
    pdf.setFont(FONT, 10)
    for line in receipt.lines:
        y -= 7 * mm
        pdf.drawString(left, y, str(line["description"])[:70])
        pdf.drawRightString(right - 45 * mm, y, str(line.get("quantity", 1)))
        pdf.drawRightString(right, y, format_money(line["amount"], receipt.currency))
    pdf.line(left, y - 3 * mm, right, y - 3 * mm)

    totals = [(_("Subtotal"), receipt.subtotal)]
    if receipt.tax_amount:
        totals.append((_("Tax (%(rate)s%%, included)") % {"rate": receipt.tax_rate_display}, receipt.tax_amount))
    totals.append((_("Total"), receipt.total))
    for refund in receipt.purchase.refunds.all():
        totals.append((_("Refunded %(date)s") % {"date": _date(refund.created_at)}, -refund.amount))
    y -= 4 * mm
    for label, amount in totals:
        y -= 6 * mm
        pdf.setFont(FONT_BOLD if label == _("Total") else FONT, 10)
        pdf.drawRightString(right - 45 * mm, y, label)
        pdf.drawRightString(right, y, format_money(amount, receipt.currency))

    pdf.setFont(FONT, 8)
    pdf.drawString(left, 15 * mm, _("Thank you for your purchase. %(business)s") % {"business": site.business_name})
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()
