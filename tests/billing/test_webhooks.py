"""The webhook endpoint and its task: signatures, storage once, an answer before anything is applied,
re-reading from the processor in turn per object, failures kept on the row and retried."""

import threading
import time

import pytest
from django.db import connection
from django.test import Client

from billing.models import Subscription, SubscriptionStatus, WebhookEvent, WebhookStatus
from portal.models import AuditEntry
from purchases.models import Purchase
from tests.webhooks import run_tasks_side_by_side

from .conftest import WEBHOOK_SECRET, stripe_event, stripe_signature

pytestmark = pytest.mark.django_db


def invoice_event(invoice_id, event_id=None):
    return stripe_event("invoice.paid", {"id": invoice_id, "object": "invoice"}, event_id)


@pytest.fixture
def paid_invoice(live_subscription, stripe_customer, gateway):
    return gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        charge_id="ch_paid",
    )


@pytest.mark.parametrize(
    "signature",
    [
        lambda body: stripe_signature(body, secret="whsec_forged"),
        lambda body: stripe_signature(body, timestamp=int(time.time()) - 3600),
        lambda body: "",
        lambda body: "t=1,v1=deadbeef",
    ],
    ids=["forged", "stale", "missing", "garbage"],
)
def test_a_badly_signed_event_writes_nothing(post_webhook, paid_invoice, signature):
    body = invoice_event(paid_invoice.id)
    response = post_webhook(body, signature=signature(body))
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()
    assert not Purchase.objects.exists()


def test_a_tampered_body_writes_nothing(post_webhook, paid_invoice):
    body = invoice_event(paid_invoice.id)
    signature = stripe_signature(body)
    response = post_webhook(body.replace(b"invoice.paid", b"invoice.payment_failed"), signature=signature)
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_without_a_configured_secret_every_event_is_refused(client, settings, paid_invoice):
    settings.STRIPE_WEBHOOK_SECRET = ""
    body = invoice_event(paid_invoice.id)
    response = client.post(
        "/stripe/webhook/", body, content_type="application/json", headers={"Stripe-Signature": stripe_signature(body)}
    )
    assert response.status_code == 400
    assert not WebhookEvent.objects.exists()


def test_a_paid_invoice_event_creates_the_purchase_once_even_when_delivered_twice(post_webhook, paid_invoice):
    body = invoice_event(paid_invoice.id, event_id="evt_twice")
    assert post_webhook(body).status_code == 200
    assert post_webhook(body).status_code == 200
    event = WebhookEvent.objects.get(stripe_event_id="evt_twice")
    assert event.status == WebhookStatus.PROCESSED and event.attempts == 1
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1
    # A second event about the same invoice (Stripe sends invoice.paid and invoice.payment_succeeded) adds nothing.
    assert post_webhook(stripe_event("invoice.payment_succeeded", {"id": paid_invoice.id})).status_code == 200
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


def test_a_replayed_paid_invoice_event_does_not_count_the_payment_twice(
    post_webhook, paid_invoice, live_subscription, stripe_customer, gateway
):
    second = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
    )
    assert post_webhook(invoice_event(paid_invoice.id)).status_code == 200
    assert post_webhook(invoice_event(second.id)).status_code == 200
    # Replayed from the dashboard: a new event id about an invoice already recorded.
    assert post_webhook(invoice_event(second.id, event_id="evt_replayed")).status_code == 200

    assert Subscription.objects.get(pk=live_subscription.pk).payments_recorded == 2


def test_unknown_event_types_are_stored_and_answered_200(post_webhook, db):
    assert post_webhook(stripe_event("balance.available", {"id": "bal_1", "object": "balance"})).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookStatus.IGNORED


def test_the_object_is_read_afresh_so_late_deliveries_end_in_the_processors_state(
    post_webhook, live_subscription, gateway
):
    sid = live_subscription.stripe_subscription_id
    stale_copy = {"id": sid, "object": "subscription", "status": "active", "cancel_at_period_end": False}
    gateway.subscription_update(subscription_id=sid, status="canceled", cancel_at_period_end=False)
    # The "deleted" event arrives first, then a stale "updated" event whose copy still says active.
    post_webhook(stripe_event("customer.subscription.deleted", {**stale_copy, "status": "canceled"}))
    post_webhook(stripe_event("customer.subscription.updated", stale_copy))
    assert Subscription.objects.get(pk=live_subscription.pk).status == SubscriptionStatus.CANCELED


def test_a_failing_apply_rolls_back_keeps_the_error_on_the_row_and_a_retry_applies_it_once(
    post_webhook, paid_invoice, subscription_offer, admin_client
):
    subscription_offer.stripe_price_id = "price_renamed"  # no offer matches the invoice's price yet
    subscription_offer.save()
    body = invoice_event(paid_invoice.id, event_id="evt_fail")

    response = post_webhook(body)

    assert response.status_code == 200  # the event is ours now; the sweep and admin retry it, not Stripe
    event = WebhookEvent.objects.get(stripe_event_id="evt_fail")
    assert event.status == WebhookStatus.FAILED and event.attempts == 1
    assert "price_member" in event.error
    assert not Purchase.objects.exists()
    assert not AuditEntry.objects.filter(action__in=["purchase.recorded", "access.granted"]).exists()

    subscription_offer.stripe_price_id = "price_member"
    subscription_offer.save()
    response = admin_client.post(
        "/admin/billing/webhookevent/", {"action": "retry", "_selected_action": [event.pk]}, follow=True
    )
    assert "1 event applied." in response.content.decode()
    event.refresh_from_db()
    assert event.status == WebhookStatus.PROCESSED and event.attempts == 2 and event.error == ""
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1
    # Stripe's own redelivery of the now-applied event changes nothing.
    assert post_webhook(body).status_code == 200
    assert Purchase.objects.count() == 1


def test_a_redelivery_of_a_failed_event_retries_it(post_webhook, paid_invoice, subscription_offer):
    subscription_offer.stripe_price_id = "price_other"
    subscription_offer.save()
    body = invoice_event(paid_invoice.id, event_id="evt_redeliver")
    assert post_webhook(body).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookStatus.FAILED
    subscription_offer.stripe_price_id = "price_member"
    subscription_offer.save()
    assert post_webhook(body).status_code == 200
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


def test_a_processor_timeout_while_applying_is_recorded_and_retried(post_webhook, paid_invoice, gateway, monkeypatch):
    from billing.gateways.base import TemporarilyUnavailable

    original = gateway.__class__.invoice_retrieve

    def timeout(self, **kwargs):
        raise TemporarilyUnavailable("timeout")

    monkeypatch.setattr(gateway.__class__, "invoice_retrieve", timeout)
    body = invoice_event(paid_invoice.id, event_id="evt_timeout")
    assert post_webhook(body).status_code == 200
    assert WebhookEvent.objects.get().error.startswith("TemporarilyUnavailable")
    monkeypatch.setattr(gateway.__class__, "invoice_retrieve", original)
    assert post_webhook(body).status_code == 200
    assert Purchase.objects.count() == 1


def test_a_database_error_in_the_middle_of_a_handler_rolls_back_everything(post_webhook, paid_invoice, monkeypatch):
    from django.db import DatabaseError

    import purchases.services

    def broken_receipt(**kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr(purchases.services, "receipt_issue", broken_receipt)
    body = invoice_event(paid_invoice.id, event_id="evt_db")
    assert post_webhook(body).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookStatus.FAILED
    assert not Purchase.objects.exists()  # the purchase written before the failure rolled back too
    monkeypatch.undo()
    assert post_webhook(body).status_code == 200
    assert Purchase.objects.count() == 1


def test_payment_method_events_resync_the_customers_cards(post_webhook, stripe_customer, gateway):
    from billing.services import card_set_default

    card_set_default(customer=stripe_customer, payment_method_id="pm_a", by=None)
    card_set_default(customer=stripe_customer, payment_method_id="pm_b", by=None)
    gateway.cards.pop("pm_a")
    body = stripe_event(
        "payment_method.detached",
        {"id": "pm_a", "object": "payment_method", "customer": None},
    )
    assert post_webhook(body).status_code == 200
    assert list(stripe_customer.cards.values_list("stripe_payment_method_id", flat=True)) == ["pm_b"]


def test_charge_refunded_records_the_refund(post_webhook, paid_invoice, gateway):
    from billing.services import invoice_record_paid

    invoice_record_paid(invoice=paid_invoice)
    gateway.refund_create(charge_id="ch_paid", payment_intent_id="", amount=1500, reason="", idempotency_key="r")
    assert post_webhook(stripe_event("charge.refunded", {"id": "ch_paid", "object": "charge"})).status_code == 200
    assert Purchase.objects.get().status == "refunded"


@pytest.mark.django_db(transaction=True)
def test_five_copies_at_once_have_one_effect(paid_invoice, webhook_secret):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent deliveries need PostgreSQL's row locks (CI runs the suite on PostgreSQL too)")
    body = invoice_event(paid_invoice.id, event_id="evt_five")
    signature = stripe_signature(body, secret=WEBHOOK_SECRET)
    statuses = []
    barrier = threading.Barrier(5)

    def deliver():
        barrier.wait()
        try:
            response = Client().post(
                "/stripe/webhook/", body, content_type="application/json", headers={"Stripe-Signature": signature}
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 5
    assert WebhookEvent.objects.filter(stripe_event_id="evt_five").count() == 1
    assert not Purchase.objects.exists()  # nothing is applied in the request
    run_tasks_side_by_side(2)
    assert WebhookEvent.objects.get(stripe_event_id="evt_five").status == WebhookStatus.PROCESSED
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_created_and_updated_of_a_new_subscription_applied_at_once_make_one_row_and_no_error(
    stripe_customer, subscription_offer, gateway, webhook_secret
):
    if connection.vendor != "postgresql":
        pytest.skip("concurrent deliveries need PostgreSQL's row locks (CI runs the suite on PostgreSQL too)")
    remote = gateway.subscription_create(
        customer_id=stripe_customer.stripe_customer_id, amount=1500, price_id="price_member"
    )
    bodies = [
        stripe_event(kind, {"id": remote.id, "object": "subscription"})
        for kind in ("customer.subscription.created", "customer.subscription.updated") * 2
    ]
    statuses = []
    barrier = threading.Barrier(len(bodies))

    def deliver(body):
        barrier.wait()
        try:
            response = Client().post(
                "/stripe/webhook/",
                body,
                content_type="application/json",
                headers={"Stripe-Signature": stripe_signature(body, secret=WEBHOOK_SECRET)},
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * len(bodies)
    run_tasks_side_by_side(len(bodies))  # four workers take the four events at the same moment

    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookStatus.PROCESSED}
    assert Subscription.objects.filter(stripe_subscription_id=remote.id).count() == 1
    assert AuditEntry.objects.filter(action="subscription.created").count() == 1


def test_the_sweep_retries_an_apply_that_failed_once_its_cause_is_gone(
    post_webhook, paid_invoice, gateway, monkeypatch, time_machine
):
    from datetime import timedelta
    from io import StringIO

    from django.core.management import call_command
    from django.utils import timezone

    from billing.gateways.base import TemporarilyUnavailable

    original = type(gateway).invoice_retrieve

    def stripe_down(self, *, invoice_id):
        raise TemporarilyUnavailable("Stripe did not answer")

    monkeypatch.setattr(type(gateway), "invoice_retrieve", stripe_down)
    assert post_webhook(invoice_event(paid_invoice.id, event_id="evt_swept")).status_code == 200
    assert WebhookEvent.objects.get(stripe_event_id="evt_swept").status == WebhookStatus.FAILED
    time_machine.move_to(timezone.now() + timedelta(minutes=11))  # its first retry is due after 10 minutes
    monkeypatch.setattr(type(gateway), "invoice_retrieve", original)  # Stripe is back

    out = StringIO()
    call_command("sweep", stdout=out)

    assert "1 Stripe event(s) applied" in out.getvalue()
    assert WebhookEvent.objects.get(stripe_event_id="evt_swept").status == WebhookStatus.PROCESSED
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


def test_the_request_stores_and_queues_and_the_effect_comes_only_with_the_task(post_webhook, paid_invoice, run_tasks):
    response = post_webhook(invoice_event(paid_invoice.id, event_id="evt_queued"), apply=False)

    assert response.status_code == 200
    event = WebhookEvent.objects.get(stripe_event_id="evt_queued")
    assert (event.status, event.attempts, event.processed_at) == (WebhookStatus.RECEIVED, 0, None)
    assert not Purchase.objects.exists()
    assert run_tasks() == 1
    assert WebhookEvent.objects.get(pk=event.pk).status == WebhookStatus.PROCESSED
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


def test_the_task_run_again_after_a_crash_applies_nothing_twice(post_webhook, paid_invoice, run_tasks):
    from billing.tasks import webhook_apply

    post_webhook(invoice_event(paid_invoice.id, event_id="evt_again"))
    event = WebhookEvent.objects.get(stripe_event_id="evt_again")
    webhook_apply.enqueue(event.pk)  # the queue hands it out again (its first worker died before acking)

    assert run_tasks() == 1
    event.refresh_from_db()
    assert (event.status, event.attempts) == (WebhookStatus.PROCESSED, 1)
    assert Purchase.objects.count() == 1
    assert AuditEntry.objects.filter(action="purchase.recorded").count() == 1


def test_an_event_whose_task_could_not_be_queued_is_answered_200_and_applied_by_the_sweep(
    post_webhook, paid_invoice, monkeypatch, caplog
):
    from datetime import timedelta
    from types import SimpleNamespace

    import billing.tasks
    from billing.webhooks import webhook_events_retry

    def queue_down(*args, **kwargs):
        raise ConnectionError("the queue is unreachable")

    monkeypatch.setattr(billing.tasks, "webhook_apply", SimpleNamespace(enqueue=queue_down))
    assert post_webhook(invoice_event(paid_invoice.id, event_id="evt_unqueued")).status_code == 200
    assert WebhookEvent.objects.get().status == WebhookStatus.RECEIVED
    assert "could not be queued" in caplog.text

    assert webhook_events_retry(older_than=timedelta(0)) == 1
    assert WebhookEvent.objects.get().status == WebhookStatus.PROCESSED
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_events_of_one_subscription_apply_in_turn_so_the_one_read_last_is_written_last(
    live_subscription, gateway, webhook_secret
):
    """The first worker's read from Stripe is slow and sees the subscription active; meanwhile it is
    cancelled and a second worker takes the cancellation. Without a turn per object the second would
    write "canceled" first and the first would then write its stale "active" over it."""
    if connection.vendor != "postgresql":
        pytest.skip("appliers side by side need PostgreSQL's locks (CI runs the suite on PostgreSQL too)")
    from billing.tasks import webhook_apply

    sid = live_subscription.stripe_subscription_id
    original = type(gateway).subscription_retrieve
    first_read, answer = threading.Event(), threading.Event()

    def slow_first_read(self, *, subscription_id):
        remote = original(self, subscription_id=subscription_id)
        if not first_read.is_set():
            first_read.set()
            answer.wait(10)  # Stripe's answer (read before the cancellation) is on its way
        return remote

    type(gateway).subscription_retrieve = slow_first_read
    try:
        for kind in ("customer.subscription.updated", "customer.subscription.deleted"):
            body = stripe_event(kind, {"id": sid, "object": "subscription"})
            Client().post(
                "/stripe/webhook/",
                body,
                content_type="application/json",
                headers={"Stripe-Signature": stripe_signature(body, secret=WEBHOOK_SECRET)},
            )
        updated, deleted = WebhookEvent.objects.order_by("received_at")

        def apply(event):
            try:
                webhook_apply.call(event.pk)
            finally:
                connection.close()

        first = threading.Thread(target=apply, args=(updated,))
        first.start()
        assert first_read.wait(10)
        gateway.subscription_update(subscription_id=sid, status="canceled", cancel_at_period_end=False)
        second = threading.Thread(target=apply, args=(deleted,))
        second.start()
        second.join(timeout=1)
        assert second.is_alive()  # it waits for the first to finish with the subscription
        answer.set()
        first.join(timeout=10)
        second.join(timeout=10)
    finally:
        type(gateway).subscription_retrieve = original
        answer.set()

    assert Subscription.objects.get(pk=live_subscription.pk).status == SubscriptionStatus.CANCELED
    assert set(WebhookEvent.objects.values_list("status", flat=True)) == {WebhookStatus.PROCESSED}


# Retries: backoff for three days, as Stripe retries a delivery ---------------------------------------


@pytest.fixture
def stripe_down(monkeypatch):
    """Stripe answers nothing (re-reads time out) until `stripe_down["on"] = False`."""
    from billing.gateways.base import TemporarilyUnavailable
    from billing.gateways.fake import FakeGateway

    down = {"on": True}
    retrieve = FakeGateway.invoice_retrieve

    def invoice_retrieve(self, **kwargs):
        if down["on"]:
            raise TemporarilyUnavailable("Stripe did not answer")
        return retrieve(self, **kwargs)

    monkeypatch.setattr(FakeGateway, "invoice_retrieve", invoice_retrieve)
    return down


def minutes(duration) -> int:
    from datetime import timedelta

    return round(duration / timedelta(minutes=1))


def sweep_events() -> str:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("sweep", stdout=out)
    return out.getvalue()


def test_a_failed_event_is_retried_by_the_sweep_only_when_due_with_waits_doubling_up_to_three_days_then_gives_up(
    post_webhook, paid_invoice, stripe_down, time_machine, caplog, admin_client
):
    import logging
    from datetime import timedelta

    from django.utils import timezone

    post_webhook(invoice_event(paid_invoice.id, event_id="evt_outage"))
    event = WebhookEvent.objects.get()
    received = event.received_at
    assert (event.status, event.attempts) == (WebhookStatus.FAILED, 1)
    assert minutes(event.next_attempt_at - received) == 10
    time_machine.move_to(received + timedelta(minutes=9))
    assert "0 Stripe event(s) applied" in sweep_events()
    assert WebhookEvent.objects.get().attempts == 1  # not due: left alone

    attempted_at = [received]
    with caplog.at_level(logging.ERROR, logger="billing.webhooks"):
        while (due := WebhookEvent.objects.get().next_attempt_at) is not None:
            time_machine.move_to(due)
            sweep_events()
            attempted_at.append(timezone.now())
    waits = [minutes(b - a) for a, b in zip(attempted_at, attempted_at[1:], strict=False)]
    assert waits[:7] == [10, 20, 40, 80, 160, 320, 640]
    assert set(waits[7:]) == {12 * 60}
    event = WebhookEvent.objects.get()
    assert event.status == WebhookStatus.FAILED and event.attempts == len(attempted_at) == 12
    assert received + timedelta(days=2, hours=12) < attempted_at[-1] <= received + timedelta(days=3)
    gave_up = [r.getMessage() for r in caplog.records if "gave up" in r.getMessage()]
    assert len(gave_up) == 1 and gave_up[0].startswith("webhook evt_outage (invoice.paid): retries gave up after 12")
    assert [r.levelname for r in caplog.records if "gave up" in r.getMessage()] == ["ERROR"]

    time_machine.move_to(timezone.now() + timedelta(days=1))
    assert "0 Stripe event(s) applied" in sweep_events()  # given up: it waits for a person
    listed = admin_client.get("/admin/billing/webhookevent/", {"retries": "gave_up"}).content.decode()
    assert "evt_outage" in listed
    assert "evt_outage" not in admin_client.get("/admin/billing/webhookevent/", {"retries": "waiting"}).content.decode()

    stripe_down["on"] = False
    response = admin_client.post(
        "/admin/billing/webhookevent/", {"action": "retry", "_selected_action": [event.pk]}, follow=True
    )
    assert "1 event applied." in response.content.decode()
    event.refresh_from_db()
    assert (event.status, event.next_attempt_at) == (WebhookStatus.PROCESSED, None)
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1


def test_an_event_that_failed_through_a_day_long_outage_is_applied_once_stripe_answers_again(
    post_webhook, paid_invoice, stripe_down, time_machine
):
    from datetime import timedelta

    from django.utils import timezone

    received = timezone.now()
    post_webhook(invoice_event(paid_invoice.id, event_id="evt_day"))
    while timezone.now() < received + timedelta(hours=30):  # the sweep every five minutes
        time_machine.move_to(timezone.now() + timedelta(minutes=5))
        sweep_events()
    assert WebhookEvent.objects.get().status == WebhookStatus.FAILED
    stripe_down["on"] = False

    time_machine.move_to(WebhookEvent.objects.get().next_attempt_at)
    assert "1 Stripe event(s) applied" in sweep_events()
    event = WebhookEvent.objects.get()
    assert (event.status, event.next_attempt_at, event.error) == (WebhookStatus.PROCESSED, None, "")
    assert Purchase.objects.filter(stripe_invoice_id=paid_invoice.id).count() == 1
