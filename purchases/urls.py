from django.urls import path, register_converter

from . import views


class ReceiptNumberConverter:
    """A receipt number as we issue them: PREFIX-000001, the prefix letters, digits and hyphens."""

    regex = "[A-Za-z0-9-]{1,40}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return value


register_converter(ReceiptNumberConverter, "receipt_number")

app_name = "purchases"

urlpatterns = [
    path("", views.index, name="index"),
    path("receipts/<receipt_number:number>/", views.receipt, name="receipt"),
    path("receipts/<receipt_number:number>/pdf/", views.receipt_pdf, name="receipt_pdf"),
    path("receipts/<receipt_number:number>/correct/", views.receipt_correct, name="receipt_correct"),
    path("receipts/<receipt_number:number>/resend/", views.receipt_resend_view, name="receipt_resend"),
    path("receipts/<int:year>.zip", views.receipts_year_zip, name="receipts_year_zip"),
]
