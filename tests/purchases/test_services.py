"""Recording sales, numbering receipts, refunds and access: the purchases services against the database."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from portal.models import AuditEntry
from portal.services import site_settings_update
from purchases.models import AccessGrant, Purchase, PurchaseStatus, Receipt, Refund
from purchases.services import (
    REFUND_NOT_POSITIVE,
    REFUND_TOO_LARGE,
    PurchaseError,
    access_grant,
    access_revoke,
    purchase_record,
    receipt_issue,
    refund_record,
)
from tests.factories import OfferFactory, ProductFactory, PurchaseFactory, RecordedPurchaseFactory

pytestmark = pytest.mark.django_db


def actions(customer):
    return list(AuditEntry.objects.filter(customer=customer).order_by("pk").values_list("action", flat=True))


# --- purchase_record -------------------------------------------------------------------------------


def test_recording_a_purchase_stores_the_purchase_grants_each_product_and_issues_one_receipt(customer, staff_user):
    course, community = ProductFactory(name="Course"), ProductFactory(name="Community")
    offer = OfferFactory(name="Bundle", price_amount=4900, currency="gbp", products=[course, community])
    paid_at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)

    purchase = purchase_record(
        customer=customer,
        offer=offer,
        tax_rate=Decimal("20"),
        purchased_at=paid_at,
        by=staff_user,
        stripe_invoice_id="in_123",
    )

    stored = Purchase.objects.get()
    assert stored == purchase
    assert (stored.customer, stored.offer, stored.amount, stored.amount_refunded, stored.currency) == (
        customer,
        offer,
        4900,
        0,
        "gbp",
    )
    assert stored.status == PurchaseStatus.PAID
    assert stored.purchased_at == paid_at
    assert stored.stripe_invoice_id == "in_123"

    grants = AccessGrant.objects.filter(customer=customer).order_by("product__name")
    assert [(g.product, g.purchase, g.granted_by, g.revoked_at) for g in grants] == [
        (community, purchase, staff_user, None),
        (course, purchase, staff_user, None),
    ]

    receipt = Receipt.objects.get()
    assert receipt.purchase == purchase
    assert receipt.customer == customer
    assert receipt.issued_at == paid_at
    assert receipt.currency == "gbp"
    assert receipt.lines == [{"description": "Bundle", "quantity": 1, "unit_amount": 4900, "amount": 4900}]
    assert receipt.corrects is None


def test_the_receipt_snapshots_the_customers_billing_details(customer):
    customer.tax_id_type, customer.tax_id_value = "gb_vat", "GB980780684"
    customer.address_line2, customer.region = "Flat 2", "Greater London"
    customer.save()

    purchase = RecordedPurchaseFactory(customer=customer)

    receipt = purchase.receipts.get()
    assert {
        "billing_name": receipt.billing_name,
        "billing_email": receipt.billing_email,
        "billing_tax_id_type": receipt.billing_tax_id_type,
        "billing_tax_id": receipt.billing_tax_id,
        "billing_address_line1": receipt.billing_address_line1,
        "billing_address_line2": receipt.billing_address_line2,
        "billing_city": receipt.billing_city,
        "billing_region": receipt.billing_region,
        "billing_postal_code": receipt.billing_postal_code,
        "billing_country": receipt.billing_country,
    } == {
        "billing_name": customer.full_name,
        "billing_email": customer.email,
        "billing_tax_id_type": "gb_vat",
        "billing_tax_id": "GB980780684",
        "billing_address_line1": customer.address_line1,
        "billing_address_line2": "Flat 2",
        "billing_city": customer.city,
        "billing_region": "Greater London",
        "billing_postal_code": customer.postal_code,
        "billing_country": "GB",
    }
    assert receipt.billing_updated_at is None


def test_the_receipt_falls_back_to_the_sign_in_address_when_the_contact_email_is_empty(customer):
    customer.email = ""
    customer.save()

    receipt = RecordedPurchaseFactory(customer=customer).receipts.get()

    assert receipt.billing_email == customer.user.email


def test_the_receipt_splits_included_tax_out_of_the_total(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900), tax_rate=Decimal("20"))

    receipt = Receipt.objects.get(purchase=purchase)
    assert (receipt.total, receipt.tax_amount, receipt.subtotal) == (4900, 817, 4083)
    assert receipt.tax_rate == Decimal("20")
    assert receipt.tax_rate_display == "20"


def test_a_receipt_without_tax_has_subtotal_equal_to_total(customer):
    receipt = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=1999)).receipts.get()

    assert (receipt.total, receipt.tax_amount, receipt.subtotal) == (1999, 0, 1999)


def test_recording_a_purchase_for_a_given_amount_overrides_the_offer_price(customer):
    purchase = purchase_record(customer=customer, offer=OfferFactory(price_amount=4900), amount=2500)

    assert Purchase.objects.get(pk=purchase.pk).amount == 2500
    assert purchase.receipts.get().total == 2500


def test_recording_a_purchase_audits_each_grant_and_the_sale(customer, staff_user):
    offer = OfferFactory(name="Bundle", products=[ProductFactory(name="A"), ProductFactory(name="B")])

    purchase = purchase_record(customer=customer, offer=offer, by=staff_user)

    entries = AuditEntry.objects.filter(customer=customer).order_by("pk")
    assert [(e.action, e.actor, e.actor_kind) for e in entries] == [
        ("access.granted", staff_user, "staff"),
        ("access.granted", staff_user, "staff"),
        ("purchase.recorded", staff_user, "staff"),
    ]
    assert sorted(e.changes["product"] for e in entries[:2]) == ["A", "B"]
    assert {e.changes["purchase"] for e in entries[:2]} == {purchase.pk}
    assert entries[2].changes == {"offer": "Bundle", "amount": 4900, "currency": "gbp"}


def test_a_purchase_recorded_by_the_system_is_audited_as_system(customer):
    purchase_record(customer=customer, offer=OfferFactory())

    assert set(AuditEntry.objects.filter(customer=customer).values_list("actor", "actor_kind")) == {(None, "system")}


# --- receipt numbering -----------------------------------------------------------------------------


def test_receipt_numbers_are_sequential_per_prefix(customer):
    purchases = [RecordedPurchaseFactory(customer=customer) for _ in range(3)]

    assert [p.receipts.get().number for p in purchases] == ["R-000001", "R-000002", "R-000003"]
    assert [p.receipts.get().sequence for p in purchases] == [1, 2, 3]
    assert {p.receipts.get().prefix for p in purchases} == {"R"}


def test_a_new_prefix_starts_at_one_and_the_old_prefix_carries_on(customer):
    purchase = PurchaseFactory(customer=customer)
    first = receipt_issue(purchase=purchase)
    second = receipt_issue(purchase=purchase)
    site_settings_update(data={"receipt_prefix": "INV2026"})
    third = receipt_issue(purchase=purchase)
    fourth = receipt_issue(purchase=purchase)
    site_settings_update(data={"receipt_prefix": "R"})
    fifth = receipt_issue(purchase=purchase)

    assert [r.number for r in (first, second, third, fourth, fifth)] == [
        "R-000001",
        "R-000002",
        "INV2026-000001",
        "INV2026-000002",
        "R-000003",
    ]
    assert (third.prefix, third.sequence) == ("INV2026", 1)
    assert list(Receipt.objects.order_by("pk").values_list("number", flat=True)) == [
        "R-000001",
        "R-000002",
        "INV2026-000001",
        "INV2026-000002",
        "R-000003",
    ]


# --- refunds ---------------------------------------------------------------------------------------


def test_a_partial_refund_records_the_refund_and_marks_the_purchase_partly_refunded(customer, staff_user):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))

    refund = refund_record(
        purchase=purchase, amount=900, reason="Damaged download", by=staff_user, stripe_refund_id="re_1"
    )

    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.amount_refunded, stored.status, stored.amount_remaining) == (
        900,
        PurchaseStatus.PARTIALLY_REFUNDED,
        4000,
    )
    assert Refund.objects.get() == refund
    assert (refund.amount, refund.currency, refund.reason, refund.created_by, refund.stripe_refund_id) == (
        900,
        "gbp",
        "Damaged download",
        staff_user,
        "re_1",
    )
    entry = AuditEntry.objects.get(action="purchase.refunded")
    assert (entry.customer, entry.actor) == (customer, staff_user)
    assert entry.changes == {
        "purchase": purchase.pk,
        "amount": 900,
        "reason": "Damaged download",
        "status": "succeeded",
    }


def test_refunding_what_is_left_marks_the_purchase_refunded(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    refund_record(purchase=purchase, amount=900)

    refund_record(purchase=purchase, amount=4000)

    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.amount_refunded, stored.status, stored.amount_remaining) == (4900, PurchaseStatus.REFUNDED, 0)
    assert Refund.objects.filter(purchase=purchase).count() == 2


def test_a_full_refund_at_once_marks_the_purchase_refunded(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))

    refund_record(purchase=purchase, amount=4900)

    assert Purchase.objects.get(pk=purchase.pk).status == PurchaseStatus.REFUNDED


def test_refunding_more_than_is_left_is_refused_and_changes_nothing(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    refund_record(purchase=purchase, amount=900)
    audit_before = actions(customer)

    with pytest.raises(PurchaseError) as error:
        refund_record(purchase=purchase, amount=4001)

    assert error.value.message == str(REFUND_TOO_LARGE) % {"amount": "£40.01", "remaining": "£40.00"}
    assert error.value.message == "A refund of £40.01 is more than the £40.00 left on this purchase."
    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.amount_refunded, stored.status) == (900, PurchaseStatus.PARTIALLY_REFUNDED)
    assert Refund.objects.filter(purchase=purchase).count() == 1
    assert actions(customer) == audit_before


def test_refunding_a_fully_refunded_purchase_is_refused(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    refund_record(purchase=purchase, amount=4900)

    with pytest.raises(PurchaseError) as error:
        refund_record(purchase=purchase, amount=1)

    assert error.value.message == "A refund of £0.01 is more than the £0.00 left on this purchase."
    assert Refund.objects.count() == 1


def test_a_refund_uses_the_stored_amount_not_a_stale_copy(customer):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    stale = Purchase.objects.get(pk=purchase.pk)
    refund_record(purchase=purchase, amount=4000)

    with pytest.raises(PurchaseError):
        refund_record(purchase=stale, amount=4000)  # `stale` still says 4900 remaining

    assert Purchase.objects.get(pk=purchase.pk).amount_refunded == 4000


@pytest.mark.parametrize("amount", [0, -100])
def test_a_refund_of_zero_or_less_is_refused_and_changes_nothing(customer, amount):
    purchase = RecordedPurchaseFactory(customer=customer, offer=OfferFactory(price_amount=4900))
    audit_before = actions(customer)

    with pytest.raises(PurchaseError) as error:
        refund_record(purchase=purchase, amount=amount)

    assert error.value.message == str(REFUND_NOT_POSITIVE) == "A refund must be more than zero."
    stored = Purchase.objects.get(pk=purchase.pk)
    assert (stored.amount_refunded, stored.status) == (0, PurchaseStatus.PAID)
    assert not Refund.objects.exists()
    assert actions(customer) == audit_before


# --- access ----------------------------------------------------------------------------------------


def test_granting_access_twice_for_the_same_purchase_keeps_one_grant_and_one_audit_entry(customer):
    product = ProductFactory()
    purchase = PurchaseFactory(customer=customer)

    first = access_grant(customer=customer, product=product, purchase=purchase)
    second = access_grant(customer=customer, product=product, purchase=purchase)

    assert first.pk == second.pk
    assert AccessGrant.objects.filter(customer=customer, product=product).count() == 1
    assert actions(customer) == ["access.granted"]


def test_granting_access_by_hand_twice_keeps_one_grant(customer, staff_user):
    product = ProductFactory(name="Course")

    first = access_grant(customer=customer, product=product, by=staff_user)
    second = access_grant(customer=customer, product=product, by=staff_user)

    assert first.pk == second.pk
    grant = AccessGrant.objects.get()
    assert (grant.purchase, grant.granted_by, grant.revoked_at) == (None, staff_user, None)
    entry = AuditEntry.objects.get(action="access.granted")
    assert (entry.customer, entry.actor, entry.changes) == (
        customer,
        staff_user,
        {"product": "Course", "purchase": None},
    )


def test_another_purchase_of_the_same_product_gets_its_own_grant(customer):
    product = ProductFactory()
    offer = OfferFactory(products=[product])

    RecordedPurchaseFactory(customer=customer, offer=offer)
    RecordedPurchaseFactory(customer=customer, offer=offer)

    assert AccessGrant.objects.filter(customer=customer, product=product, revoked_at=None).count() == 2


def test_revoking_access_records_who_when_and_why(customer, staff_user):
    grant = access_grant(customer=customer, product=ProductFactory(name="Course"))
    before = timezone.now()

    access_revoke(grant=grant, by=staff_user, reason="chargeback")

    stored = AccessGrant.objects.get(pk=grant.pk)
    assert stored.revoked_by == staff_user
    assert stored.revoke_reason == "chargeback"
    assert before <= stored.revoked_at <= timezone.now()
    assert not stored.is_active
    entry = AuditEntry.objects.get(action="access.revoked")
    assert (entry.customer, entry.actor, entry.actor_kind) == (customer, staff_user, "staff")
    assert entry.changes == {"product": "Course", "reason": "chargeback"}


def test_revoking_twice_keeps_the_first_revocation(customer, staff_user):
    grant = access_grant(customer=customer, product=ProductFactory())
    access_revoke(grant=grant, by=staff_user, reason="chargeback")
    first = AccessGrant.objects.get(pk=grant.pk)

    access_revoke(grant=grant, by=None, reason="again")

    stored = AccessGrant.objects.get(pk=grant.pk)
    assert (stored.revoked_at, stored.revoked_by, stored.revoke_reason) == (first.revoked_at, staff_user, "chargeback")
    assert actions(customer).count("access.revoked") == 1


def test_access_can_be_granted_again_after_a_revocation(customer):
    product = ProductFactory()
    grant = access_grant(customer=customer, product=product)
    access_revoke(grant=grant, reason="mistake")

    again = access_grant(customer=customer, product=product)

    assert again.pk != grant.pk
    assert again.is_active
    assert AccessGrant.objects.filter(customer=customer, product=product).count() == 2
    assert actions(customer) == ["access.granted", "access.revoked", "access.granted"]


def test_receipts_of_different_customers_share_one_numbering(customer, other_customer):
    mine = RecordedPurchaseFactory(customer=customer).receipts.get()
    theirs = RecordedPurchaseFactory(customer=other_customer).receipts.get()

    assert (mine.number, theirs.number) == ("R-000001", "R-000002")
    assert (mine.customer, theirs.customer) == (customer, other_customer)


def test_a_purchase_in_the_past_gets_a_receipt_dated_when_it_was_paid(customer):
    paid_at = timezone.now() - timedelta(days=30)

    purchase = RecordedPurchaseFactory(customer=customer, purchased_at=paid_at)

    assert purchase.receipts.get().issued_at == paid_at
