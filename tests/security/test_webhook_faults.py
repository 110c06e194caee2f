"""Webhooks under attack and under failure: forged, stale or tampered deliveries are refused and store
nothing; a real database error at any write of a handler rolls the whole delivery back, answers 500,
and the redelivery applies it exactly once.

tests/billing/test_webhooks.py checks four bad signatures and one monkeypatched error; this sweeps every
write a handler makes, failing it in the database itself (so PostgreSQL's aborted transaction is real)."""

import hashlib
import hmac
import json
import time

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Customer
from billing.models import Subscription, WebhookEvent, WebhookStatus
from portal.models import AuditEntry, OutboundEmail
from purchases.models import AccessGrant, Purchase, Receipt, Refund
from tests.billing.conftest import WEBHOOK_SECRET, stripe_event, stripe_signature

from .sweep import fingerprint, record_figures

pytestmark = pytest.mark.django_db

WRITES = ("INSERT", "UPDATE", "DELETE")


def deliver(body: bytes, signature: str | None = None):
    client = Client(raise_request_exception=False)
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


class FailNthWrite:
    """Fail the n-th write statement made inside the request's transactions with a real database error."""

    def __init__(self, n: int | None):
        self.n = n
        self.writes = 0
        self.base = len(connection.savepoint_ids)  # the test's own transaction; only count inside the request's

    def __call__(self, execute, sql, params, many, context):
        inside = len(connection.savepoint_ids) > self.base
        if inside and sql.lstrip().upper().startswith(WRITES):
            self.writes += 1
            if self.writes == self.n:
                # A statement the database itself refuses: on PostgreSQL the transaction is really aborted.
                return execute("SELECT * FROM security_sweep_no_such_table", None, False, context)
        return execute(sql, params, many, context)


def _count_writes(deliver_once) -> int:
    counter = FailNthWrite(None)
    with connection.execute_wrapper(counter):
        assert deliver_once().status_code == 200
    return counter.writes


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
def test_a_database_error_at_any_write_rolls_the_delivery_back_and_the_retry_applies_it_once(scenario, kind):
    make = scenario[kind]
    body, effect = make()
    writes = _count_writes(lambda: deliver(body))  # a clean run: how many writes the delivery makes
    assert writes >= 3 and effect() == 1
    failed_at = []
    for n in range(1, writes + 1):
        body, effect = make()
        before = applied_rows()
        with connection.execute_wrapper(FailNthWrite(n)):
            response = deliver(body)

        assert response.status_code == 500, (kind, n)  # so Stripe delivers it again
        assert applied_rows() == before, (kind, n)  # nothing of it was kept
        event = WebhookEvent.objects.filter(stripe_event_id=json.loads(body)["id"]).first()
        assert event is None or event.status == WebhookStatus.FAILED, (kind, n)
        assert deliver(body).status_code == 200, (kind, n)  # Stripe's retry
        assert deliver(body).status_code == 200, (kind, n)  # and a duplicate of it
        assert effect() == 1, (kind, n)
        failed_at.append(n)
    record_figures("webhook db faults", kind=kind, writes=writes, injected=len(failed_at), partial=0, duplicates=0)
