"""Reads for the purchases pages: each costs the same number of queries for 1 or 1,000 rows."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from functools import lru_cache

from django.db.models import Count, Exists, OuterRef
from django.http import Http404
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.encoding import force_str
from django.utils.translation import get_language

from accounts.models import Customer
from portal.compiled import CompiledQuery

from .models import AccessGrant, Product, Purchase, Receipt, Refund
from .money import format_money

# The purchases page's reads have one shape whatever the customer or page, so each is compiled once
# (portal/compiled.py): compiling them cost more than running them.
PURCHASES_PER_PAGE = 20
_purchases_count = CompiledQuery(
    lambda customer_id: (
        Purchase.objects.filter(customer_id=customer_id)
        .order_by()
        .values("customer_id")
        .annotate(count=Count("pk"))
        .values_list("count", flat=True)
    ),
    customer_id=int,
)
_purchases_slice = CompiledQuery(
    lambda customer_id: (
        Purchase.objects.filter(customer_id=customer_id).select_related("offer").order_by("-purchased_at", "-pk")
    ),
    sliced=True,
    customer_id=int,
)
_receipts_of_purchases = CompiledQuery(
    lambda purchase_ids: (
        Receipt.objects.filter(purchase_id__in=purchase_ids)
        .order_by("issued_at", "pk")
        .values_list("purchase_id", "number", "corrects_id")
    ),
    purchase_ids=(int, PURCHASES_PER_PAGE),
)
# EXISTS, not a join made DISTINCT: a customer has a grant per product and purchase (hundreds), and the
# join sorted all of them to find the handful of products.
_products_granted = CompiledQuery(
    lambda customer_id: Product.objects.filter(
        Exists(AccessGrant.objects.filter(product=OuterRef("pk"), customer_id=customer_id, revoked_at__isnull=True)),
        is_active=True,
    ).order_by("name", "pk"),
    customer_id=int,
)


class CustomerPurchases:
    """A customer's purchases with their offers, newest first, as a Paginator reads them: a count and a slice."""

    def __init__(self, *, customer: Customer):
        self.customer_id = customer.pk

    def count(self) -> int:
        counted = _purchases_count(customer_id=self.customer_id)
        return counted[0] if counted else 0

    def __getitem__(self, window: slice) -> list[Purchase]:
        start = window.start or 0
        return _purchases_slice(customer_id=self.customer_id, offset=start, limit=window.stop - start)


def purchases_for_customer(*, customer: Customer) -> CustomerPurchases:
    """The customer's purchases with their offers, newest first; purchase_rows() adds their receipts."""
    return CustomerPurchases(customer=customer)


def purchase_rows(*, purchases: Iterable[Purchase]) -> list[dict]:
    """The purchases page's table rows, with their receipts (one query a page): each purchase's strings made
    here, in the active language and time zone, for purchases.markup to place (a row took 0.5 ms of
    template filters, tags and lookups)."""
    purchases = list(purchases)
    receipts = defaultdict(list)
    receipt_url = _receipt_url_maker()
    for start in range(0, len(purchases), PURCHASES_PER_PAGE):
        batch = [purchase.pk for purchase in purchases[start : start + PURCHASES_PER_PAGE]]
        for purchase_id, number, corrects_id in _receipts_of_purchases(purchase_ids=batch):
            receipts[purchase_id].append(
                {"url": receipt_url(number), "number": number, "is_correction": corrects_id is not None}
            )
    # As Purchase.get_status_display() says it, without hashing every translated label for each row.
    status_labels = dict(Purchase._meta.get_field("status").flatchoices)
    rows = []
    for purchase in purchases:
        purchased_at = timezone.localtime(purchase.purchased_at)
        rows.append(
            {
                "offer_name": purchase.offer.name,
                "date_iso": purchased_at.isoformat(),  # what |date:"c" gives
                "date": _day_format(purchased_at.date(), get_language()),
                "amount": format_money(purchase.amount, purchase.currency) if purchase.currency else "",
                "refunded": format_money(purchase.amount_refunded, purchase.currency)
                if purchase.amount_refunded and purchase.currency
                else "",
                "status": purchase.status,
                "status_display": force_str(status_labels.get(purchase.status, purchase.status), strings_only=True),
                "receipts": receipts[purchase.pk],
            }
        )
    return rows


def _receipt_url_maker():
    """A function giving a receipt page's address from its number: reversed once, not once per receipt.

    Receipt numbers are letters, digits and hyphens (the URL's converter and the prefix's validator), which
    an address carries as they are."""
    marker = "0"
    before, after = reverse("purchases:receipt", kwargs={"number": marker}).rsplit(marker, 1)
    return lambda number: f"{before}{number}{after}"


@lru_cache(maxsize=1024)
def _day_format(day: date, language: str) -> str:
    # A page shows a few dates many times; DATE_FORMAT names the day only, so the day and language decide it.
    return formats.date_format(day, "DATE_FORMAT")


def products_for_customer(*, customer: Customer) -> list[Product]:
    """Products the customer can use now: an unrevoked grant to an active product."""
    return _products_granted(customer_id=customer.pk)


# The receipt page's and PDF's reads, compiled once (portal/compiled.py). The receipt comes with its purchase
# (for its refunds; its offer is not shown) and the original of a corrected copy (for its number).
_receipt_of_customer = CompiledQuery(
    lambda customer_id, number: Receipt.objects.select_related("purchase", "corrects").filter(
        customer_id=customer_id, number=number
    ),
    customer_id=int,
    number=str,
)
_refunds_of_purchase = CompiledQuery(
    lambda purchase_id: Refund.objects.filter(purchase_id=purchase_id).order_by("created_at", "pk"), purchase_id=int
)
_corrections_of_receipt = CompiledQuery(
    lambda receipt_id: Receipt.objects.filter(corrects_id=receipt_id).only("number", "corrects_id", "issued_at"),
    receipt_id=int,
)


def receipt_for_customer(*, customer: Customer, number: str) -> Receipt:
    """The customer's receipt by number, or 404 — another customer's number is never found."""
    found = _receipt_of_customer(customer_id=customer.pk, number=number)
    if not found:
        raise Http404("No receipt by that number")
    return found[0]


def receipt_refunds(*, receipt: Receipt) -> list[Refund]:
    """The refunds of the receipt's purchase, oldest first."""
    return _refunds_of_purchase(purchase_id=receipt.purchase_id)


def receipt_corrections(*, receipt: Receipt) -> list[Receipt]:
    """The corrected copies issued of this receipt (their numbers and dates)."""
    return _corrections_of_receipt(receipt_id=receipt.pk)
