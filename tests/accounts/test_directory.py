"""The customer directory: who is listed, search, pages of 24, safe links and escaped text."""

import re

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.models import Customer
from tests.factories import ListedCustomerFactory

URL = "/directory/"


def listed_names(response):
    return [person.full_name for person in response.context["page"].object_list]


def links_in(html):
    return re.findall(r'<ul class="links"[^>]*>(.*?)</ul>', html, flags=re.S)


def test_only_customers_who_opted_in_and_are_active_are_listed(client_logged_in, customer):
    ListedCustomerFactory(full_name="Ada Listed")
    ListedCustomerFactory(full_name="Bea Hidden", directory_opt_in=False)
    ListedCustomerFactory(full_name="Cy Deactivated", user__is_active=False)

    response = client_logged_in.get(URL)

    assert response.status_code == 200
    assert listed_names(response) == ["Ada Listed"]
    body = response.content.decode()
    assert "Ada Listed" in body
    assert "Bea Hidden" not in body and "Cy Deactivated" not in body
    assert customer.full_name not in listed_names(response)  # the viewer did not opt in either


def test_the_directory_is_sorted_by_name(client_logged_in):
    for name in ["Zoe Last", "Adam First", "Mia Middle"]:
        ListedCustomerFactory(full_name=name)

    assert listed_names(client_logged_in.get(URL)) == ["Adam First", "Mia Middle", "Zoe Last"]


def test_search_by_name_is_case_insensitive_and_partial(client_logged_in):
    ListedCustomerFactory(full_name="Grace Hopper")
    ListedCustomerFactory(full_name="Ada Lovelace")
    ListedCustomerFactory(full_name="Hopper Unlisted", directory_opt_in=False)

    response = client_logged_in.get(URL, {"q": "  hOPp "})

    assert listed_names(response) == ["Grace Hopper"]
    assert response.context["query"] == "hOPp"
    assert 'value="hOPp"' in response.content.decode()


def test_search_without_matches_says_so(client_logged_in):
    ListedCustomerFactory(full_name="Grace Hopper")

    response = client_logged_in.get(URL, {"q": "Nobody"})

    assert listed_names(response) == []
    assert "No one in the directory matches that name." in response.content.decode()


def test_search_text_is_escaped_and_capped(client_logged_in):
    response = client_logged_in.get(URL, {"q": '"><script>alert(1)</script>' + "x" * 500})

    body = response.content.decode()
    assert "<script>alert(1)" not in body
    assert "&quot;&gt;&lt;script&gt;" in body
    assert len(response.context["query"]) == 100


def test_the_directory_is_paginated_24_to_a_page(client_logged_in):
    assert settings.DIRECTORY_PAGE_SIZE == 24
    ListedCustomerFactory.create_batch(30)

    first = client_logged_in.get(URL)
    second = client_logged_in.get(URL, {"page": 2})

    assert len(first.context["page"].object_list) == 24
    assert len(second.context["page"].object_list) == 6
    assert set(listed_names(first)).isdisjoint(listed_names(second))
    assert "Page 1 of 2" in first.content.decode()
    assert 'rel="next" href="?page=2"' in first.content.decode()
    assert 'rel="prev" href="?page=1"' in second.content.decode()


def test_pagination_keeps_the_search(client_logged_in):
    ListedCustomerFactory.create_batch(25, full_name="Sam Same")

    response = client_logged_in.get(URL, {"q": "Sam"})

    assert 'href="?q=Sam&amp;page=2"' in response.content.decode()


def test_a_page_number_out_of_range_shows_the_last_page(client_logged_in):
    ListedCustomerFactory.create_batch(3)

    for page in ["99", "-1", "abc", "1' OR '1'='1"]:
        response = client_logged_in.get(URL, {"page": page})
        assert response.status_code == 200
        assert len(response.context["page"].object_list) == 3


def test_social_profiles_are_shown_only_as_https_links(client_logged_in):
    ListedCustomerFactory(
        full_name="Ada Links",
        x_username="ada",
        instagram_username="ada.l",
        linkedin_username="ada-lovelace",
        youtube_handle="adal",
        tiktok_username="ada_l",
        website_url="https://ada.example/",
    )

    body = client_logged_in.get(URL).content.decode()

    [links] = links_in(body)
    hrefs = re.findall(r'href="([^"]*)"', links)
    assert hrefs == [
        "https://x.com/ada",
        "https://www.instagram.com/ada.l/",
        "https://www.linkedin.com/in/ada-lovelace/",
        "https://www.youtube.com/@adal",
        "https://www.tiktok.com/@ada_l",
        "https://ada.example/",
    ]
    assert links.count('rel="nofollow noopener noreferrer ugc"') == 6


def test_websites_stored_without_https_are_not_linked(client_logged_in):
    # Rows written before validation existed, or by hand: never rendered as a link.
    ListedCustomerFactory(full_name="Old Http", website_url="http://plain.example/")
    ListedCustomerFactory(full_name="Evil Js", website_url="javascript:alert(1)")
    ListedCustomerFactory(full_name="Data Url", website_url="data:text/html,<script>alert(1)</script>")

    body = client_logged_in.get(URL).content.decode()

    assert "plain.example" not in body
    assert "javascript:" not in body
    assert "data:text/html" not in body
    assert links_in(body) == []


def test_bio_name_and_location_are_escaped(client_logged_in):
    ListedCustomerFactory(
        full_name="<img src=x onerror=alert(1)>",
        location="<b>Bold</b>",
        bio="Hi!\n<script>alert(document.cookie)</script>",
    )

    body = client_logged_in.get(URL).content.decode()

    assert "<script>alert(document.cookie)</script>" not in body
    assert "&lt;script&gt;alert(document.cookie)&lt;/script&gt;" in body
    assert "<img src=x" not in body and "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<b>Bold</b>" not in body and "&lt;b&gt;Bold&lt;/b&gt;" in body
    assert "Hi!<br>&lt;script&gt;" in body  # line breaks kept, as <br>


def test_the_directory_never_shows_email_addresses(client_logged_in):
    ListedCustomerFactory(full_name="Ada Named", user__email="ada.private@example.com", email="ada.private@example.com")

    body = client_logged_in.get(URL).content.decode()

    assert "ada.private@example.com" not in body


def test_a_listed_customer_without_a_name_is_not_identified_by_their_email(client_logged_in):
    """Opting in shares "avatar, name, bio, location and links"; the email address is not on that list."""
    ListedCustomerFactory(
        full_name="",
        user__email="john.smith.1985@example.com",
        email="john.smith.1985@example.com",
        bio="No name given",
    )

    body = client_logged_in.get(URL).content.decode()

    assert "No name given" in body
    assert "john.smith.1985" not in body


def test_the_directory_query_count_does_not_grow_with_the_number_listed(client_logged_in):
    ListedCustomerFactory(full_name="Only One", x_username="one", website_url="https://one.example/")
    client_logged_in.get(URL)  # the first page view records activity; measure steady state
    with CaptureQueriesContext(connection) as one:
        response = client_logged_in.get(URL)
    assert len(response.context["page"].object_list) == 1

    ListedCustomerFactory.create_batch(29, x_username="many", website_url="https://many.example/")
    with CaptureQueriesContext(connection) as thirty:
        response = client_logged_in.get(URL)
    assert len(response.context["page"].object_list) == 24

    assert len(thirty) == len(one), [q["sql"] for q in thirty.captured_queries]
    assert Customer.objects.filter(directory_opt_in=True).count() == 30
