"""Per-request customer middleware: activity recorded at most once per interval, and dates in the
customer's own time zone."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.middleware import ACTIVITY_SESSION_KEY
from accounts.models import Customer
from tests.factories import CustomerFactory


def last_activity(customer):
    return Customer.objects.get(pk=customer.pk).last_activity_at


def customer_updates(ctx):
    return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('UPDATE "accounts_customer"')]


# --- activity ------------------------------------------------------------------------------


def test_a_page_view_records_activity(client_logged_in, customer):
    assert last_activity(customer) is None
    before = timezone.now()

    response = client_logged_in.get("/settings/contact/")

    assert response.status_code == 200
    assert before <= last_activity(customer) <= timezone.now()


def test_a_second_page_view_within_the_interval_writes_nothing(client_logged_in, customer):
    assert settings.ACTIVITY_INTERVAL_SECONDS == 300
    client_logged_in.get("/")
    first = last_activity(customer)

    with CaptureQueriesContext(connection) as ctx:
        response = client_logged_in.get("/settings/profile/")

    assert response.status_code == 200
    assert customer_updates(ctx) == []
    assert last_activity(customer) == first


def test_a_page_view_after_the_interval_records_activity_again(client_logged_in, customer):
    client_logged_in.get("/")
    session = client_logged_in.session
    session[ACTIVITY_SESSION_KEY] = (timezone.now() - timedelta(seconds=301)).timestamp()
    session.save()
    Customer.objects.filter(pk=customer.pk).update(last_activity_at=timezone.now() - timedelta(hours=1))

    with CaptureQueriesContext(connection) as ctx:
        client_logged_in.get("/")

    assert len(customer_updates(ctx)) == 1
    assert timezone.now() - last_activity(customer) < timedelta(minutes=1)


def test_posts_redirects_and_static_files_do_not_record_activity(client_logged_in, customer):
    client_logged_in.post("/settings/profile/", {"time_zone": "nowhere"})  # a POST
    assert client_logged_in.get("/accounts/login/").status_code == 302  # signed in already: redirected
    assert client_logged_in.get("/settings/contact").status_code == 301  # adds the slash
    assert client_logged_in.get("/settings/profile/avatar/").status_code == 405
    assert client_logged_in.get("/healthz").status_code == 200
    assert client_logged_in.get("/static/css/portal.css").status_code == 200

    assert last_activity(customer) is None


def test_anonymous_page_views_record_nothing(client, customer):
    with CaptureQueriesContext(connection) as ctx:
        client.get("/accounts/login/")

    assert customer_updates(ctx) == []
    assert last_activity(customer) is None


def test_signing_in_records_activity(client, customer, password, sign_in):
    assert last_activity(customer) is None

    sign_in(client, customer.email, password)

    assert last_activity(customer) is not None


def test_activity_is_recorded_per_customer(client_logged_in, customer, other_customer):
    client_logged_in.get("/")

    assert last_activity(customer) is not None
    assert last_activity(other_customer) is None


# --- time zone -----------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata"])
def test_pages_are_rendered_in_the_customers_time_zone(client_logged_in, customer, zone):
    Customer.objects.filter(pk=customer.pk).update(time_zone=zone)

    response = client_logged_in.get("/settings/profile/")

    assert response.context["TIME_ZONE"] == zone


def test_a_customer_without_a_time_zone_choice_sees_the_site_default(client_logged_in):
    response = client_logged_in.get("/")

    assert response.context["TIME_ZONE"] == settings.TIME_ZONE == "UTC"


def test_an_unknown_stored_time_zone_falls_back_to_the_default(client_logged_in, customer):
    Customer.objects.filter(pk=customer.pk).update(time_zone="Mars/Olympus_Mons")

    response = client_logged_in.get("/")

    assert response.status_code == 200
    assert response.context["TIME_ZONE"] == "UTC"


def test_the_time_zone_does_not_leak_into_the_next_request(client, customer, password):
    Customer.objects.filter(pk=customer.pk).update(time_zone="Europe/Berlin")
    client.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    assert client.get("/").context["TIME_ZONE"] == "Europe/Berlin"

    client.logout()
    anonymous = client.get("/accounts/login/")

    assert anonymous.context["TIME_ZONE"] == "UTC"


def test_two_customers_each_get_their_own_time_zone(client, customer):
    tokyo = CustomerFactory(time_zone="Asia/Tokyo")
    Customer.objects.filter(pk=customer.pk).update(time_zone="Europe/Berlin")
    backend = "accounts.backends.PortalAuthenticationBackend"

    client.force_login(customer.user, backend=backend)
    berlin_zone = client.get("/").context["TIME_ZONE"]
    client.force_login(tokyo.user, backend=backend)
    tokyo_zone = client.get("/").context["TIME_ZONE"]

    assert (berlin_zone, tokyo_zone) == ("Europe/Berlin", "Asia/Tokyo")
