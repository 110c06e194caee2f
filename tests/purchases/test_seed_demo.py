"""The demo data: a customer with a purchase history, receipts and one partial refund."""

import pytest
from django.core.management import call_command

from accounts.models import Customer
from purchases.models import PurchaseStatus, Receipt, Refund

pytestmark = pytest.mark.django_db

PASSWORD = "pw-demo-1234"


def demo_customer():
    return Customer.objects.get(user__email="customer@example.com")


def test_the_demo_customer_has_seven_purchases_with_receipts_and_one_partial_refund():
    call_command("seed_demo", password=PASSWORD)

    customer = demo_customer()
    purchases = list(customer.purchases.all())
    assert len(purchases) == 7
    assert [p.status for p in purchases].count(PurchaseStatus.PARTIALLY_REFUNDED) == 1
    assert [p.status for p in purchases].count(PurchaseStatus.PAID) == 6
    [refunded] = [p for p in purchases if p.status == PurchaseStatus.PARTIALLY_REFUNDED]
    assert (refunded.offer.name, refunded.amount, refunded.amount_refunded) == ("Glaze Recipes ebook", 900, 400)
    assert Refund.objects.get().purchase == refunded
    for purchase in purchases:
        receipt = purchase.receipts.get()
        assert receipt.customer == customer
        assert receipt.billing_name == "Dana Demo"
        assert receipt.tax_rate == 20
        assert receipt.tax_amount + receipt.subtotal == receipt.total == purchase.amount
    assert sorted(Receipt.objects.values_list("sequence", flat=True)) == list(range(1, 8))
    assert customer.access_grants.filter(revoked_at=None).values("product").distinct().count() == 4


def test_running_the_demo_seed_twice_does_not_duplicate_purchases():
    call_command("seed_demo", password=PASSWORD)
    receipts = set(Receipt.objects.values_list("number", flat=True))

    call_command("seed_demo", password=PASSWORD)

    customer = demo_customer()
    assert customer.purchases.count() == 7
    assert set(Receipt.objects.values_list("number", flat=True)) == receipts
    assert Refund.objects.count() == 1


def test_the_demo_users_sign_in_with_the_given_password(client):
    call_command("seed_demo", password=PASSWORD)

    for email in ["creator@example.com", "support@example.com", "customer@example.com"]:
        assert client.login(email=email, password=PASSWORD), email


def test_the_demo_customer_sees_the_history_on_the_purchases_page(client):
    call_command("seed_demo", password=PASSWORD)
    client.login(email="customer@example.com", password=PASSWORD)

    html = client.get("/purchases/").content.decode()

    assert html.count('href="/purchases/receipts/R-') == 7
    assert "Partly refunded" in html
    assert "Open Pottery Basics" in html
