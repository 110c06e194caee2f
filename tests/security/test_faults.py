"""Stripe failing at the HTTP layer (timeouts, connection resets, 500, 429, idempotency conflicts),
injected by a loopback server under the real SDK: the customer sees a clear message, our records stay
as they were (or are reconciled by the next webhook), and no refund or cancellation is made twice."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from billing.gateways.base import IdempotencyConflict, PaymentError, TemporarilyUnavailable
from billing.models import Card, Subscription
from billing.services import purchase_refund, subscription_cancel
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from purchases.models import Purchase, Refund
from purchases.services import PurchaseError
from tests.billing.conftest import WEBHOOK_SECRET, stripe_event, stripe_signature
from tests.factories import CustomerFactory, OfferFactory, RecordedPurchaseFactory, SubscriptionFactory
from tests.webhooks import post_and_apply

from .conftest import signed_in
from .faults import CHARGE_ID, CUSTOMER_ID, SUBSCRIPTION_ID, FaultServer, LoopbackStripeGateway
from .sweep import fingerprint, record_figures

pytestmark = pytest.mark.django_db

UNAVAILABLE = str(TemporarilyUnavailable.default_user_message)
NOT_COMPLETED = str(PaymentError.default_user_message)
# name: (mode, write applied before the failure, message shown, attempts the SDK makes with one key)
FAULTS = {
    "timeout": ("timeout", False, UNAVAILABLE, 3),
    "timeout after Stripe applied it": ("timeout", True, UNAVAILABLE, 3),
    "connection reset": ("reset", False, UNAVAILABLE, 3),
    "reset after Stripe applied it": ("reset", True, UNAVAILABLE, 3),
    "500": ("500", False, UNAVAILABLE, 3),
    "429": ("429", False, UNAVAILABLE, 3),
    "idempotency key in use (409)": ("409", False, UNAVAILABLE, 1),
    "idempotency key reused (400)": ("400", False, NOT_COMPLETED, 1),
}
SUBSCRIPTION_PATH = f"/v1/subscriptions/{SUBSCRIPTION_ID}"


@pytest.fixture
def stripe_http(stripe_resources, settings):
    """The loopback Stripe, and every get_gateway() aimed at it through the real SDK."""
    import threading

    server = FaultServer(stripe_resources)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    LoopbackStripeGateway.api_base = server.url
    settings.PAYMENT_GATEWAY = "tests.security.faults.LoopbackStripeGateway"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def subscriber(db, stripe_http):
    """A signed-in customer mirrored from the loopback Stripe: two cards (pm_old the default) and a subscription."""
    SiteSettings.objects.get_or_create(pk=1)
    customer = CustomerFactory(stripe_customer_id=CUSTOMER_ID)
    for pm, last4, default in (("pm_old", "1111", True), ("pm_new", "4242", False)):
        Card.objects.create(
            customer=customer,
            stripe_payment_method_id=pm,
            brand="visa",
            last4=last4,
            exp_month=12,
            exp_year=2031,
            is_default=default,
        )
    SubscriptionFactory(
        customer=customer,
        stripe_subscription_id=SUBSCRIPTION_ID,
        current_period_end=timezone.now() + timedelta(days=30),
    )
    return customer


@pytest.fixture
def deliver(run_tasks):
    """Deliver a signed event as Stripe would, then let the task worker apply it; returns the status code."""

    def post(event_type: str, obj: dict) -> int:
        body = stripe_event(event_type, obj)
        return post_and_apply(
            lambda: Client().post(
                "/stripe/webhook/",
                body,
                content_type="application/json",
                headers={"Stripe-Signature": stripe_signature(body)},
            ),
            run_tasks,
        ).status_code

    return post


def mirror():
    return fingerprint(Subscription, Card, Refund, Purchase, AuditEntry, OutboundEmail)


def shown_messages(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def assert_one_key_per_attempt_series(requests, expected_attempts):
    assert len(requests) == expected_attempts, requests
    assert len({r["idempotency_key"] for r in requests}) == 1  # the SDK's retries reuse the key


@pytest.mark.parametrize("fault", FAULTS, ids=FAULTS)
def test_self_cancel_during_a_fault_says_so_changes_nothing_and_cancels_once(
    deliver, fault, stripe_http, subscriber, caplog
):
    mode, applied, message, attempts = FAULTS[fault]
    client = signed_in(Client(), subscriber.user)
    subscription = Subscription.objects.get()
    stripe_http.inject(mode, "POST", SUBSCRIPTION_PATH, apply=applied)
    before = mirror()

    response = client.post(f"/billing/subscriptions/{subscription.pk}/cancel/")

    assert response.status_code == 302 and response["Location"] == "/billing/"
    assert shown_messages(response) == [message]
    assert escape(message) in client.get("/billing/").content.decode()
    assert mirror() == before
    assert_one_key_per_attempt_series([r for r in stripe_http.requests if r["method"] == "POST"], attempts)

    stripe_http.heal()
    if applied:  # Stripe did cancel; its webhook brings our mirror level
        assert deliver("customer.subscription.updated", {"id": SUBSCRIPTION_ID, "object": "subscription"}) == 200
        assert Subscription.objects.get().cancel_at_period_end
    retry = client.post(f"/billing/subscriptions/{subscription.pk}/cancel/")
    assert retry.status_code == 302
    assert deliver("customer.subscription.updated", {"id": SUBSCRIPTION_ID, "object": "subscription"}) == 200

    assert Subscription.objects.get().cancel_at_period_end
    assert len(stripe_http.writes_to(SUBSCRIPTION_PATH)) == 1  # one cancellation at Stripe
    assert OutboundEmail.objects.filter(kind="subscription_cancel_scheduled").count() == 1
    assert "sk_test_faults" not in caplog.text and "cancel_at_period_end=" not in caplog.text
    record_figures("fault cancel", fault=fault, requests=len(stripe_http.requests), duplicates=0, server_errors=0)


@pytest.mark.parametrize("fault", FAULTS, ids=FAULTS)
def test_making_a_card_the_default_during_a_fault_keeps_the_old_default_and_is_made_once(
    deliver, fault, stripe_http, subscriber, caplog
):
    mode, applied, message, attempts = FAULTS[fault]
    client = signed_in(Client(), subscriber.user)
    new_card = Card.objects.get(stripe_payment_method_id="pm_new")
    stripe_http.inject(mode, "POST", f"/v1/customers/{CUSTOMER_ID}", apply=applied)
    before = mirror()

    response = client.post(f"/billing/cards/{new_card.pk}/default/")

    assert response.status_code == 302
    assert shown_messages(response) == [message]
    assert mirror() == before
    assert Card.objects.get(is_default=True).stripe_payment_method_id == "pm_old"
    defaults = [
        r for r in stripe_http.requests if r["path"] == f"/v1/customers/{CUSTOMER_ID}" and r["method"] == "POST"
    ]
    assert_one_key_per_attempt_series(defaults, attempts)

    stripe_http.heal()
    if applied:  # Stripe changed the default; its customer.updated webhook brings our mirror level
        assert deliver("customer.updated", {"id": CUSTOMER_ID, "object": "customer"}) == 200
        assert Card.objects.get(is_default=True).stripe_payment_method_id == "pm_new"
    retry = client.post(f"/billing/cards/{new_card.pk}/default/")

    assert shown_messages(retry)[-1].startswith("Your card ending in 4242 is now your default card")
    assert Card.objects.get(is_default=True).stripe_payment_method_id == "pm_new"
    assert Card.objects.count() == 2
    assert len(stripe_http.writes_to(f"/v1/customers/{CUSTOMER_ID}")) == 1
    assert "sk_test_faults" not in caplog.text
    record_figures("fault card", fault=fault, requests=len(stripe_http.requests), duplicates=0, server_errors=0)


@pytest.fixture
def paid_purchase(subscriber):
    return RecordedPurchaseFactory(
        customer=subscriber, offer=OfferFactory(price_amount=1500), stripe_charge_id=CHARGE_ID
    )


@pytest.mark.parametrize("fault", FAULTS, ids=FAULTS)
def test_a_refund_during_a_fault_is_refused_clearly_records_nothing_and_is_made_once(
    deliver, fault, stripe_http, paid_purchase, creator, caplog
):
    mode, applied, message, attempts = FAULTS[fault]
    stripe_http.inject(mode, "POST", "/v1/refunds", apply=applied)
    before = mirror()

    with pytest.raises(PaymentError) as error:
        purchase_refund(purchase=paid_purchase, amount=600, reason="Arrived late", by=creator)

    assert error.value.user_message == message
    assert isinstance(error.value, IdempotencyConflict if mode == "400" else TemporarilyUnavailable)
    assert mirror() == before
    assert_one_key_per_attempt_series([r for r in stripe_http.requests if r["method"] == "POST"], attempts)

    stripe_http.heal()
    refund = purchase_refund(purchase=paid_purchase, amount=600, reason="Arrived late", by=creator)  # staff retry
    assert deliver("charge.refunded", {"id": CHARGE_ID, "object": "charge"}) == 200

    assert len(stripe_http.refunds) == 1  # one refund at Stripe
    assert list(Refund.objects.values_list("stripe_refund_id", "amount")) == [(refund.stripe_refund_id, 600)]
    assert Purchase.objects.get().amount_refunded == 600
    assert "sk_test_faults" not in caplog.text and "amount=600" not in caplog.text
    record_figures("fault refund", fault=fault, requests=len(stripe_http.requests), duplicates=0, server_errors=0)


def test_a_refund_stripe_made_before_a_timeout_is_recorded_by_the_webhook_and_not_made_again(
    deliver, stripe_http, paid_purchase, creator
):
    stripe_http.inject("timeout", "POST", "/v1/refunds", apply=True)
    with pytest.raises(TemporarilyUnavailable):
        purchase_refund(purchase=paid_purchase, amount=1500, reason="Cancelled order", by=creator)
    stripe_http.heal()

    assert deliver("charge.refunded", {"id": CHARGE_ID, "object": "charge"}) == 200  # Stripe tells us first
    with pytest.raises(PurchaseError):  # staff trying again find it fully refunded
        purchase_refund(purchase=paid_purchase, amount=1500, reason="Cancelled order", by=creator)

    assert len(stripe_http.refunds) == 1
    assert Refund.objects.count() == 1 and Purchase.objects.get().amount_refunded == 1500


@pytest.mark.parametrize("fault", [name for name in FAULTS if FAULTS[name][0] != "400"])
def test_staff_cancelling_now_during_a_fault_changes_nothing_and_cancels_once(
    deliver, fault, stripe_http, subscriber, creator
):
    mode, applied, message, attempts = FAULTS[fault]
    stripe_http.inject(mode, "DELETE", SUBSCRIPTION_PATH, apply=applied)
    before = mirror()

    with pytest.raises(TemporarilyUnavailable) as error:
        subscription_cancel(subscription=Subscription.objects.get(), by=creator, at_period_end=False)

    assert error.value.user_message == message
    assert mirror() == before
    stripe_http.heal()
    subscription_cancel(subscription=Subscription.objects.get(), by=creator, at_period_end=False)  # staff retry
    assert deliver("customer.subscription.deleted", {"id": SUBSCRIPTION_ID, "object": "subscription"}) == 200

    assert Subscription.objects.get().status == "canceled"
    assert len(stripe_http.writes_to(SUBSCRIPTION_PATH)) == 1  # the key names the act: one cancellation
    assert OutboundEmail.objects.filter(kind="subscription_canceled").count() == 1


def test_pressing_refund_again_after_a_timed_out_partial_refund_does_not_refund_twice(
    deliver, stripe_http, paid_purchase, creator_client
):
    """Stripe made the refund but the answer was lost; its webhook records it; staff, told that nothing
    was changed, press Refund again on the page the error left them on. One refund must be made.

    The idempotency key names the purchase's refunded total, which the webhook has just changed, so the
    second press is a new refund at Stripe.
    """
    from .htmlforms import post_forms

    page = f"/admin/purchases/purchase/{paid_purchase.pk}/refund/"
    [form] = [f for f in post_forms(page, creator_client.get(page).content.decode()) if "amount" in f.names]
    data = {**form.submission(), "amount": "6.00", "reason": "Arrived late"}
    stripe_http.inject("timeout", "POST", "/v1/refunds", apply=True)

    failed = creator_client.post(page, data)

    assert failed.status_code == 200
    assert any(UNAVAILABLE in message for message in shown_messages(failed))
    assert Refund.objects.count() == 0
    stripe_http.heal()
    assert deliver("charge.refunded", {"id": CHARGE_ID, "object": "charge"}) == 200
    assert Refund.objects.count() == 1  # the webhook recorded Stripe's refund
    [again] = [f for f in post_forms(page, failed.content.decode()) if "amount" in f.names]

    creator_client.post(page, again.submission())

    assert [refund["amount"] for refund in stripe_http.refunds] == [600], "the customer was refunded twice"
    assert Purchase.objects.get().amount_refunded == 600
