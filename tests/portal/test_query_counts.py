"""Exact query counts of the main pages, so that growth (an N+1, a lost select_related) is caught.

Measured in steady state: the first page view of a session also records activity, which is
tested in tests/accounts/test_middleware.py. Every signed-in page reads the session, the user
with its customer (one query, see accounts.backends) and the site settings.
"""

import pytest

from tests.factories import ListedCustomerFactory

PAGE_QUERIES = {
    "/": 3,
    "/settings/contact/": 4,  # and the custom fields shown to customers
    "/settings/profile/": 3,
    "/settings/social/": 3,
    "/settings/password/": 3,
}


@pytest.fixture
def warm_client(client_logged_in):
    client_logged_in.get("/")  # records activity and creates the site settings row
    return client_logged_in


@pytest.mark.parametrize(("url", "queries"), PAGE_QUERIES.items(), ids=PAGE_QUERIES.keys())
def test_page_query_count(warm_client, django_assert_num_queries, url, queries):
    with django_assert_num_queries(queries):
        response = warm_client.get(url)

    assert response.status_code == 200


def test_empty_directory_query_count(warm_client, django_assert_num_queries):
    # session, user + customer, COUNT of listed customers, site settings
    with django_assert_num_queries(4):
        response = warm_client.get("/directory/")

    assert response.status_code == 200


@pytest.mark.parametrize("listed", [1, 30])
def test_directory_query_count_is_the_same_for_1_and_30_listed(warm_client, django_assert_num_queries, listed):
    # session, user + customer, COUNT, one page of customers, site settings
    ListedCustomerFactory.create_batch(
        listed, x_username="someone", website_url="https://example.com/", avatar="avatars/" + "0" * 32 + ".webp"
    )

    with django_assert_num_queries(5):
        response = warm_client.get("/directory/")

    assert len(response.context["page"].object_list) == min(listed, 24)
