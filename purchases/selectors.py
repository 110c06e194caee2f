"""Reads for the purchases pages: each costs the same number of queries for 1 or 1,000 rows."""

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from accounts.models import Customer

from .models import Product, Purchase, Receipt, Refund


def purchases_for_customer(*, customer: Customer) -> QuerySet[Purchase]:
    return (
        Purchase.objects.filter(customer=customer)
        .select_related("offer")
        .prefetch_related(
            Prefetch(
                "receipts",
                queryset=Receipt.objects.only("number", "purchase_id", "issued_at", "corrects_id").order_by(
                    "issued_at"
                ),
            )
        )
        .order_by("-purchased_at", "-pk")
    )


def products_for_customer(*, customer: Customer) -> QuerySet[Product]:
    """Products the customer can use now: an unrevoked grant to an active product."""
    return (
        Product.objects.filter(is_active=True, grants__customer=customer, grants__revoked_at__isnull=True)
        .distinct()
        .order_by("name")
    )


def receipt_for_customer(*, customer: Customer, number: str) -> Receipt:
    """The customer's receipt by number, or 404 — another customer's number is never found."""
    queryset = Receipt.objects.select_related("purchase__offer", "corrects").prefetch_related(
        Prefetch("purchase__refunds", queryset=Refund.objects.order_by("created_at")),
        Prefetch("corrections", queryset=Receipt.objects.only("number", "corrects_id", "issued_at")),
    )
    return get_object_or_404(queryset, customer=customer, number=number)
