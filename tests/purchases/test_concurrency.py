"""Receipt numbering under concurrent sales: unique and gapless, on a database with row locks."""

import threading

import pytest
from django.db import connection

from portal.selectors import site_settings_get
from purchases.models import Receipt, ReceiptSequence
from purchases.services import purchase_record, receipt_issue
from tests.factories import CustomerFactory, OfferFactory, PurchaseFactory

THREADS = 8
RECEIPTS_PER_THREAD = 5

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
)


def run_concurrently(work, threads=THREADS):
    """Run work(index) in parallel threads that start together; return the errors raised."""
    barrier = threading.Barrier(threads)
    errors = []

    def target(index):
        try:
            barrier.wait(timeout=30)
            work(index)
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        finally:
            connection.close()  # each thread opened its own connection

    workers = [threading.Thread(target=target, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a thread is stuck (deadlock?)"
    return errors


@pytest.mark.django_db(transaction=True)
def test_receipts_issued_concurrently_get_unique_gapless_numbers():
    purchase = PurchaseFactory(customer=CustomerFactory(user__password=None))
    site_settings_get()  # the settings row exists; the sequence row is created in the race

    def issue(index):
        for _ in range(RECEIPTS_PER_THREAD):
            receipt_issue(purchase=purchase)

    errors = run_concurrently(issue)

    assert errors == []
    total = THREADS * RECEIPTS_PER_THREAD
    assert sorted(Receipt.objects.values_list("sequence", flat=True)) == list(range(1, total + 1))
    assert sorted(Receipt.objects.values_list("number", flat=True)) == [f"R-{n:06d}" for n in range(1, total + 1)]
    assert ReceiptSequence.objects.get(prefix="R").last_number == total


@pytest.mark.django_db(transaction=True)
def test_purchases_recorded_concurrently_by_different_customers_get_unique_gapless_receipts():
    customers = [CustomerFactory(user__password=None) for _ in range(THREADS)]
    offer = OfferFactory()
    site_settings_get()

    def buy(index):
        for _ in range(RECEIPTS_PER_THREAD):
            purchase_record(customer=customers[index], offer=offer)

    errors = run_concurrently(buy)

    assert errors == []
    total = THREADS * RECEIPTS_PER_THREAD
    assert sorted(Receipt.objects.values_list("sequence", flat=True)) == list(range(1, total + 1))
    for customer in customers:
        assert Receipt.objects.filter(customer=customer).count() == RECEIPTS_PER_THREAD
