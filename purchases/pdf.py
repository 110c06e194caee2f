"""Receipt PDFs with reportlab: the same content as the receipt page, one A4 page."""

import io
from dataclasses import dataclass
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
from .selectors import receipt_refunds

# Helvetica is one of the fonts every PDF reader has, so a receipt written in it embeds no font (a tenth
# of the size and a quarter of the time of embedding one). It covers Windows-1252 (Western European
# letters, €, typographic quotes); a receipt with any other character (Ł, ř, Greek …) is written in Vera,
# which ships with reportlab and is embedded as a subset of the characters used.
STANDARD_FONTS = {"regular": "Helvetica", "bold": "Helvetica-Bold"}
STANDARD_FONTS_ENCODING = "cp1252"
EMBEDDED_FONTS = {"regular": "PortalVera", "bold": "PortalVeraBold"}


@cache
def _register_embedded_fonts() -> None:
    pdfmetrics.registerFont(TTFont(EMBEDDED_FONTS["regular"], "Vera.ttf"))
    pdfmetrics.registerFont(TTFont(EMBEDDED_FONTS["bold"], "VeraBd.ttf"))


@dataclass(frozen=True)
class _Text:
    x: float
    y: float
    text: str
    size: float
    bold: bool = False
    align_right: bool = False


def _fonts_for(texts: list[_Text]) -> dict[str, str]:
    """The standard fonts when they can write every text, else the embedded ones."""
    try:
        for item in texts:
            item.text.encode(STANDARD_FONTS_ENCODING)
    except UnicodeEncodeError:
        _register_embedded_fonts()
        return EMBEDDED_FONTS
    return STANDARD_FONTS


def receipt_filename(receipt: Receipt) -> str:
    """The download's file name, chosen by us: ASCII letters, digits and hyphens only."""
    safe_number = "".join(ch for ch in receipt.number if ch.isascii() and (ch.isalnum() or ch == "-"))
    return f"receipt-{safe_number or receipt.pk}.pdf"


def _date(value) -> str:
    return formats.date_format(timezone.localtime(value), "DATE_FORMAT")


def receipt_pdf(*, receipt: Receipt, site) -> bytes:
    """Render the receipt; dates in the active (customer's) time zone, money in the active locale."""
    width, height = A4
    left, right = 20 * mm, width - 20 * mm
    top = height - 22 * mm
    texts, rules = _layout(receipt=receipt, site=site, left=left, right=right, top=top)
    fonts = _fonts_for(texts)

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(_("Receipt %(number)s") % {"number": receipt.number})
    pdf.setAuthor(site.business_name)
    if site.logo:
        try:
            with site.logo.open("rb") as handle:
                pdf.drawImage(
                    ImageReader(io.BytesIO(handle.read())),
                    right - 40 * mm,
                    top - 12 * mm,
                    width=40 * mm,
                    height=16 * mm,
                    preserveAspectRatio=True,
                    anchor="ne",
                    mask="auto",
                )
        except OSError:
            pass  # a missing logo file must not stop the receipt
    for item in texts:
        pdf.setFont(fonts["bold" if item.bold else "regular"], item.size)
        (pdf.drawRightString if item.align_right else pdf.drawString)(item.x, item.y, item.text)
    for y in rules:
        pdf.line(left, y, right, y)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _layout(*, receipt: Receipt, site, left: float, right: float, top: float) -> tuple[list[_Text], list[float]]:
    """What the receipt says and where: its texts, and the heights of its horizontal rules."""
    texts: list[_Text] = []
    rules: list[float] = []
    y = top
    texts.append(_Text(left, y, site.business_name, 16, bold=True))
    for line in [*site.business_address.splitlines(), site.business_tax_id and _("Tax ID: %s") % site.business_tax_id]:
        if line:
            y -= 4.5 * mm
            texts.append(_Text(left, y, line, 9))

    y -= 14 * mm
    texts.append(_Text(left, y, _("Receipt %(number)s") % {"number": receipt.number}, 13, bold=True))
    y -= 5.5 * mm
    texts.append(_Text(left, y, _("Issued %(date)s") % {"date": _date(receipt.issued_at)}, 9))
    if receipt.corrects_id:
        y -= 4.5 * mm
        texts.append(_Text(left, y, _("Corrected copy of receipt %(number)s") % {"number": receipt.corrects.number}, 9))

    y -= 10 * mm
    texts.append(_Text(left, y, _("Billed to"), 10, bold=True))
    billed = [receipt.billing_name, receipt.billing_email, *receipt.billing_address_lines]
    if receipt.billing_tax_id:
        billed.append(_("Tax ID: %s") % receipt.billing_tax_id)
    for line in billed:
        if line:
            y -= 5 * mm
            texts.append(_Text(left, y, line[:90], 10))

    y -= 12 * mm
    texts.append(_Text(left, y, _("Description"), 10, bold=True))
    texts.append(_Text(right - 45 * mm, y, _("Qty"), 10, bold=True, align_right=True))
    texts.append(_Text(right, y, _("Amount"), 10, bold=True, align_right=True))
    rules.append(y - 2 * mm)
    for line in receipt.lines:
        y -= 7 * mm
        texts.append(_Text(left, y, str(line["description"])[:70], 10))
        texts.append(_Text(right - 45 * mm, y, str(line.get("quantity", 1)), 10, align_right=True))
        texts.append(_Text(right, y, format_money(line["amount"], receipt.currency), 10, align_right=True))
    rules.append(y - 3 * mm)

    totals = [(_("Subtotal"), receipt.subtotal, False)]
    if receipt.tax_amount:
        label = _("Tax (%(rate)s%%, included)") % {"rate": receipt.tax_rate_display}
        totals.append((label, receipt.tax_amount, False))
    totals.append((_("Total"), receipt.total, True))
    for refund in receipt_refunds(receipt=receipt):
        if refund.status == "pending":
            label = _("Refund on its way (started %(date)s)") % {"date": _date(refund.created_at)}
        elif refund.status == "succeeded":
            label = _("Refunded %(date)s") % {"date": _date(refund.created_at)}
        else:
            continue  # a refund that did not go through returned nothing
        totals.append((label, -refund.amount, False))
    if receipt.purchase.amount_refunded:
        totals.append((_("Net after refunds"), receipt.net_total, True))
    y -= 4 * mm
    for label, amount, bold in totals:
        y -= 6 * mm
        texts.append(_Text(right - 45 * mm, y, label, 10, bold=bold, align_right=True))
        texts.append(_Text(right, y, format_money(amount, receipt.currency), 10, bold=bold, align_right=True))

    y -= 10 * mm
    method = receipt.purchase.payment_method_display
    paid = _("Paid with %(method)s") % {"method": method} if method else _("Paid")
    texts.append(_Text(left, y, paid, 10, bold=True))

    thanks = _("Thank you for your purchase. %(business)s") % {"business": site.business_name}
    texts.append(_Text(left, 15 * mm, thanks, 8))
    return texts, rules
