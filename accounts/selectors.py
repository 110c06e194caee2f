"""Reads from accounts: each selector owns its query shape."""

from django.db.models import QuerySet

from .models import Customer
from .social import SOCIAL_FIELDS


def directory_customers(*, query: str = "") -> QuerySet[Customer]:
    """Customers who opted in to the directory, by name, optionally filtered by a name search."""
    customers = Customer.objects.filter(directory_opt_in=True, user__is_active=True).only(
        "full_name", "avatar", *SOCIAL_FIELDS
    )
    if query:
        customers = customers.filter(full_name__icontains=query)
    return customers.order_by("full_name", "pk")
