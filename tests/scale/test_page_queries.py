"""The query budget of every customer page: at most eight queries a request, and the same number for a
customer who owns one purchase, receipt, card and subscription as for one who owns pages of them.

The load benchmark (bench/run.py, docs/benchmarks.md) reports the same counts under gunicorn; this is
what holds them in place.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from billing.services import card_set_default, stripe_customer_ensure, subscription_sync
from purchases.services import refund_record
from tests.billing import conftest as billing_fixtures
from tests.factories import CustomerFactory, OfferFactory, ProductFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

gateway = billing_fixtures.gateway  # the fake gateway fixture of tests/billing

QUERY_BUDGET = 8
CUSTOMER_PAGES = [
    "/",
    "/settings/contact/",
    "/settings/profile/",
    "/settings/social/",
    "/settings/password/",
    "/billing/",
    "/purchases/",
    "/purchases/receipts/{receipt}/",
    "/purchases/receipts/{receipt}/pdf/",
    "/directory/",
]
FEW = {"purchases": 1, "refunds": 0, "cards": 1, "subscriptions": 1}
MANY = {"purchases": 25, "refunds": 3, "cards": 4, "subscriptions": 3}  # more purchases than one page shows


def _customer_owning(fake, *, purchases, refunds, cards, subscriptions):
    """A customer with this many purchases (receipts, access grants), refunds on the first, cards and
    live subscriptions, all made through the services."""
    customer = CustomerFactory()
    offers = [OfferFactory(products=[ProductFactory(), ProductFactory()]) for _ in range(2)]
    subscription_offer = OfferFactory(kind="subscription", interval="month", stripe_price_id="price_budget")
    first = None
    for n in range(purchases):
        purchase = RecordedPurchaseFactory(customer=customer, offer=offers[n % 2])
        first = first or purchase
    for _ in range(refunds):
        refund_record(purchase=first, amount=100)
    stripe_customer_ensure(customer=customer)
    for n in range(cards):
        card_set_default(customer=customer, payment_method_id=f"pm_budget_{customer.pk}_{n}", by=None)
    for n in range(subscriptions):
        subscription_sync(
            remote=fake.subscription_create(
                customer_id=customer.stripe_customer_id,
                amount=subscription_offer.price_amount + n,
                price_id=subscription_offer.stripe_price_id,
            )
        )
    return customer, first.receipts.get().number


def _queries(client, url) -> int:
    client.get(url)  # the first view of a session also records activity, a write made once per interval
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries.captured_queries)


@pytest.mark.parametrize("page", CUSTOMER_PAGES)
def test_a_customer_page_costs_at_most_eight_queries_whatever_the_customer_owns(client, gateway, page):
    counts = []
    for owned in (FEW, MANY):
        customer, receipt = _customer_owning(gateway, **owned)
        client.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
        counts.append(_queries(client, page.format(receipt=receipt)))

    assert counts[0] == counts[1], f"{page}: {counts[0]} queries with few purchases and cards, {counts[1]} with many"
    assert counts[1] <= QUERY_BUDGET, f"{page}: {counts[1]} queries, the budget is {QUERY_BUDGET}"


@pytest.mark.parametrize("path", ["/bench/hello/", "/bench/me/"])
def test_the_benchmark_anchors_are_not_served_unless_switched_on(client, path):
    assert client.get(path).status_code == 404


@pytest.mark.urls("portal.bench_views")
def test_the_signed_in_anchor_costs_two_queries_and_hello_none(client_logged_in, customer):
    with CaptureQueriesContext(connection) as anonymous:
        assert Client().get("/hello/").content == b"hello\n"

    assert len(anonymous.captured_queries) == 0
    assert _queries(client_logged_in, "/me/") == 2  # the session, the user with their customer
    assert customer.user.email in client_logged_in.get("/me/").content.decode()
