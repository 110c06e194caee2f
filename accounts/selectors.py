"""Reads from accounts: each selector owns its query shape."""

from django.db.models import QuerySet

from .models import Customer, CustomField
from .social import SOCIAL_FIELDS


def directory_customers(*, query: str = "") -> QuerySet[Customer]:
    """Customers who opted in to the directory, by name, optionally filtered by a name search."""
    customers = Customer.objects.filter(directory_opt_in=True, user__is_active=True).only(
        "full_name", "avatar", *SOCIAL_FIELDS
    )
    if query:
        customers = customers.filter(full_name__icontains=query)
    return customers.order_by("full_name", "pk")


def countries_in_use() -> list[str]:
    """The country codes customers have, for the admin's country filter (an index-only scan)."""
    return list(Customer.objects.exclude(country="").order_by("country").values_list("country", flat=True).distinct())


def custom_fields_for_contact_page() -> list[CustomField]:
    """The custom fields a customer sees on their contact page (editable or not)."""
    return list(CustomField.objects.filter(visible_to_customer=True))


def custom_fields_all() -> list[CustomField]:
    return list(CustomField.objects.all())
