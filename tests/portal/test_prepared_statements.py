"""PostgreSQL's prepared statements are planned for the values of each run (portal.receivers): a generic
plan once nested a scan of the receipts inside each purchase of the purchases search."""

import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's (CI runs both)"),
]


def test_every_new_connection_plans_its_prepared_statements_for_the_values_of_each_run():
    from django.db import connections

    fresh = connections.create_connection("default")  # a new connection, as a worker opens one
    try:
        with fresh.cursor() as cursor:
            cursor.execute("SHOW plan_cache_mode")
            assert cursor.fetchone()[0] == "force_custom_plan"
    finally:
        fresh.close()
    assert connection.settings_dict["OPTIONS"]["prepare_threshold"] == 2


def test_the_purchases_search_keeps_its_plan_after_many_runs(client, django_assert_max_num_queries):
    from django.urls import reverse

    from tests.factories import RecordedPurchaseFactory

    purchase = RecordedPurchaseFactory()
    client.force_login(purchase.customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    url = reverse("purchases:index") + "?number=R-&year=" + str(purchase.purchased_at.year)
    for _ in range(8):  # past the five runs after which PostgreSQL may choose a generic plan
        response = client.get(url)
    assert response.status_code == 200
    with connection.cursor() as cursor:
        cursor.execute(  # a statement without parameters has only the one plan
            "SELECT statement FROM pg_prepared_statements WHERE generic_plans > 0 AND cardinality(parameter_types) > 0"
        )
        assert cursor.fetchall() == []
