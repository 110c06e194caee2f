"""'View as customer': staff see the portal as one customer does, read-only, with start and end audited."""

import pytest
from django.contrib.auth.models import Permission

from accounts.middleware import VIEW_AS_REFUSED
from accounts.models import Customer
from accounts.services import VIEW_AS_SESSION_KEY, VIEW_AS_STAFF_ACCOUNT
from portal.models import AuditEntry
from tests.factories import RecordedPurchaseFactory, UserFactory

pytestmark = pytest.mark.django_db


def start_url(customer):
    return f"/admin/accounts/customer/{customer.pk}/view-as/"


@pytest.fixture
def viewing(support_client, customer):
    """Support, viewing the portal as `customer`."""
    response = support_client.post(start_url(customer))
    assert response.status_code == 302, response
    return support_client


def test_starting_opens_the_portal_as_the_customer_and_is_audited(support_client, support_user, customer):
    response = support_client.post(start_url(customer))

    assert response["Location"] == "/"
    home = support_client.get("/")
    page = home.content.decode()
    assert home.context["user"] == customer.user
    assert f"Welcome, {customer.display_name}" in page
    assert f"You are viewing the portal as {customer}" in page
    assert "Stop viewing" in page
    assert 'href="/admin/"' not in page  # the customer's own menu, without the staff's admin link
    entry = AuditEntry.objects.get(action="view_as.started")
    assert (entry.customer, entry.actor, entry.actor_kind) == (customer, support_user, "staff")


def test_the_customers_pages_show_their_own_records(viewing, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    purchases = viewing.get("/purchases/").content.decode()
    receipt_page = viewing.get(f"/purchases/receipts/{receipt.number}/")
    contact = viewing.get("/settings/contact/")

    assert receipt.number in purchases
    assert receipt_page.status_code == 200
    assert contact.context["form"].instance == customer


def test_every_post_is_refused_while_viewing(viewing, customer, stored_row):
    before = stored_row(customer)

    response = viewing.post("/settings/contact/", {"full_name": "Changed By Staff", "country": "GB"})

    assert response.status_code == 403
    assert str(VIEW_AS_REFUSED) in response.content.decode()
    assert "no-store" in response["Cache-Control"]
    assert stored_row(customer) == before


@pytest.mark.parametrize(
    "path",
    [
        "/accounts/logout/",
        "/settings/profile/",
        "/admin/accounts/customer/add/",
        "/purchases/receipts/R-000001/correct/",
    ],
)
def test_posts_to_the_portal_and_the_admin_alike_are_refused(viewing, path):
    response = viewing.post(path, {})

    assert response.status_code == 403
    assert str(VIEW_AS_REFUSED) in response.content.decode()


def test_the_admin_stays_the_staff_members_with_a_banner(viewing, support_user, customer):
    response = viewing.get("/admin/")

    assert response.context["user"] == support_user
    assert f"You are viewing the portal as {customer}" in response.content.decode()


def test_ending_returns_to_the_contact_and_is_audited(viewing, support_user, customer):
    response = viewing.post("/view-as/end/")

    assert response["Location"] == f"/admin/accounts/customer/{customer.pk}/change/"
    assert VIEW_AS_SESSION_KEY not in viewing.session
    assert viewing.get("/").context["user"] == support_user
    ended = AuditEntry.objects.get(action="view_as.ended")
    assert (ended.customer, ended.actor) == (customer, support_user)
    assert "You stopped viewing the portal as" in [str(m) for m in response.wsgi_request._messages][0]


def test_viewing_records_no_activity_for_the_customer(viewing, customer):
    viewing.get("/")
    viewing.get("/purchases/")

    assert Customer.objects.get(pk=customer.pk).last_activity_at is None


def test_a_staff_account_cannot_be_viewed(support_client, creator):
    response = support_client.post(start_url(creator.customer))

    assert response["Location"] == f"/admin/accounts/customer/{creator.customer.pk}/change/"
    assert [str(m) for m in response.wsgi_request._messages] == [str(VIEW_AS_STAFF_ACCOUNT)]
    assert VIEW_AS_SESSION_KEY not in support_client.session
    assert not AuditEntry.objects.filter(action="view_as.started").exists()


def test_starting_needs_a_post(support_client, customer):
    assert support_client.get(start_url(customer)).status_code == 405
    assert VIEW_AS_SESSION_KEY not in support_client.session


def test_staff_without_the_permission_cannot_start(client, customer):
    staff = UserFactory(is_staff=True, password=None)
    staff.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(staff, backend="accounts.backends.PortalAuthenticationBackend")

    response = client.post(start_url(customer))

    assert response.status_code == 403
    assert VIEW_AS_SESSION_KEY not in client.session


def test_a_customer_cannot_view_as_another(client_logged_in, other_customer):
    response = client_logged_in.post(start_url(other_customer))

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert VIEW_AS_SESSION_KEY not in client_logged_in.session


def test_a_session_key_alone_does_not_let_a_customer_view_as_another(client_logged_in, customer, other_customer):
    session = client_logged_in.session
    session[VIEW_AS_SESSION_KEY] = other_customer.pk
    session.save()

    response = client_logged_in.get("/")

    assert response.context["user"] == customer.user
    assert VIEW_AS_SESSION_KEY not in client_logged_in.session


def test_a_deactivated_customer_ends_the_viewing(viewing, customer, support_user):
    customer.user.is_active = False
    customer.user.save()

    response = viewing.get("/")

    assert response.context["user"] == support_user


def test_the_contact_page_of_a_customer_shows_the_view_as_button_to_support(support_client, customer):
    page = support_client.get(f"/admin/accounts/customer/{customer.pk}/change/").content.decode()

    assert "View as customer" in page


def test_only_the_viewed_customers_receipts_open(viewing, other_customer):
    receipt = RecordedPurchaseFactory(customer=other_customer).receipts.get()

    assert viewing.get(f"/purchases/receipts/{receipt.number}/").status_code == 404


def test_an_htmx_post_is_refused_with_a_reload_that_shows_why(viewing, customer, stored_row):
    before = stored_row(customer)

    response = viewing.post("/settings/contact/", {"full_name": "Changed"}, headers={"HX-Request": "true"})

    assert response.status_code == 403
    assert response["HX-Refresh"] == "true"
    assert str(VIEW_AS_REFUSED) in [str(m) for m in viewing.get("/settings/contact/").context["messages"]]
    assert stored_row(customer) == before
