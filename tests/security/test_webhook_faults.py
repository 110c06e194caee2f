"""Webhooks under attack and under failure: forged, stale or tampered deliveries are refused and store
nothing; a real database error while storing an event answers 500 (so Stripe delivers it again); a real
database error at any write of the task that applies it rolls the whole application back, keeps the
failure on the event row, and the sweep's retry applies it exactly once.

tests/billing/test_webhooks.py checks four bad signatures and one monkeypatched error; this sweeps every
write a handler makes, failing it in the database itself (so PostgreSQL's aborted transaction is real)."""

import hashlib
import hmac
import itertools
import json
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Customer
from billing.models import Subscription, WebhookEvent, WebhookStatus
from billing.webhooks import webhook_events_retry
from portal.models import AuditEntry, OutboundEmail
from purchases.models import AccessGrant, Purchase, Receipt, Refund
from tests.billing.conftest import WEBHOOK_SECRET, stripe_event, stripe_signature
from tests.webhooks import commit_callbacks_run

from .sweep import fingerprint, record_figures

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def deliver(body: bytes, signature: str | None = None):
    """The request only: it stores the event and, on commit, queues the task that applies it."""
    client = Client(raise_request_exception=False)
    with commit_callbacks_run():
        return client.post(
            "/stripe/webhook/",
            body,
            content_type="application/json",
            headers={"Stripe-Signature": stripe_signature(body) if signature is None else signature},
        )


def applied_rows():
    return fingerprint(Purchase, Receipt, AccessGrant, Refund, Subscription, AuditEntry, OutboundEmail, Customer)


# --- forged deliveries ---------------------------------------------------------------------------


def _sig(payload: bytes, *, secret=WEBHOOK_SECRET, timestamp=None, scheme="v1", digest=hashlib.sha256) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, digest).hexdigest()
    return f"t={timestamp},{scheme}={mac}"


def forgeries(body: bytes) -> dict[str, tuple[bytes, str]]:
    """Deliveries an attacker without the signing secret can make, from a genuine one they captured."""
    genuine = _sig(body)
    old = int(time.time()) - 3600
    captured_old = _sig(body, timestamp=old)
    return {
        "no signature": (body, ""),
        "garbage": (body, "t=1,v1=deadbeef"),
        "signed with a guessed secret": (body, _sig(body, secret="whsec_guess")),
        "signed with the API key": (body, _sig(body, secret="sk_test_localstripe")),
        "an hour old": (body, captured_old),
        "old signature, fresh timestamp": (body, f"t={int(time.time())},v1={captured_old.split('v1=')[1]}"),
        "v0 scheme only": (body, _sig(body, scheme="v0")),
        "HMAC-SHA1": (body, _sig(body, digest=hashlib.sha1)),
        "no timestamp": (body, "v1=" + genuine.split("v1=")[1]),
        "several wrong signatures": (body, f"{_sig(body, secret='a')},v1={'0' * 64},v1={'f' * 64}"),
        "type changed": (body.replace(b"invoice.paid", b"invoice.payment_failed"), genuine),
        "object id changed": (body.replace(b'"in_', b'"in_X'), genuine),
        "whitespace appended": (body + b" ", genuine),
        "another event's signature": (stripe_event("invoice.paid", {"id": "in_other", "object": "invoice"}), genuine),
        "not UTF-8": (body + b"\xff\xfe", genuine),
        "empty body": (b"", genuine),
    }


def test_forged_stale_and_tampered_deliveries_are_refused_and_store_nothing(world, webhook_secret):
    me, _victim = world
    body = stripe_event("invoice.paid", {"id": me.purchase.stripe_invoice_id, "object": "invoice"})
    before = applied_rows()
    accepted = []
    for name, (payload, signature) in forgeries(body).items():
        response = deliver(payload, signature)
        if response.status_code != 400:
            accepted.append((name, response.status_code))

    assert accepted == []
    assert not WebhookEvent.objects.exists()
    assert applied_rows() == before
    assert deliver(body).status_code == 200  # the control: the genuine delivery is taken
    record_figures("forged webhooks", tried=len(forgeries(body)), accepted=len(accepted))


# --- database errors in the middle of a handler --------------------------------------------------


# The task queue's own bookkeeping and the database caches are not the code under test, and whether a
# cache is written depends on what earlier work (or another test) left in it and on the clock.
NOT_UNDER_TEST = ("django_tasks_database_dbtaskresult", "portal_cache", "portal_session_cache")


class FailNthWrite:
    """Fail the n-th write statement made inside the request's or the task's transactions with a real
    database error."""

    def __init__(self, n: int | None):
        self.n = n
        self.writes = 0
        self.base = len(connection.savepoint_ids)  # the test's own transaction; only count inside the request's

    def __call__(self, execute, sql, params, many, context):
        inside = len(connection.savepoint_ids) > self.base
        if inside and sql.lstrip().upper().startswith(WRITES) and not any(t in sql for t in NOT_UNDER_TEST):
            self.writes += 1
            if self.writes == self.n:
                # A statement the database itself refuses: on PostgreSQL the transaction is really aborted.
                return execute("SELECT * FROM security_sweep_no_such_table", None, False, context)
        return execute(sql, params, many, context)


def test_a_database_error_storing_the_event_answers_500_and_stores_nothing_so_stripe_delivers_again(
    world, gateway, webhook_secret, run_tasks
):
    me, _victim = world
    invoice = gateway.invoice_create(
        customer_id=me.customer.stripe_customer_id,
        amount=1500,
        subscription_id=me.subscription.stripe_subscription_id,
        price_id="price_member",
        charge_id="ch_store",
    )
    body = stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"})
    before = applied_rows()
    with connection.execute_wrapper(FailNthWrite(1)):
        response = deliver(body)

    assert response.status_code == 500
    assert not WebhookEvent.objects.exists() and applied_rows() == before
    assert run_tasks() == 0  # nothing was queued either
    assert deliver(body).status_code == 200  # Stripe's redelivery
    run_tasks()
    assert Purchase.objects.filter(stripe_invoice_id=invoice.id).count() == 1


@pytest.fixture
def scenario(world, gateway, webhook_secret):
    """Three kinds of delivery, each with fresh Stripe objects per call: (name, make a new delivery, its effect)."""
    me, _victim = world
    from billing.services import invoice_record_paid

    counter = iter(range(1, 10_000))

    def paid_invoice():
        invoice = gateway.invoice_create(
            customer_id=me.customer.stripe_customer_id,
            amount=1500,
            subscription_id=me.subscription.stripe_subscription_id,
            price_id="price_member",
            charge_id=f"ch_sweep{next(counter)}",
        )
        body = stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"})
        return body, lambda: Purchase.objects.filter(stripe_invoice_id=invoice.id).count()

    def refunded_charge():
        invoice = gateway.invoice_create(
            customer_id=me.customer.stripe_customer_id,
            amount=1500,
            price_id="price_member",
            charge_id=f"ch_r{next(counter)}",
        )
        purchase = invoice_record_paid(invoice=invoice)
        gateway.refund_create(
            charge_id=invoice.charge_id, payment_intent_id="", amount=500, reason="", idempotency_key=f"r{invoice.id}"
        )
        body = stripe_event("charge.refunded", {"id": invoice.charge_id, "object": "charge"})
        return body, lambda: Refund.objects.filter(purchase=purchase).count()

    def ended_subscription():
        remote = gateway.subscription_create(
            customer_id=me.customer.stripe_customer_id, amount=1500, price_id="price_member"
        )
        from billing.services import subscription_sync

        subscription_sync(remote=remote)
        gateway.subscription_update(subscription_id=remote.id, status="canceled")
        body = stripe_event("customer.subscription.deleted", {"id": remote.id, "object": "subscription"})
        return body, lambda: OutboundEmail.objects.filter(key=f"subscription_canceled:{remote.id}").count()

    return {
        "invoice.paid": paid_invoice,
        "charge.refunded": refunded_charge,
        "subscription.deleted": ended_subscription,
    }


@pytest.mark.parametrize("kind", ["invoice.paid", "charge.refunded", "subscription.deleted"])
def test_a_database_error_at_any_write_of_the_apply_rolls_it_back_and_the_sweep_applies_it_once(
    scenario, kind, run_tasks, time_machine
):
    make = scenario[kind]
    failed_at = []
    for n in itertools.count(1):
        body, effect = make()
        before = applied_rows()
        assert deliver(body).status_code == 200, (kind, n)
        fault = FailNthWrite(n)
        with connection.execute_wrapper(fault):
            run_tasks()  # the worker's run, failing at its n-th write
        if fault.writes < n:  # the apply made fewer writes than n: every one of them has had its fault
            assert effect() == 1, (kind, n)
            break

        assert applied_rows() == before, (kind, n)  # nothing of it was kept
        event = WebhookEvent.objects.get(stripe_event_id=json.loads(body)["id"])
        assert (event.status, event.attempts) == (WebhookStatus.FAILED, 1), (kind, n)
        time_machine.move_to(event.next_attempt_at)
        assert webhook_events_retry(older_than=timedelta(0)) == 1, (kind, n)  # the sweep's retry, when due
        assert deliver(body).status_code == 200, (kind, n)  # and a late duplicate from Stripe
        run_tasks()
        assert effect() == 1, (kind, n)
        failed_at.append(n)
    writes = len(failed_at)
    assert writes >= 3
    record_figures("webhook db faults", kind=kind, writes=writes, injected=len(failed_at), partial=0, duplicates=0)
