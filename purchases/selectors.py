"""Reads for the purchases pages: each costs the same number of queries for 1 or 1,000 rows."""

from django.db.models import Prefetch, QuerySet
from django.http import Http404

from accounts.models import Customer

from .models import AccessGrant, Product, Purchase, Receipt, Refund

PURCHASES_PER_PAGE = 20


def purchases_for_customer(
    *, customer: Customer, offer_id: int | None = None, year: int | None = None, receipt_number: str = ""
) -> QuerySet[Purchase]:
    """The customer's purchases, newest first, each with what the purchases table shows (its offer's name,
    date, amounts, status) and, as `receipt_list`, its receipts (oldest first). Paginated, this is a count,
    the page's purchases and one query for their receipts.

    Narrowed, when asked, to one offer, the purchases of one year (in the active time zone), or those
    with a receipt whose number contains `receipt_number`."""
    receipts = Receipt.objects.order_by("issued_at", "pk").only("number", "purchase_id", "corrects_id")
    purchases = Purchase.objects.filter(customer=customer)
    if offer_id is not None:
        purchases = purchases.filter(offer_id=offer_id)
    if year is not None:
        purchases = purchases.filter(purchased_at__year=year)
    if receipt_number:
        # IN, not a correlated EXISTS: the same semi-join to PostgreSQL, and less for the ORM to build.
        numbered = Receipt.objects.filter(customer=customer, number__icontains=receipt_number)
        purchases = purchases.filter(pk__in=numbered.values("purchase_id"))
    return (
        purchases.select_related("offer")
        # Only the columns the table shows: a dozen fewer to compile, fetch and load on every page.
        .only("offer__name", "amount", "amount_refunded", "currency", "status", "purchased_at")
        .prefetch_related(Prefetch("receipts", queryset=receipts, to_attr="receipt_list"))
        .order_by("-purchased_at", "-pk")
    )


def purchase_facets(*, customer: Customer) -> tuple[list[tuple[int, str]], list[int]]:
    """What the customer's purchases can be searched by, in one query: the offers bought (by name) and
    the years bought in (active time zone, newest first; a year's receipts are issued with its sales)."""
    rows = (
        Purchase.objects.filter(customer=customer)
        .order_by()
        .values_list("offer_id", "offer__name", "purchased_at__year")
        .distinct()
    )
    offers: dict[int, str] = {}
    years: set[int] = set()
    for offer_id, name, year in rows:
        offers[offer_id] = name
        years.add(year)
    return sorted(offers.items(), key=lambda item: (item[1], item[0])), sorted(years, reverse=True)


def receipts_of_year(*, customer: Customer, year: int) -> QuerySet[Receipt]:
    """The customer's receipts issued in the year, oldest first, with what their PDF reads."""
    return (
        Receipt.objects.filter(customer=customer, issued_at__year=year)
        .select_related("purchase", "corrects")
        .order_by("issued_at", "pk")
    )


def products_for_customer(*, customer: Customer) -> QuerySet[Product]:
    """Products the customer can use now: an unrevoked grant to an active product."""
    # A semi-join (IN), not a join made DISTINCT: a customer has a grant per product and purchase (hundreds),
    # and sorting all of them to find the handful of products cost PostgreSQL five times as much. IN rather
    # than a correlated EXISTS: PostgreSQL plans both as the same semi-join, and IN is less for the ORM to build.
    granted = AccessGrant.objects.filter(customer=customer, revoked_at__isnull=True).values("product_id")
    return Product.objects.filter(pk__in=granted, is_active=True).order_by("name", "pk")


def receipt_for_customer(*, customer: Customer, number: str) -> Receipt:
    """The customer's receipt by number, with its purchase and the original of a corrected copy, or 404:
    another customer's number is never found."""
    try:
        return Receipt.objects.select_related("purchase", "corrects").get(customer=customer, number=number)
    except Receipt.DoesNotExist:
        raise Http404("No receipt by that number") from None


def receipt_refunds(*, receipt: Receipt) -> QuerySet[Refund]:
    """The refunds of the receipt's purchase, oldest first."""
    return Refund.objects.filter(purchase_id=receipt.purchase_id).order_by("created_at", "pk")


def receipt_corrections(*, receipt: Receipt) -> QuerySet[Receipt]:
    """The corrected copies issued of this receipt (their numbers and dates)."""
    return Receipt.objects.filter(corrects=receipt).only("number", "corrects_id", "issued_at")
