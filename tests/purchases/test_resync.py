"""Receipts and the customer's billing details: resync mode rewrites them, frozen mode issues corrections."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.services import customer_update_contact
from portal.models import AuditEntry
from portal.services import site_settings_update
from purchases.models import Receipt
from purchases.services import (
    CORRECTION_EXISTS,
    CORRECTION_NOT_FROZEN,
    CORRECTION_NOT_NEEDED,
    PurchaseError,
    billing_snapshot,
    receipt_issue_correction,
)
from tests.factories import OfferFactory, PurchaseFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db

NEW_ADDRESS = {
    "full_name": "Dana Newname",
    "address_line1": "2 Harbour Road",
    "address_line2": "Unit 5",
    "city": "Leeds",
    "region": "West Yorkshire",
    "postal_code": "LS1 4AP",
    "country": "IE",
}
BILLING_COLUMNS = [
    "billing_name",
    "billing_email",
    "billing_tax_id_type",
    "billing_tax_id",
    "billing_address_line1",
    "billing_address_line2",
    "billing_city",
    "billing_region",
    "billing_postal_code",
    "billing_country",
    "billing_updated_at",
]


def stored_billing(receipts):
    return {
        r["number"]: r
        for r in Receipt.objects.filter(pk__in=[x.pk for x in receipts]).values("number", *BILLING_COLUMNS)
    }


def stored_receipt(receipt):
    return Receipt.objects.filter(pk=receipt.pk).values().get()


class Rollback(Exception):
    pass


# --- resync mode (the default) ---------------------------------------------------------------------


def test_a_new_address_rewrites_all_the_customers_receipts(customer):
    receipts = [RecordedPurchaseFactory(customer=customer).receipts.get() for _ in range(3)]

    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    for receipt in Receipt.objects.filter(pk__in=[r.pk for r in receipts]):
        assert receipt.billing_name == "Dana Newname"
        assert receipt.billing_address_line1 == "2 Harbour Road"
        assert receipt.billing_address_line2 == "Unit 5"
        assert receipt.billing_city == "Leeds"
        assert receipt.billing_region == "West Yorkshire"
        assert receipt.billing_postal_code == "LS1 4AP"
        assert receipt.billing_country == "IE"
        assert receipt.billing_email == customer.email
        assert receipt.billing_updated_at is not None
        assert receipt.billing_address_lines == [
            "2 Harbour Road",
            "Unit 5",
            "LS1 4AP Leeds",
            "West Yorkshire",
            "Ireland",
        ]


def test_a_new_address_leaves_other_customers_receipts_alone(customer, other_customer):
    RecordedPurchaseFactory(customer=customer)
    theirs = RecordedPurchaseFactory(customer=other_customer).receipts.get()
    before = stored_receipt(theirs)

    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    assert stored_receipt(theirs) == before
    assert before["billing_name"] == other_customer.full_name


def test_a_resync_is_audited_with_the_number_of_receipts(customer):
    for _ in range(3):
        RecordedPurchaseFactory(customer=customer)

    customer_update_contact(customer=customer, data={"city": "Leeds"}, by=customer.user)

    entry = AuditEntry.objects.get(action="receipts.resynced")
    assert (entry.customer, entry.actor, entry.actor_kind) == (customer, customer.user, "customer")
    assert entry.changes == {"count": 3}


@pytest.mark.parametrize(
    "field, value, column",
    [
        ("email", "renamed@example.com", "billing_email"),
        ("tax_id_value", "GB980780684", "billing_tax_id"),
        ("full_name", "Someone Else", "billing_name"),
    ],
)
def test_each_billing_field_change_reaches_the_receipts(customer, field, value, column):
    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    customer_update_contact(customer=customer, data={field: value}, by=customer.user)

    assert getattr(Receipt.objects.get(pk=receipt.pk), column) == value


def test_a_change_of_phone_only_does_not_touch_receipts(customer):
    receipts = [RecordedPurchaseFactory(customer=customer).receipts.get() for _ in range(2)]
    before = stored_billing(receipts)

    changed = customer_update_contact(customer=customer, data={"phone": "+44 20 7946 0000"}, by=customer.user)

    assert changed == {"phone"}
    assert stored_billing(receipts) == before
    assert not AuditEntry.objects.filter(action="receipts.resynced").exists()


def test_a_customer_without_receipts_is_not_audited_as_resynced(customer):
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    assert not AuditEntry.objects.filter(action="receipts.resynced").exists()


def test_ten_thousand_receipts_are_resynced_in_one_update_statement(customer, other_customer):
    purchase = PurchaseFactory(customer=customer)
    snapshot = billing_snapshot(customer)
    Receipt.objects.bulk_create(
        [
            Receipt(
                number=f"BULK-{n:06d}",
                prefix="BULK",
                sequence=n,
                purchase=purchase,
                customer=customer,
                currency="gbp",
                lines=[],
                subtotal=4900,
                total=4900,
                **snapshot,
            )
            for n in range(1, 10_001)
        ],
        batch_size=1000,
    )
    theirs = RecordedPurchaseFactory(customer=other_customer).receipts.get()

    with CaptureQueriesContext(connection) as queries:
        customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    receipt_updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "purchases_receipt"')]
    assert len(receipt_updates) == 1
    assert (
        Receipt.objects.filter(customer=customer, billing_city="Leeds", billing_name="Dana Newname").count() == 10_000
    )
    assert Receipt.objects.get(pk=theirs.pk).billing_city == other_customer.city
    assert AuditEntry.objects.get(action="receipts.resynced").changes == {"count": 10_000}


def test_the_resync_happens_in_the_transaction_that_saves_the_contact(customer):
    receipts = [RecordedPurchaseFactory(customer=customer).receipts.get() for _ in range(2)]
    before = stored_billing(receipts)
    old_city = customer.city

    with pytest.raises(Rollback), transaction.atomic():
        customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)
        # Already rewritten inside the transaction: not deferred to after the commit.
        assert {r["billing_city"] for r in stored_billing(receipts).values()} == {"Leeds"}
        raise Rollback

    assert stored_billing(receipts) == before
    customer.refresh_from_db()
    assert customer.city == old_city
    assert not AuditEntry.objects.filter(action__in=["contact.updated", "receipts.resynced"]).exists()


# --- frozen mode -----------------------------------------------------------------------------------


def test_in_frozen_mode_a_contact_change_leaves_receipts_as_issued(customer, frozen_mode):
    receipts = [RecordedPurchaseFactory(customer=customer).receipts.get() for _ in range(2)]
    before = stored_billing(receipts)

    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    assert stored_billing(receipts) == before
    assert not AuditEntry.objects.filter(action="receipts.resynced").exists()


def test_a_correction_is_a_new_receipt_with_the_current_details_pointing_at_the_original(customer, frozen_mode):
    original = RecordedPurchaseFactory(
        customer=customer, offer=OfferFactory(name="Course", price_amount=4900), tax_rate=20
    ).receipts.get()
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)
    original_row = stored_receipt(original)

    correction = receipt_issue_correction(receipt=original, by=customer.user)

    correction.refresh_from_db()
    assert correction.pk != original.pk
    assert correction.number == "R-000002"
    assert correction.corrects == original
    assert correction.purchase == original.purchase
    assert correction.customer == customer
    assert (
        correction.billing_name,
        correction.billing_address_line1,
        correction.billing_city,
        correction.billing_country,
    ) == ("Dana Newname", "2 Harbour Road", "Leeds", "IE")
    assert correction.lines == original.lines
    assert (correction.total, correction.tax_amount, correction.subtotal, correction.tax_rate) == (4900, 817, 4083, 20)
    assert correction.issued_at > original.issued_at
    assert stored_receipt(original) == original_row
    entry = AuditEntry.objects.get(action="receipt.corrected")
    assert (entry.customer, entry.actor) == (customer, customer.user)
    assert entry.changes == {"original": "R-000001", "correction": "R-000002"}


def test_a_correction_is_refused_when_the_details_are_unchanged(customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()

    with pytest.raises(PurchaseError) as error:
        receipt_issue_correction(receipt=original, by=customer.user)

    assert error.value.message == str(CORRECTION_NOT_NEEDED)
    assert error.value.message == "This receipt already shows your current billing details."
    assert Receipt.objects.count() == 1


def test_a_correction_is_refused_when_only_the_phone_changed(customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data={"phone": "+44 20 7946 0000"}, by=customer.user)

    with pytest.raises(PurchaseError) as error:
        receipt_issue_correction(receipt=original)

    assert error.value.message == str(CORRECTION_NOT_NEEDED)


def test_a_correction_is_refused_in_resync_mode(customer):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    site_settings_update(data={"receipt_mode": "frozen"})
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)
    site_settings_update(data={"receipt_mode": "resync"})

    with pytest.raises(PurchaseError) as error:
        receipt_issue_correction(receipt=original, by=customer.user)

    assert error.value.message == str(CORRECTION_NOT_FROZEN)
    assert error.value.message == "Receipts follow your details automatically; no corrected copy is needed."
    assert Receipt.objects.count() == 1


# --- frozen mode through the pages -----------------------------------------------------------------


def test_asking_for_a_correction_redirects_to_the_new_receipt_page(client_logged_in, customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    response = client_logged_in.post(f"/purchases/receipts/{original.number}/correct/")

    correction = Receipt.objects.get(corrects=original)
    assert response.status_code == 302
    assert response["Location"] == f"/purchases/receipts/{correction.number}/"
    page = client_logged_in.get(response["Location"])
    html = page.content.decode()
    assert page.status_code == 200
    assert "Corrected copy of receipt R-000001" in html
    assert "Corrected copy R-000002 issued with your current details." in html
    assert "Dana Newname" in html
    assert "2 Harbour Road" in html


def test_the_original_stays_viewable_and_links_to_its_correction(client_logged_in, customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    old_line1 = original.billing_address_line1
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)
    client_logged_in.post(f"/purchases/receipts/{original.number}/correct/")

    page = client_logged_in.get(f"/purchases/receipts/{original.number}/")

    html = page.content.decode()
    assert page.status_code == 200
    assert old_line1 in html
    assert "2 Harbour Road" not in html
    assert "A corrected copy of this receipt was issued: R-000002." in html
    assert 'href="/purchases/receipts/R-000002/"' in html


def test_asking_for_an_unneeded_correction_shows_why_on_the_original(client_logged_in, customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = client_logged_in.post(f"/purchases/receipts/{original.number}/correct/", follow=True)

    assert response.redirect_chain == [(f"/purchases/receipts/{original.number}/", 302)]
    assert str(CORRECTION_NOT_NEEDED) in response.content.decode()
    assert Receipt.objects.count() == 1


def test_asking_for_a_correction_in_resync_mode_shows_why(client_logged_in, customer):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()

    response = client_logged_in.post(f"/purchases/receipts/{original.number}/correct/", follow=True)

    assert response.redirect_chain == [(f"/purchases/receipts/{original.number}/", 302)]
    assert str(CORRECTION_NOT_FROZEN) in response.content.decode()
    assert Receipt.objects.count() == 1


def test_a_correction_cannot_be_asked_for_with_get(client_logged_in, customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    response = client_logged_in.get(f"/purchases/receipts/{original.number}/correct/")

    assert response.status_code == 405
    assert Receipt.objects.count() == 1


def test_the_receipt_page_offers_a_correction_only_in_frozen_mode(client_logged_in, customer):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    action = f'action="/purchases/receipts/{original.number}/correct/"'

    resync_html = client_logged_in.get(original.get_absolute_url()).content.decode()
    site_settings_update(data={"receipt_mode": "frozen"})
    frozen_html = client_logged_in.get(original.get_absolute_url()).content.decode()

    assert action not in resync_html
    assert "it follows any change you make in Settings" in resync_html
    assert action in frozen_html
    assert "Receipts keep the details they were issued with." in frozen_html


def test_asking_twice_for_a_correction_with_the_same_details_issues_one_copy(client_logged_in, customer, frozen_mode):
    """A double-clicked "Get a corrected copy" must not use up a second receipt number."""
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)

    client_logged_in.post(f"/purchases/receipts/{original.number}/correct/")
    client_logged_in.post(f"/purchases/receipts/{original.number}/correct/")

    assert list(Receipt.objects.order_by("pk").values_list("number", "corrects__number")) == [
        ("R-000001", None),
        ("R-000002", "R-000001"),
    ]


def test_a_second_correction_names_the_copy_that_already_shows_the_details(customer, frozen_mode):
    original = RecordedPurchaseFactory(customer=customer).receipts.get()
    customer_update_contact(customer=customer, data=NEW_ADDRESS, by=customer.user)
    correction = receipt_issue_correction(receipt=original, by=customer.user)

    with pytest.raises(PurchaseError) as error:
        receipt_issue_correction(receipt=original, by=customer.user)

    assert error.value.message == str(CORRECTION_EXISTS) % {"number": correction.number}
    assert Receipt.objects.count() == 2
