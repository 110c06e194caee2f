"""Webhooks acknowledged at once and applied by a task (issue #17), on the real gateway and the stand-in:
the request makes no call to Stripe, the task re-reads the object, and an event a newer one of its
object has already brought in is not read again."""

import pytest

from billing.models import Subscription, WebhookEvent, WebhookStatus
from billing.tasks import webhook_apply
from purchases.models import Purchase
from tests.contract.test_findings import subscribe

pytestmark = pytest.mark.django_db


def test_the_request_answers_200_without_calling_stripe_and_the_task_reads_the_invoice(
    deliver, standin, customer, run_tasks
):
    _, subscription_id, _offer = subscribe(standin, customer)
    invoice_id = standin.get(subscription_id)["latest_invoice"]
    before = len(standin.requests())

    response = deliver("invoice.paid", invoice_id, apply=False)

    assert response.status_code == 200
    assert standin.requests()[before:] == []  # not one call to Stripe in the request
    event = WebhookEvent.objects.get(type="invoice.paid")
    assert (event.status, event.attempts) == (WebhookStatus.RECEIVED, 0)
    assert not Purchase.objects.exists()

    assert run_tasks() == 1

    assert standin.requests("GET", rf"/v1/invoices/{invoice_id}")  # the task re-read it
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WebhookStatus.PROCESSED, 1)
    assert Purchase.objects.filter(stripe_invoice_id=invoice_id).count() == 1


def test_an_event_queued_before_a_newer_one_of_its_object_that_was_applied_is_not_read_again(
    deliver, standin, customer, run_tasks
):
    _, subscription_id, _offer = subscribe(standin, customer)
    deliver("customer.subscription.created", subscription_id, apply=False)  # its worker is slow, say
    standin.subscription_pause(subscription_id)
    deliver("customer.subscription.paused", subscription_id, apply=False)
    older, newer = WebhookEvent.objects.order_by("received_at")

    assert webhook_apply.call(newer.pk) == WebhookStatus.PROCESSED  # a second worker takes the newer first
    reads = len(standin.requests("GET", rf"/v1/subscriptions/{subscription_id}"))
    assert reads == 1 and Subscription.objects.get().status == "paused"

    run_tasks()  # the older one (and the newer one's own queued run) come after

    assert len(standin.requests("GET", rf"/v1/subscriptions/{subscription_id}")) == reads
    assert WebhookEvent.objects.get(pk=older.pk).status == WebhookStatus.PROCESSED
    assert Subscription.objects.get().status == "paused"
