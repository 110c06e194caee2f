"""The purchases admin as the creator (a superuser) uses it."""

import re

import pytest

from portal.models import AuditEntry
from purchases.models import AccessGrant, Offer, Purchase, Receipt
from purchases.services import access_grant, access_revoke
from tests.factories import OfferFactory, ProductFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

NO_INLINE_FORMS = {
    f"{prefix}-{key}": 0 for prefix in ["receipts", "grants", "refunds"] for key in ["TOTAL_FORMS", "INITIAL_FORMS"]
}


# --- receipts --------------------------------------------------------------------------------------


def test_the_receipt_list_links_a_pdf_that_downloads(superuser_client, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    listing = superuser_client.get("/admin/purchases/receipt/")
    [link] = re.findall(r'<a href="([^"]+)">PDF</a>', listing.content.decode())
    response = superuser_client.get(link)

    assert link == f"/admin/purchases/receipt/{receipt.pk}/pdf/"
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="receipt-R-000001.pdf"'
    assert response.content.startswith(b"%PDF")


def test_the_receipt_pdf_of_the_admin_is_for_staff_only(client_logged_in, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = client_logged_in.get(f"/admin/purchases/receipt/{receipt.pk}/pdf/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_an_unknown_receipt_pdf_in_the_admin_is_not_found(superuser_client):
    assert superuser_client.get("/admin/purchases/receipt/999/pdf/").status_code == 404


def test_receipts_cannot_be_added_in_the_admin(superuser_client):
    listing = superuser_client.get("/admin/purchases/receipt/").content.decode()

    assert "/admin/purchases/receipt/add/" not in listing
    assert superuser_client.get("/admin/purchases/receipt/add/").status_code == 403


def test_a_receipt_is_shown_read_only_and_cannot_be_changed(superuser_client, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()
    before = Receipt.objects.filter(pk=receipt.pk).values().get()

    page = superuser_client.get(f"/admin/purchases/receipt/{receipt.pk}/change/")
    post = superuser_client.post(
        f"/admin/purchases/receipt/{receipt.pk}/change/", {"billing_name": "Changed", "total": 1}
    )

    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert receipt.billing_name in page.content.decode()
    assert post.status_code == 403
    assert Receipt.objects.filter(pk=receipt.pk).values().get() == before


def test_receipts_cannot_be_deleted_in_the_admin(superuser_client, customer):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    listing = superuser_client.get("/admin/purchases/receipt/").content.decode()
    page = superuser_client.get(f"/admin/purchases/receipt/{receipt.pk}/delete/")
    post = superuser_client.post(f"/admin/purchases/receipt/{receipt.pk}/delete/", {"post": "yes"})
    bulk = superuser_client.post(
        "/admin/purchases/receipt/", {"action": "delete_selected", "_selected_action": [receipt.pk], "post": "yes"}
    )

    assert 'value="delete_selected"' not in listing
    assert (page.status_code, post.status_code) == (403, 403)
    assert bulk.status_code in (200, 302)
    assert Receipt.objects.filter(pk=receipt.pk).exists()


# --- access grants ---------------------------------------------------------------------------------


def test_granting_access_in_the_admin_goes_through_the_service(superuser_client, superuser, customer):
    product = ProductFactory(name="Pottery Basics")

    response = superuser_client.post(
        "/admin/purchases/accessgrant/add/", {"customer": customer.pk, "product": product.pk, "purchase": ""}
    )

    assert response.status_code == 302
    grant = AccessGrant.objects.get()
    assert (grant.customer, grant.product, grant.purchase, grant.granted_by, grant.revoked_at) == (
        customer,
        product,
        None,
        superuser,
        None,
    )
    entry = AuditEntry.objects.get(action="access.granted")
    assert (entry.customer, entry.actor, entry.actor_kind) == (customer, superuser, "staff")
    assert entry.changes == {"product": "Pottery Basics", "purchase": None}


def test_granting_access_twice_in_the_admin_keeps_one_active_grant(superuser_client, customer):
    product = ProductFactory()
    data = {"customer": customer.pk, "product": product.pk, "purchase": ""}

    superuser_client.post("/admin/purchases/accessgrant/add/", data)
    response = superuser_client.post("/admin/purchases/accessgrant/add/", data)

    assert response.status_code == 302
    assert AccessGrant.objects.filter(customer=customer, product=product, revoked_at=None).count() == 1
    assert AuditEntry.objects.filter(action="access.granted").count() == 1


def test_a_grant_cannot_be_edited_or_deleted_in_the_admin(superuser_client, customer):
    grant = access_grant(customer=customer, product=ProductFactory())
    other_product = ProductFactory()

    change = superuser_client.post(
        f"/admin/purchases/accessgrant/{grant.pk}/change/",
        {"customer": customer.pk, "product": other_product.pk, "purchase": ""},
    )
    delete = superuser_client.post(f"/admin/purchases/accessgrant/{grant.pk}/delete/", {"post": "yes"})

    assert (change.status_code, delete.status_code) == (403, 403)
    assert AccessGrant.objects.get(pk=grant.pk).product != other_product


def test_the_revoke_action_revokes_the_selected_grants(superuser_client, superuser, customer, other_customer):
    first = access_grant(customer=customer, product=ProductFactory(name="First"))
    second = access_grant(customer=other_customer, product=ProductFactory(name="Second"))
    kept = access_grant(customer=customer, product=ProductFactory(name="Kept"))

    response = superuser_client.post(
        "/admin/purchases/accessgrant/",
        {"action": "revoke_selected", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )

    assert "2 grants revoked." in response.content.decode()
    for grant in (first, second):
        grant.refresh_from_db()
        assert (grant.revoked_by, grant.revoke_reason) == (superuser, "revoked in admin")
        assert grant.revoked_at is not None
    assert AccessGrant.objects.get(pk=kept.pk).revoked_at is None
    revoked = AuditEntry.objects.filter(action="access.revoked")
    assert sorted([(e.customer, e.actor, e.changes) for e in revoked], key=lambda row: row[2]["product"]) == [
        (customer, superuser, {"product": "First", "reason": "revoked in admin"}),
        (other_customer, superuser, {"product": "Second", "reason": "revoked in admin"}),
    ]


def test_the_revoke_action_skips_grants_already_revoked(superuser_client, staff_user, customer):
    grant = access_grant(customer=customer, product=ProductFactory())
    access_revoke(grant=grant, by=staff_user, reason="chargeback")

    response = superuser_client.post(
        "/admin/purchases/accessgrant/", {"action": "revoke_selected", "_selected_action": [grant.pk]}, follow=True
    )

    assert "0 grants revoked." in response.content.decode()
    grant.refresh_from_db()
    assert (grant.revoked_by, grant.revoke_reason) == (staff_user, "chargeback")


# --- purchases -------------------------------------------------------------------------------------


def test_the_purchase_admin_pages_open(superuser_client, customer):
    purchase = RecordedPurchaseFactory(customer=customer)

    assert superuser_client.get("/admin/purchases/purchase/").status_code == 200
    page = superuser_client.get(f"/admin/purchases/purchase/{purchase.pk}/change/")
    assert page.status_code == 200
    assert "R-000001" in page.content.decode()


def test_adding_a_purchase_in_the_admin_records_it_like_a_sale(superuser_client, superuser, customer):
    """A purchase entered by hand must get its access and receipt, as purchase_record gives them."""
    product = ProductFactory()
    offer = OfferFactory(price_amount=4900, products=[product])

    response = superuser_client.post(
        "/admin/purchases/purchase/add/",
        {
            "customer": customer.pk,
            "offer": offer.pk,
            "amount": "49.00",  # typed as money, kept in minor units
            "purchased_at_0": "2026-01-01",
            "purchased_at_1": "10:00:00",
            **NO_INLINE_FORMS,
        },
    )

    assert response.status_code == 302
    purchase = Purchase.objects.get(offer=offer)
    assert purchase.amount == 4900
    assert purchase.receipts.count() == 1
    assert purchase.grants.filter(product=product, revoked_at=None).count() == 1
    assert AuditEntry.objects.filter(action="purchase.recorded", actor=superuser).exists()


def test_a_recorded_purchase_cannot_be_edited_past_the_services(superuser_client, customer, other_customer):
    """Amount, customer, offer and Stripe ids change only through refund, revoke and cancel."""
    purchase = RecordedPurchaseFactory(customer=customer)
    before = Purchase.objects.filter(pk=purchase.pk).values().get()
    url = f"/admin/purchases/purchase/{purchase.pk}/change/"

    page = superuser_client.get(url).content.decode()
    superuser_client.post(
        url, {"customer": other_customer.pk, "offer": purchase.offer_id, "amount": 1, **NO_INLINE_FORMS}
    )

    assert 'name="amount"' not in page and 'name="customer"' not in page and 'name="offer"' not in page
    assert Purchase.objects.filter(pk=purchase.pk).values().get() == before


def test_an_offers_price_is_typed_and_shown_as_money(superuser_client):
    product = ProductFactory()

    response = superuser_client.post(
        "/admin/purchases/offer/add/",
        {"name": "Glazing", "kind": "one_time", "price": "49.50", "currency": "gbp", "products": [product.pk]},
    )
    offer = Offer.objects.get(name="Glazing")
    page = superuser_client.get(f"/admin/purchases/offer/{offer.pk}/change/").content.decode()
    listing = superuser_client.get("/admin/purchases/offer/").content.decode()

    assert response.status_code == 302 and offer.price_amount == 4950
    assert 'name="price" value="49.50"' in page and 'name="price_amount"' not in page
    assert "£49.50" in listing


def test_a_price_with_more_decimals_than_its_currency_is_refused(superuser_client):
    product = ProductFactory()

    response = superuser_client.post(
        "/admin/purchases/offer/add/",
        {"name": "Yen", "kind": "one_time", "price": "10.5", "currency": "jpy", "products": [product.pk]},
    )

    assert response.status_code == 200
    assert "Too many decimal places for this currency." in response.content.decode()
    assert not Offer.objects.filter(name="Yen").exists()


def test_purchase_and_subscription_amounts_show_as_money_in_admin(superuser_client, customer):
    from tests.factories import SubscriptionFactory

    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900, currency="gbp"))
    SubscriptionFactory(customer=customer, amount=1500, currency="gbp")

    change = superuser_client.get(f"/admin/purchases/purchase/{purchase.pk}/change/").content.decode()
    subscriptions = superuser_client.get("/admin/billing/subscription/").content.decode()

    assert "£49.00" in change and ">4900<" not in change
    assert "£15.00" in subscriptions and ">1500<" not in subscriptions
