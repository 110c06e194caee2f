"""The layer that makes localstripe answer in the current Stripe shape (portal/localstripe_current.py).

Everything goes through the real SDK (our gateway, or its client for what the gateway never asks),
so a field the pinned API version reads and the layer does not supply fails here.
"""

import contextlib
import logging
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing.gateways.base import Address, CustomerDetails, InvalidRequest, NotFound
from billing.gateways.stripe import API_VERSION, StripeGateway, event_construct
from tests.servers import free_port, loopback_server

DETAILS = CustomerDetails(
    name="Dana Demo",
    email="dana@example.com",
    address=Address(line1="1 Demo Street", city="London", postal_code="EC1A 1BB", country="GB"),
    tax_id_type="gb_vat",  # a type localstripe refuses
    tax_id_value="GB980780684",
)
WEBHOOK_SECRET = "whsec_test_layer"


@contextlib.contextmanager
def launched(state, *, from_scratch: bool):
    """Our launcher on a free port with `state` as its file; yields its URL and a gateway talking to it."""
    port = free_port()
    command = [sys.executable, "-m", "portal.localstripe", "--port", str(port), "--state", str(state)]
    with loopback_server(command + (["--from-scratch"] if from_scratch else []), port=port, name="localstripe") as url:
        yield url, StripeGateway(api_key="sk_test_localstripe", api_base=url)


def subscribed(gateway: StripeGateway, *, amount: int = 1200):
    """A customer with a default card and an active monthly subscription; returns (customer id, subscription)."""
    customer = gateway.customer_create(details=DETAILS, idempotency_key=f"customer-{uuid.uuid4().hex}")
    gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id="pm_card_visa", subscription_ids=[], idempotency_key="card"
    )
    plan_id = gateway.demo_plan_ensure(
        plan_id=f"plan-{uuid.uuid4().hex[:12]}",
        product_name="Membership",
        amount=amount,
        currency="gbp",
        interval="month",
    )
    subscription = gateway.demo_subscription_create(customer_id=customer.id, plan_id=plan_id, idempotency_key="sub")
    return customer.id, subscription


def tax_ids(gateway: StripeGateway, customer_id: str) -> list[tuple[str, str]]:
    return [(t.type, t.value) for t in gateway.client.v1.customers.tax_ids.list(customer_id).data]


def test_what_the_layer_keeps_survives_a_restart_and_goes_with_from_scratch(tmp_path):
    state = tmp_path / "state.pickle"
    resumes = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    with launched(state, from_scratch=True) as (_, gateway):
        customer_id, subscription = subscribed(gateway)
        gateway.subscription_pause(subscription_id=subscription.id, resumes_at=resumes, idempotency_key="pause")
        card = gateway.card_attach_as_default(
            customer_id=customer_id,
            payment_method_id="pm_card_visa",
            subscription_ids=[subscription.id],
            idempotency_key="c2",
        )
        payment_intent = gateway.invoice_retrieve(invoice_id=subscription.latest_invoice_id).payment_intent_id
        refund = gateway.refund_create(
            charge_id="", payment_intent_id=payment_intent, amount=100, reason="duplicate", idempotency_key="r"
        )

    with launched(state, from_scratch=False) as (_, gateway):
        remote = gateway.subscription_retrieve(subscription_id=subscription.id)
        assert remote.paused and remote.resumes_at == resumes and remote.default_payment_method_id == card.id
        assert tax_ids(gateway, customer_id) == [("gb_vat", "GB980780684")]
        assert gateway.client.v1.refunds.retrieve(refund.id).reason == "duplicate"

    with launched(state, from_scratch=True) as (_, gateway):
        with pytest.raises(NotFound):
            gateway.subscription_retrieve(subscription_id=subscription.id)


class Collector(BaseHTTPRequestHandler):
    """A webhook endpoint that keeps what it is sent."""

    received: list[tuple[bytes, str]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((body, self.headers.get("Stripe-Signature", "")))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook_endpoint():
    Collector.received = []
    endpoint = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=endpoint.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{endpoint.server_port}/", Collector.received
    finally:
        endpoint.shutdown()
        endpoint.server_close()


def events_of(received, kind: str, *, wait: float = 10.0) -> list[dict]:
    """The events of this type delivered so far (localstripe sends each a second after it happens)."""
    deadline = time.monotonic() + wait
    while True:
        found = [
            event.payload
            for event in (event_construct(payload=body, signature=sig, secret=WEBHOOK_SECRET) for body, sig in received)
            if event.type == kind
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_the_events_sent_to_a_webhook_carry_objects_in_the_current_shape(tmp_path, webhook_endpoint):
    url, received = webhook_endpoint
    with launched(tmp_path / "state.pickle", from_scratch=True) as (localstripe, gateway):
        config = urllib.parse.urlencode({"url": url, "secret": WEBHOOK_SECRET}).encode()
        urllib.request.urlopen(f"{localstripe}/_config/webhooks/test", config, timeout=5).close()
        _, subscription = subscribed(gateway)

        [created] = events_of(received, "customer.subscription.created")
        [paid] = events_of(received, "invoice.payment_succeeded")
        gateway.subscription_pause(subscription_id=subscription.id, resumes_at=None, idempotency_key="pause")
        [updated] = events_of(received, "customer.subscription.updated")

    assert created["api_version"] == API_VERSION
    item = created["data"]["object"]["items"]["data"][0]
    assert item["price"]["id"] == subscription.price_id and item["price"]["unit_amount"] == 1200
    assert item["current_period_end"] and "current_period_end" not in created["data"]["object"]
    invoice = paid["data"]["object"]
    assert invoice["parent"]["subscription_details"]["subscription"] == subscription.id
    assert invoice["lines"]["data"][0]["pricing"]["price_details"]["price"] == subscription.price_id
    assert "charge" not in invoice and "subscription" not in invoice
    assert updated["data"]["object"]["pause_collection"] == {"behavior": "void", "resumes_at": None}


def test_tax_id_types_localstripe_refuses_are_kept_replaced_and_a_bogus_one_is_still_refused(stripe_gateway, caplog):
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="tax-customer")
    assert tax_ids(stripe_gateway, customer.id) == [("gb_vat", "GB980780684")]

    swiss = CustomerDetails(
        name="Dana Demo", email="dana@example.com", address=Address(country="CH"), tax_id_type="ch_vat",
        tax_id_value="CHE-123.456.788 MWST",
    )  # fmt: skip
    stripe_gateway.customer_update(customer_id=customer.id, details=swiss, idempotency_key="tax-ch")
    assert tax_ids(stripe_gateway, customer.id) == [("ch_vat", "CHE-123.456.788 MWST")]

    danish = CustomerDetails(
        name="Dana Demo", email="dana@example.com", tax_id_type="eu_vat", tax_id_value="DK13585628"
    )
    stripe_gateway.customer_update(customer_id=customer.id, details=danish, idempotency_key="tax-dk")
    assert tax_ids(stripe_gateway, customer.id) == [("eu_vat", "DK13585628")]  # too short for localstripe

    bogus = CustomerDetails(name="Dana Demo", email="dana@example.com", tax_id_type="VAT number", tax_id_value="123")
    with caplog.at_level(logging.WARNING):
        stripe_gateway.customer_update(customer_id=customer.id, details=bogus, idempotency_key="tax-bogus")
    assert "processor refused tax ID type VAT number" in caplog.text
    assert tax_ids(stripe_gateway, customer.id) == []


def test_a_subscription_that_is_not_paused_cannot_be_resumed_or_updated_after_it_ended(stripe_gateway):
    _, subscription = subscribed(stripe_gateway)
    with pytest.raises(InvalidRequest):
        stripe_gateway.subscription_resume(subscription_id=subscription.id, status_paused=True, idempotency_key="r")

    ended = stripe_gateway.subscription_cancel_now(subscription_id=subscription.id, idempotency_key="end")
    assert ended.status == "canceled" and ended.canceled_at is not None
    with pytest.raises(InvalidRequest):
        stripe_gateway.subscription_pause(subscription_id=subscription.id, resumes_at=None, idempotency_key="p")


def test_a_pause_that_has_reached_its_resume_date_is_over(stripe_gateway):
    _, subscription = subscribed(stripe_gateway)
    soon = datetime.now(UTC) + timedelta(seconds=3)
    paused = stripe_gateway.subscription_pause(subscription_id=subscription.id, resumes_at=soon, idempotency_key="p")
    assert paused.paused and paused.resumes_at is not None

    time.sleep(max(0.0, paused.resumes_at.timestamp() - time.time()) + 1)

    assert not stripe_gateway.subscription_retrieve(subscription_id=subscription.id).paused


def test_a_refund_is_refused_beyond_what_is_left_and_with_a_reason_stripe_does_not_know(stripe_gateway):
    _, subscription = subscribed(stripe_gateway, amount=900)
    payment_intent = stripe_gateway.invoice_retrieve(invoice_id=subscription.latest_invoice_id).payment_intent_id

    with pytest.raises(InvalidRequest):
        stripe_gateway.refund_create(
            charge_id="", payment_intent_id=payment_intent, amount=901, reason="", idempotency_key="too-much"
        )
    with pytest.raises(InvalidRequest):
        stripe_gateway._call(
            "refund_create",
            lambda: stripe_gateway.client.v1.refunds.create(
                params={"payment_intent": payment_intent, "reason": "whim"}
            ),
        )
    refund = stripe_gateway.refund_create(
        charge_id="", payment_intent_id=payment_intent, amount=900, reason="fraudulent", idempotency_key="all"
    )
    assert refund.amount == 900 and stripe_gateway.refunds_list(payment_intent_id=payment_intent) == [refund]


@pytest.mark.parametrize(
    "number, brand",
    [("4242424242424242", "visa"), ("5555555555554444", "mastercard"), ("6011111111111117", "discover")],
)
def test_a_card_is_named_by_its_network(stripe_gateway, number, brand):
    method = stripe_gateway.client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )

    card = stripe_gateway.card_retrieve(payment_method_id=method.id)

    assert (card.brand, card.last4, card.exp_month, card.exp_year) == (brand, number[-4:], 12, 2031)


def test_plans_are_also_prices_and_an_invoice_lists_its_payments(stripe_gateway):
    _, subscription = subscribed(stripe_gateway, amount=1500)
    v1 = stripe_gateway.client.v1

    price = v1.prices.retrieve(subscription.price_id)
    assert (price.unit_amount, price.currency, price.recurring.interval) == (1500, "gbp", "month")
    assert subscription.price_id in [p.id for p in v1.prices.list(params={"limit": 100}).data]
    [payment] = v1.invoice_payments.list(params={"invoice": subscription.latest_invoice_id}).data
    invoice = stripe_gateway.invoice_retrieve(invoice_id=subscription.latest_invoice_id)
    assert (payment.status, payment.amount_paid) == ("paid", 1500)
    assert payment.payment.payment_intent == invoice.payment_intent_id


def test_the_billing_portal_page_says_there_is_none_and_leads_back(stripe_gateway, localstripe_url):
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="portal-customer")
    back = "http://127.0.0.1:8000/billing/?from=portal&x=<1>"

    url = stripe_gateway.billing_portal_url(customer_id=customer.id, return_url=back)

    assert url.startswith(f"{localstripe_url}/billing.stripe.com/p/session/bps_")
    with urllib.request.urlopen(url, timeout=5) as page:  # a browser's request: no API key
        text = page.read().decode()
    assert "localstripe has no billing portal" in text
    assert '<a href="http://127.0.0.1:8000/billing/?from=portal&amp;x=&lt;1&gt;">Back</a>' in text
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"{localstripe_url}/billing.stripe.com/p/session/bps_nosuch", timeout=5)
    assert missing.value.code == 404


def _outward_address() -> str | None:
    """This machine's address on its network (no packet is sent), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("198.51.100.1", 9))  # a documentation address: only the route to it is looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_localstripe_listens_on_loopback_only(localstripe_url):
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address besides loopback")
    port = urllib.parse.urlsplit(localstripe_url).port
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    with pytest.raises(OSError):
        socket.create_connection((address, port), timeout=2).close()


def test_an_update_localstripe_cannot_apply_is_refused_whole_instead_of_failing(stripe_gateway):
    _, subscription = subscribed(stripe_gateway)
    v1 = stripe_gateway.client.v1

    with pytest.raises(InvalidRequest):  # not a 500, and nothing of it applied
        stripe_gateway._call(
            "subscription_update",
            lambda: v1.subscriptions.update(
                subscription.id, params={"billing_cycle_anchor": "now", "metadata": {"seen": "yes"}}
            ),
        )

    assert v1.subscriptions.retrieve(subscription.id).metadata.to_dict() == {}


def test_a_change_to_a_yearly_price_is_previewed_then_made_with_its_proration_params(stripe_gateway):
    _, subscription = subscribed(stripe_gateway, amount=1500)
    yearly = stripe_gateway.demo_plan_ensure(
        plan_id=f"plan-{uuid.uuid4().hex[:12]}",
        product_name="Membership",
        amount=15000,
        currency="gbp",
        interval="year",
    )
    moment = datetime.now(UTC).replace(microsecond=0)

    preview = stripe_gateway.subscription_price_change_preview(
        subscription_id=subscription.id, item_id=subscription.item_id, price_id=yearly, proration_date=moment
    )
    assert yearly in preview.price_ids and 0 < preview.amount_due <= 15000
    assert stripe_gateway.subscription_retrieve(subscription_id=subscription.id).price_id == subscription.price_id

    changed = stripe_gateway.subscription_price_change(
        subscription_id=subscription.id,
        item_id=subscription.item_id,
        price_id=yearly,
        proration_date=moment,
        idempotency_key=f"change-{uuid.uuid4().hex}",
    )
    assert (changed.price_id, changed.amount, changed.interval) == (yearly, 15000, "year")


def test_the_renewal_is_previewed_for_the_demos_reminders(stripe_gateway):
    _, subscription = subscribed(stripe_gateway, amount=1500)

    preview = stripe_gateway.subscription_renewal_preview(subscription_id=subscription.id)

    assert (preview.amount_due, preview.currency) == (1500, "gbp")
    assert subscription.price_id in preview.price_ids


def test_a_cancellation_keeps_its_reason_and_a_coupon_is_redeemed_beside_the_discounts_there(stripe_gateway):
    _, subscription = subscribed(stripe_gateway)
    coupon = f"STAY{uuid.uuid4().hex[:8]}"
    stripe_gateway.client.v1.coupons.create(
        params={"id": coupon, "percent_off": 50, "duration": "repeating", "duration_in_months": 3}
    )

    kept = stripe_gateway.subscription_coupon_add(
        subscription_id=subscription.id, coupon_id=coupon, idempotency_key="c1"
    )
    again = stripe_gateway.subscription_coupon_add(
        subscription_id=subscription.id, coupon_id=coupon, idempotency_key="c2"
    )
    with pytest.raises(NotFound):
        stripe_gateway.subscription_coupon_add(subscription_id=subscription.id, coupon_id="NOPE", idempotency_key="c3")
    ending = stripe_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription.id, cancel=True, idempotency_key="c4", feedback="unused", comment="Busy."
    )

    assert (
        len(kept.discount_ids) == 1 and again.discount_ids[0] == kept.discount_ids[0] and len(again.discount_ids) == 2
    )
    assert ending.cancel_at_period_end and ending.discount_ids == again.discount_ids
    details = stripe_gateway.client.v1.subscriptions.retrieve(subscription.id).cancellation_details
    assert (details.feedback, details.comment) == ("unused", "Busy.")
