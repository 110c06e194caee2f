"""Reads from accounts: each selector owns its query shape."""

from collections.abc import Iterable

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Count, Exists, F, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from billing.models import Card, Subscription, SubscriptionStatus
from portal.models import AuditEntry
from purchases.models import AccessGrant, Purchase, PurchaseStatus

from .models import Customer, CustomField, User
from .social import SOCIAL_FIELDS


def directory_customers(*, query: str = "") -> QuerySet[Customer]:
    """Customers who opted in to the directory, by name, optionally filtered by a name search."""
    customers = Customer.objects.filter(directory_opt_in=True, user__is_active=True).only(
        "full_name", "avatar", *SOCIAL_FIELDS
    )
    if query:
        customers = customers.filter(full_name__icontains=query)
    return customers.order_by("full_name", "pk")


# --- The contacts console (Django admin) --------------------------------------------------------


def active_subscriptions_of(customer_ref) -> QuerySet:
    """Subscriptions that count as active (active or trialing, not paused) of the customer `customer_ref` names."""
    return Subscription.objects.filter(
        customer=customer_ref,
        status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING],
        paused=False,
    )


CUSTOMER_TOTALS = ("active_subscriptions", "lifetime_value", "lifetime_currency", "lifetime_currency_count")


def customers_with_totals(
    queryset: QuerySet[Customer], *, names: Iterable[str] = CUSTOMER_TOTALS
) -> QuerySet[Customer]:
    """Annotate each customer with active subscriptions and lifetime value (those of CUSTOMER_TOTALS in `names`).

    They are correlated subqueries, computed for every row the query reads: annotate a page of rows
    (filtered by a sliced subquery of ids), not a queryset that is then sliced, or the database computes
    them for every row an OFFSET skips as well. A page costs one query however long."""
    purchases = Purchase.objects.filter(customer=OuterRef("pk")).exclude(status=PurchaseStatus.CANCELLED).order_by()
    per_customer = purchases.values("customer")
    totals = {
        "active_subscriptions": lambda: Coalesce(
            Subquery(
                active_subscriptions_of(OuterRef("pk"))
                .order_by()
                .values("customer")
                .annotate(n=Count("pk"))
                .values("n")
            ),
            0,
        ),
        "lifetime_value": lambda: Coalesce(
            Subquery(per_customer.annotate(total=Sum(F("amount") - F("amount_refunded"))).values("total")), 0
        ),
        "lifetime_currency": lambda: Subquery(
            per_customer.annotate(currency_min=Min("currency")).values("currency_min")
        ),
        "lifetime_currency_count": lambda: Coalesce(
            Subquery(per_customer.annotate(n=Count("currency", distinct=True)).values("n")), 0
        ),
    }
    return queryset.annotate(**{name: totals[name]() for name in CUSTOMER_TOTALS if name in names})


def customer_lifetime_values(*, customer: Customer) -> list[tuple[str, int]]:
    """The customer's paid amounts less refunds, per currency, largest first."""
    rows = (
        Purchase.objects.filter(customer=customer)
        .exclude(status=PurchaseStatus.CANCELLED)
        .order_by()
        .values("currency")
        .annotate(total=Sum(F("amount") - F("amount_refunded")))
    )
    return sorted(((row["currency"], row["total"]) for row in rows), key=lambda pair: -pair[1])


def countries_in_use() -> list[str]:
    """The country codes customers have, for the admin's country filter (an index-only scan)."""
    return list(Customer.objects.exclude(country="").order_by("country").values_list("country", flat=True).distinct())


def custom_fields_for_contact_page() -> list[CustomField]:
    """The custom fields a customer sees on their contact page (editable or not)."""
    return list(CustomField.objects.filter(visible_to_customer=True))


def custom_fields_all() -> list[CustomField]:
    return list(CustomField.objects.all())


# --- Sign-ups nobody verified ------------------------------------------------------------------------


def unverified_signups(*, joined_before) -> QuerySet[User]:
    """Accounts made on the sign-up page whose address nobody verified by `joined_before` and that hold nothing.

    Made on the sign-up page: a password and no "customer.created" audit entry (staff, imports and the
    payment processor make accounts without a password, through accounts.services.customer_create or
    billing). Holding nothing: never signed in, not staff, and no processor customer, purchase, receipt,
    subscription, card or access grant. Such an account is only a claim on an address (anyone may make one
    with anyone's address), so it is removed after a while (manage.py remove_unverified_signups)."""
    return (
        User.objects.filter(date_joined__lt=joined_before, is_staff=False, is_superuser=False, last_login=None)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exclude(Exists(EmailAddress.objects.filter(user=OuterRef("pk"), verified=True)))
        .exclude(customer__stripe_customer_id__gt="")
        .exclude(Exists(AuditEntry.objects.filter(customer__user=OuterRef("pk"), action="customer.created")))
        .exclude(Exists(Purchase.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(Subscription.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(Card.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(AccessGrant.objects.filter(customer__user=OuterRef("pk"))))
        .order_by("pk")
    )
