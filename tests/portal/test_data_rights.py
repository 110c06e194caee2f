"""A customer's data rights: a copy of their data, and erasure that keeps the receipts tax law requires."""

import io
import json
import zipfile

import pytest
from allauth.account.models import EmailAddress
from allauth.usersessions.models import UserSession
from django.contrib.auth import get_user_model

from accounts.models import Customer
from billing.gateways.fake import FakeGateway
from billing.models import Card
from console.data_rights import ALREADY_ERASED, STAFF_NOT_ERASED, DataRightsError, customer_erase, erased_email
from portal.models import AuditEntry
from purchases.models import Receipt
from tests.factories import DEFAULT_PASSWORD, OfferFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway(settings):
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()


@pytest.fixture
def paying_customer(customer, gateway):
    """A customer at the (fake) processor with a default card and one recorded purchase."""
    from billing.services import card_set_default, stripe_customer_ensure

    stripe_customer_ensure(customer=customer)
    card_set_default(customer=customer, payment_method_id="pm_first", by=None)
    RecordedPurchaseFactory(customer=customer, offer=OfferFactory(name="Glazing course"))
    customer.refresh_from_db()
    return customer


def unzip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


# --- the copy -------------------------------------------------------------------------------------


def test_the_data_page_offers_the_download_and_the_deletion(client_logged_in):
    html = client_logged_in.get("/settings/data/").content.decode()

    assert 'href="/settings/data/export/"' in html
    assert 'action="/settings/data/delete/"' in html and 'name="password"' in html


def test_a_customer_downloads_their_data_as_json_with_their_receipts(client_logged_in, customer):
    RecordedPurchaseFactory(
        customer=customer, offer=OfferFactory(name="Glazing course"), card_brand="visa", card_last4="4242"
    )
    client_logged_in.post("/settings/contact/", {"full_name": "Ada Lovelace", "country": "GB", "time_zone": "UTC"})
    RecordedPurchaseFactory(offer=OfferFactory(name="Someone else's"))

    response = client_logged_in.get("/settings/data/export/")

    archive = unzip(response)
    assert response["Content-Type"] == "application/zip"
    assert archive.namelist() == ["data.json", "receipts/receipt-R-000001.pdf"]
    data = json.loads(archive.read("data.json"))
    assert data["contact"]["email"] == customer.user.email
    assert set(data) >= {
        "contact",
        "profile",
        "preferences",
        "purchases",
        "receipts",
        "activity",
        "subscriptions",
        "cards",
    }
    assert data["receipts"] == ["R-000001"]
    [purchase] = data["purchases"]
    assert purchase["offer"] == "Glazing course" and purchase["paid_with"] == "Visa •••• 4242"
    assert purchase["receipts"] == ["R-000001"]
    assert "Someone else's" not in archive.read("data.json").decode()
    assert archive.read("receipts/receipt-R-000001.pdf").startswith(b"%PDF-")
    assert AuditEntry.objects.filter(action="account.data_exported", customer=customer, actor=customer.user).exists()


def test_the_copy_lists_the_customers_own_actions_not_staffs(client_logged_in, customer, support_user):
    from portal.services import audit_record

    audit_record(action="contact.updated", customer=customer, actor=customer.user, changes={"city": ["A", "B"]})
    audit_record(action="access.revoked", customer=customer, actor=support_user, changes={"reason": "internal note"})

    data = json.loads(unzip(client_logged_in.get("/settings/data/export/")).read("data.json"))

    actions = [entry["action"] for entry in data["activity"]]
    assert "contact.updated" in actions and "access.revoked" not in actions


# --- erasure --------------------------------------------------------------------------------------


def test_deleting_the_account_asks_for_the_password(client_logged_in, customer):
    response = client_logged_in.post("/settings/data/delete/", {"password": "wrong", "confirm": "on"})

    assert response.status_code == 400
    assert "That is not your password." in response.content.decode()
    customer.user.refresh_from_db()
    assert customer.user.is_active


def test_deleting_the_account_needs_the_confirmation_ticked(client_logged_in, customer):
    response = client_logged_in.post("/settings/data/delete/", {"password": DEFAULT_PASSWORD})

    assert response.status_code == 400
    assert Customer.objects.get(pk=customer.pk).full_name


def test_a_customer_deletes_their_account_receipts_stay_and_the_processor_customer_goes(
    client, customer, paying_customer, gateway, sign_in
):
    stripe_id = paying_customer.stripe_customer_id
    receipt_before = Receipt.objects.values().get()
    sign_in(client, customer.user.email, DEFAULT_PASSWORD)
    assert UserSession.objects.filter(user=customer.user).exists()

    response = client.post("/settings/data/delete/", {"password": DEFAULT_PASSWORD, "confirm": "on"}, follow=True)

    assert response.redirect_chain[-1][0].startswith("/accounts/login/")
    assert "Your account was deleted." in response.content.decode()
    customer.refresh_from_db()
    user = get_user_model().objects.get(pk=customer.user_id)
    assert user.email == erased_email(user.pk) and not user.is_active and not user.has_usable_password()
    assert customer.full_name == customer.email == customer.address_line1 == customer.city == ""
    assert customer.stripe_customer_id == "" and not customer.avatar
    assert not EmailAddress.objects.filter(user=user).exists()
    assert not UserSession.objects.filter(user=user).exists()
    assert not Card.objects.filter(customer=customer).exists()
    assert ("customer_delete", {"customer_id": stripe_id}) in FakeGateway.calls
    assert gateway.customers[stripe_id].deleted
    assert Receipt.objects.values().get() == receipt_before  # the tax record keeps its billing snapshot
    assert client.get("/").status_code == 302  # signed out
    assert AuditEntry.objects.filter(action="account.erased", customer=customer, actor_kind="customer").exists()


def test_erasure_removes_the_avatar_file(customer, django_capture_on_commit_callbacks):
    from django.core.files.base import ContentFile

    customer.avatar.save("a.webp", ContentFile(b"x"))
    storage, name = customer.avatar.storage, customer.avatar.name

    with django_capture_on_commit_callbacks(execute=True):
        customer_erase(customer=customer, by=None)

    assert not storage.exists(name)


def test_erasure_forgets_what_the_audit_said_but_keeps_that_it_happened(customer):
    from portal.services import audit_record

    audit_record(action="contact.updated", customer=customer, actor=customer.user, changes={"city": ["Leeds", "York"]})

    customer_erase(customer=customer, by=None)

    entry = AuditEntry.objects.get(action="contact.updated")
    assert entry.changes == {}


def test_a_processor_failure_erases_nothing(customer, paying_customer, gateway, monkeypatch):
    from billing.gateways.base import TemporarilyUnavailable

    def unavailable(self, **kwargs):
        raise TemporarilyUnavailable("down")

    monkeypatch.setattr(FakeGateway, "customer_delete", unavailable)

    with pytest.raises(TemporarilyUnavailable):
        customer_erase(customer=customer, by=None)

    customer.refresh_from_db()
    assert customer.full_name and customer.stripe_customer_id and customer.user.is_active


def test_staff_accounts_and_erased_ones_are_refused(creator, customer):
    with pytest.raises(DataRightsError, match=str(STAFF_NOT_ERASED)):
        customer_erase(customer=creator.customer, by=None)
    customer_erase(customer=customer, by=None)
    with pytest.raises(DataRightsError, match=str(ALREADY_ERASED)):
        customer_erase(customer=customer, by=None)


# --- staff, from admin ---------------------------------------------------------------------------


def test_the_creator_downloads_a_customers_data_from_admin(creator_client, customer, creator):
    RecordedPurchaseFactory(customer=customer)

    archive = unzip(creator_client.get(f"/admin/accounts/customer/{customer.pk}/data-export/"))

    assert "data.json" in archive.namelist() and "receipts/receipt-R-000001.pdf" in archive.namelist()
    assert AuditEntry.objects.filter(action="account.data_exported", customer=customer, actor=creator).exists()


def test_the_creator_erases_an_account_from_admin_after_a_confirmation(creator_client, customer, creator, gateway):
    url = f"/admin/accounts/customer/{customer.pk}/erase/"
    change = creator_client.get(f"/admin/accounts/customer/{customer.pk}/change/").content.decode()
    assert url in change

    page = creator_client.get(url).content.decode()
    assert "Receipts are kept" in page
    assert Customer.objects.get(pk=customer.pk).full_name  # the page changed nothing

    creator_client.post(url)

    customer.refresh_from_db()
    assert customer.full_name == "" and customer.user.email == erased_email(customer.user_id)
    assert AuditEntry.objects.filter(action="account.erased", customer=customer, actor=creator).exists()


def test_support_may_download_but_not_erase(support_client, customer):
    assert support_client.get(f"/admin/accounts/customer/{customer.pk}/data-export/").status_code == 200
    assert support_client.post(f"/admin/accounts/customer/{customer.pk}/erase/").status_code == 403
    assert Customer.objects.get(pk=customer.pk).full_name
