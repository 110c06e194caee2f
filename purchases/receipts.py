"""Receipts on request: sent again by email, and a year's PDFs as one streamed ZIP."""

import zipfile
from collections.abc import Iterable, Iterator

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from portal.models import EmailKind
from portal.outbox import email_queue
from portal.services import audit_record

from .models import Receipt
from .pdf import receipt_filename, receipt_pdf

RECEIPT_RESEND_RATE_LIMITED = _("This receipt was sent several times just now. Please wait a few minutes.")
RECEIPT_RESENT = _("Receipt %(number)s is on its way to %(email)s.")
RECEIPT_RESEND_ALREADY = _("Receipt %(number)s was already sent for this request.")


@transaction.atomic
def receipt_resend(*, receipt: Receipt, by, click: str) -> bool:
    """Email the receipt again to its customer. `click` names one press of the button: the same press
    arriving twice (a double submit, a replayed request) sends one email. False when it was sent already."""
    key = f"receipt:{receipt.number}:resend:{click}"
    queued = email_queue(
        customer=receipt.customer,
        kind=EmailKind.RECEIPT,
        key=key,
        context={"receipt_number": receipt.number},
    )
    if queued:
        audit_record(action="receipt.resent", customer=receipt.customer, actor=by, changes={"receipt": receipt.number})
    return queued


class _Sink:
    """A write-only file for zipfile that hands its bytes over as they come (no seek: a streamed ZIP)."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def write(self, data) -> int:
        self._chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def receipts_zip_stream(
    *, receipts: Iterable[Receipt], site, folder: str = "", first_files: Iterable[tuple[str, bytes]] = ()
) -> Iterator[bytes]:
    """The receipts' PDFs (in `folder`, after `first_files`) as a ZIP, yielded file by file: one PDF in
    memory at a time, however many.

    PDFs are compressed already, so they are stored, not deflated again; other files are deflated."""
    sink = _Sink()
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED) as archive:  # type: ignore[arg-type]
        for name, data in first_files:
            archive.writestr(name, data, compress_type=zipfile.ZIP_DEFLATED)
            yield sink.take()
        for receipt in receipts:
            info = zipfile.ZipInfo(
                folder + receipt_filename(receipt), date_time=timezone.localtime(receipt.issued_at).timetuple()[:6]
            )
            archive.writestr(info, receipt_pdf(receipt=receipt, site=site))
            yield sink.take()
    yield sink.take()
