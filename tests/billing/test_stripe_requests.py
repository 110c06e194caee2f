"""What the Stripe gateway puts on the wire, checked on a recording loopback server.

localstripe ignores idempotency keys, refuses a subscription's `default_payment_method` and has
no `pause_collection`, so those requests are checked here instead: a small HTTP server on
127.0.0.1 records each request and answers with Stripe's own example objects (current shape).
"""

import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from billing.gateways.base import CustomerDetails, TemporarilyUnavailable
from billing.gateways.stripe import API_VERSION, StripeGateway


class Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, resources):
        super().__init__(("127.0.0.1", 0), Handler)
        self.resources = resources
        self.requests: list[dict] = []
        self.fail_next = 0  # answer this many requests with a retryable 500 first


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _answer(self):
        server: Recorder = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        server.requests.append(
            {
                "method": self.command,
                "path": self.path.split("?")[0],
                "params": parse_qs(body, keep_blank_values=True),
                "idempotency_key": self.headers.get("Idempotency-Key"),
                "version": self.headers.get("Stripe-Version"),
            }
        )
        if server.fail_next:
            server.fail_next -= 1
            self._send(500, {"error": {"type": "api_error", "message": "boom"}}, retry=True)
            return
        self._send(200, self._object_for(self.path))

    def _object_for(self, path):
        resources = self.server.resources
        parts = path.split("?")[0].strip("/").split("/")
        kind = parts[1]
        if kind == "customers" and len(parts) > 3 and parts[3] == "tax_ids":
            return {"object": "list", "data": [], "has_more": False, "url": path}
        mapping = {
            "customers": "customer",
            "payment_methods": "payment_method",
            "subscriptions": "subscription",
            "setup_intents": "setup_intent",
            "refunds": "refund",
        }
        obj = dict(resources[mapping[kind]])
        if kind == "payment_methods":
            obj.update(id=parts[2], customer="cus_recorded")
        return obj

    def _send(self, status, payload, retry=False):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_recorded")
        if retry:
            self.send_header("Stripe-Should-Retry", "true")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _answer


@pytest.fixture
def recorder(stripe_resources):
    server = Recorder(stripe_resources)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def gateway_on_recorder(recorder):
    return StripeGateway(api_key="sk_test_recorded", api_base=f"http://127.0.0.1:{recorder.server_address[1]}")


def posts(recorder):
    return [r for r in recorder.requests if r["method"] in ("POST", "DELETE")]


def test_every_write_carries_an_idempotency_key_and_the_pinned_version(gateway_on_recorder, recorder):
    gateway = gateway_on_recorder
    gateway.customer_update(
        customer_id="cus_recorded",
        details=CustomerDetails(name="Ada", email="ada@example.com", tax_id_type="eu_vat", tax_id_value="DE123456788"),
        idempotency_key="k-customer",
    )
    gateway.setup_intent_create(customer_id="cus_recorded", idempotency_key="k-setup")
    gateway.card_attach_as_default(
        customer_id="cus_recorded", payment_method_id="pm_x", subscription_ids=["sub_1"], idempotency_key="k-card"
    )
    gateway.subscription_set_cancel_at_period_end(subscription_id="sub_1", cancel=True, idempotency_key="k-cancel")
    gateway.subscription_pause(
        subscription_id="sub_1", resumes_at=datetime(2027, 1, 1, tzinfo=UTC), idempotency_key="k-pause"
    )
    gateway.subscription_resume(subscription_id="sub_1", idempotency_key="k-resume")
    gateway.refund_create(charge_id="ch_1", amount=500, reason="requested_by_customer", idempotency_key="k-refund")

    writes = posts(recorder)
    assert writes and all(w["idempotency_key"] for w in writes), writes
    assert len({w["idempotency_key"] for w in writes}) == len(writes)  # one key per distinct write
    assert {r["version"] for r in recorder.requests} == {API_VERSION}


def test_the_new_card_becomes_the_default_of_the_customer_and_of_each_subscription_given(gateway_on_recorder, recorder):
    gateway_on_recorder.card_attach_as_default(
        customer_id="cus_recorded", payment_method_id="pm_x", subscription_ids=["sub_a", "sub_b"], idempotency_key="k"
    )
    by_path = {w["path"]: w["params"] for w in posts(recorder)}
    assert by_path["/v1/customers/cus_recorded"]["invoice_settings[default_payment_method]"] == ["pm_x"]
    for sub in ("sub_a", "sub_b"):
        assert by_path[f"/v1/subscriptions/{sub}"]["default_payment_method"] == ["pm_x"]


def test_pause_sends_pause_collection_and_resume_unsets_it(gateway_on_recorder, recorder):
    gateway_on_recorder.subscription_pause(
        subscription_id="sub_1", resumes_at=datetime(2027, 1, 1, tzinfo=UTC), idempotency_key="k1"
    )
    gateway_on_recorder.subscription_resume(subscription_id="sub_1", idempotency_key="k2")
    pause, resume = posts(recorder)
    assert pause["params"]["pause_collection[behavior]"] == ["void"]
    assert pause["params"]["pause_collection[resumes_at]"] == [str(int(datetime(2027, 1, 1, tzinfo=UTC).timestamp()))]
    assert resume["params"] == {"pause_collection": [""]}


def test_a_retried_write_reuses_its_idempotency_key(gateway_on_recorder, recorder):
    recorder.fail_next = 1
    gateway_on_recorder.subscription_set_cancel_at_period_end(subscription_id="sub_1", cancel=True, idempotency_key="k")
    first, second = posts(recorder)
    assert first["idempotency_key"] == second["idempotency_key"] == "k"


def test_after_the_bounded_retries_a_500_is_temporarily_unavailable(gateway_on_recorder, recorder):
    recorder.fail_next = 10
    with pytest.raises(TemporarilyUnavailable):
        gateway_on_recorder.refund_create(charge_id="ch_1", amount=100, reason="", idempotency_key="k-refund")
    keys = [w["idempotency_key"] for w in posts(recorder)]
    assert keys == ["k-refund"] * 3  # the first try and two retries, never a second refund key
