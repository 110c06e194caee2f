"""One email per event under concurrency: two requests queueing the same event, two workers sending
the same email. Only PostgreSQL runs these transactions side by side."""

import time

import pytest
from django.core import mail
from django.db import connection, transaction

from console.emails import email_deliver
from portal.models import EmailKind, EmailStatus, OutboundEmail
from portal.outbox import email_queue
from tests.factories import CustomerFactory
from tests.purchases.test_concurrency import run_concurrently

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="needs PostgreSQL: SQLite serialises writers, so there is no concurrency to test",
)

CONTEXT = {"offer_name": "Studio membership", "amount": 1200, "currency": "gbp"}


@pytest.mark.django_db(transaction=True)
def test_the_same_event_queued_by_concurrent_requests_is_recorded_and_sent_once(run_tasks):
    customer = CustomerFactory(user__password=None)

    def queue(index):
        with transaction.atomic():
            email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="payment_failed:in_1", context=CONTEXT)
            time.sleep(0.3)  # keep the transaction open: the others wait on the unique key meanwhile

    errors = run_concurrently(queue, threads=4)

    assert errors == []
    assert OutboundEmail.objects.count() == 1
    assert run_tasks() == 1
    assert len(mail.outbox) == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_given_the_same_email_send_it_once(settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.portal.mailers.SlowLocmemBackend"}}
    customer = CustomerFactory(user__password=None)
    email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="payment_failed:in_1", context=CONTEXT)
    email = OutboundEmail.objects.get()
    statuses = []

    errors = run_concurrently(lambda index: statuses.append(email_deliver(email_id=email.pk)), threads=2)

    assert errors == []
    assert len(mail.outbox) == 1
    assert statuses == [EmailStatus.SENT, EmailStatus.SENT]
    assert OutboundEmail.objects.get().attempts == 1
