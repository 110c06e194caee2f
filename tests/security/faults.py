"""A loopback Stripe that misbehaves on command, and a gateway pointed at it.

It is a small recording server that keeps a little state
(one subscription, the customer's cards and default, refunds), honours idempotency keys as Stripe does
(the same key replays the first answer; the same key with other parameters is a 409
`idempotency_error`), and fails the requests a rule names:

- `timeout`: answers only after the client has given up (`apply=True`: the write was made first);
- `reset`: closes the connection without an answer (RST), with or without applying the write;
- `500` / `429`: Stripe's error with `Stripe-Should-Retry: true`;
- `409`: an `idempotency_error` for a key another request is still using (`Stripe-Should-Retry: false`);
- `400`: an `idempotency_error` for a key reused with other parameters.

The SDK's own retries (two, with the same idempotency key) run against it, only with short waits.
"""

import json
import socket
import struct
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import stripe

from billing.gateways.stripe import StripeGateway

CUSTOMER_ID = "cus_faults"
SUBSCRIPTION_ID = "sub_faults"
CHARGE_ID = "ch_faults"
CLIENT_TIMEOUT = 0.2  # seconds the client waits for an answer
SERVER_STALL = 0.5  # seconds a `timeout` rule holds its answer


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


@dataclass
class Rule:
    mode: str
    method: str
    path: str  # a prefix of the request path
    times: int | None = None  # None: every matching request
    apply: bool = False  # make the write before failing (the answer is lost, the effect is not)


class FaultServer(Recorder):
    def __init__(self, resources):
        super().__init__(resources)
        self.RequestHandlerClass = FaultHandler
        self.rules: list[Rule] = []
        self.replies: dict[str, tuple[dict, int, dict]] = {}  # idempotency key → (params, status, body)
        self.writes: list[dict] = []  # every write that changed something, with its key
        period_end = int(time.time()) + 30 * 24 * 3600
        subscription = dict(resources["subscription"], id=SUBSCRIPTION_ID, customer=CUSTOMER_ID, status="active")
        subscription.update(cancel_at_period_end=False, pause_collection=None, default_payment_method=None)
        item = dict(subscription["items"]["data"][0], current_period_end=period_end)
        subscription["items"] = dict(subscription["items"], data=[item])
        self.subscription = subscription
        self.customer = dict(
            resources["customer"], id=CUSTOMER_ID, invoice_settings={"default_payment_method": "pm_old"}
        )
        self.payment_methods = {
            pm: dict(
                resources["payment_method"],
                id=pm,
                customer=CUSTOMER_ID,
                card=dict(resources["payment_method"]["card"], last4=last4),
            )
            for pm, last4 in (("pm_old", "1111"), ("pm_new", "4242"))
        }
        self.refunds: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def inject(self, mode: str, method: str, path: str, *, times: int | None = None, apply: bool = False) -> None:
        self.rules.append(Rule(mode, method, path, times, apply))

    def heal(self) -> None:
        self.rules.clear()

    def rule_for(self, method: str, path: str) -> Rule | None:
        for rule in self.rules:
            if rule.method == method and path.startswith(rule.path) and rule.times != 0:
                if rule.times is not None:
                    rule.times -= 1
                return rule
        return None

    def writes_to(self, path: str) -> list[dict]:
        return [write for write in self.writes if write["path"].startswith(path)]

    # The little state ---------------------------------------------------------------------------

    def apply(self, method: str, path: str, params: dict, key: str | None) -> tuple[int, dict]:
        if key and key in self.replies:
            first_params, status, body = self.replies[key]
            if first_params != params:
                return 400, idempotency_error()
            return status, body  # a replay: Stripe answers the first result, and does nothing again
        status, body, changed = self._dispatch(method, path, params)
        if changed:
            self.writes.append({"method": method, "path": path, "key": key, "params": params})
        if key and method in ("POST", "DELETE"):
            self.replies[key] = (params, status, body)
        return status, body

    def _dispatch(self, method: str, path: str, params: dict) -> tuple[int, dict, bool]:
        one = {name: values[0] for name, values in params.items()}
        parts = path.strip("/").split("/")
        kind = parts[1]
        if kind == "subscriptions" and len(parts) == 3:
            if method == "POST":
                if "cancel_at_period_end" in one:
                    self.subscription["cancel_at_period_end"] = one["cancel_at_period_end"] == "true"
                if "default_payment_method" in one:
                    self.subscription["default_payment_method"] = one["default_payment_method"]
                return 200, self.subscription, True
            if method == "DELETE":
                self.subscription.update(status="canceled", canceled_at=int(time.time()))
                return 200, self.subscription, True
            return 200, self.subscription, False
        if kind == "customers" and len(parts) == 3:
            if method == "POST":
                default = one.get("invoice_settings[default_payment_method]")
                if default:
                    self.customer["invoice_settings"] = {"default_payment_method": default}
                return 200, self.customer, True
            return 200, self.customer, False
        if kind == "payment_methods":
            if len(parts) == 2:
                return 200, stripe_list(list(self.payment_methods.values())), False
            return 200, self.payment_methods[parts[2]], method == "POST"
        if kind == "refunds":
            if method == "POST":
                refund = dict(
                    self.resources["refund"],
                    id=f"re_faults{len(self.refunds) + 1}",
                    amount=int(one["amount"]),
                    charge=one.get("charge"),
                    payment_intent=one.get("payment_intent"),
                    currency="gbp",
                    status="succeeded",
                )
                self.refunds.append(refund)
                return 200, refund, True
            if len(parts) == 3:
                found = [r for r in self.refunds if r["id"] == parts[2]]
                return 200, found[0], False
            wanted = {key: one[key] for key in ("charge", "payment_intent") if key in one}
            matching = [r for r in self.refunds if all(r.get(key) == value for key, value in wanted.items())]
            return 200, stripe_list(matching), False
        return (
            404,
            {"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such object"}},
            False,
        )


def stripe_list(items: list[dict]) -> dict:
    return {"object": "list", "data": items, "has_more": False, "url": "/v1/list"}


def idempotency_error() -> dict:
    return {
        "error": {
            "type": "idempotency_error",
            "message": (
                "Keys for idempotent requests can only be used with the same parameters they were first used with."
            ),
        }
    }


class FaultHandler(Handler):
    def _answer(self):
        server: FaultServer = self.server
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = parse_qs(body if self.command != "GET" else query, keep_blank_values=True)
        key = self.headers.get("Idempotency-Key")
        server.requests.append({"method": self.command, "path": path, "params": params, "idempotency_key": key})
        rule = server.rule_for(self.command, path)
        mode = rule.mode if rule else "ok"
        if mode == "500":
            return self._send(500, {"error": {"type": "api_error", "message": "Internal error"}}, retry=True)
        if mode == "429":
            return self._send(429, {"error": {"type": "rate_limit_error", "message": "Too many requests"}}, retry=True)
        if mode in ("409", "400"):
            return self._send_plain(int(mode), idempotency_error(), should_retry="false")
        status, payload = (
            (200, {}) if mode != "ok" and not rule.apply else server.apply(self.command, path, params, key)
        )
        if mode == "timeout":
            time.sleep(SERVER_STALL)
            try:
                self._send(status, payload)
            except OSError:
                pass  # the client gave up long ago
            return None
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return None
        return self._send(status, payload)

    def _send_plain(self, status, payload, *, should_retry):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Stripe-Should-Retry", should_retry)
        self.end_headers()
        self.wfile.write(data)

    def finish(self):
        try:
            super().finish()
        except OSError:
            pass  # a connection we reset on purpose

    do_GET = do_POST = do_DELETE = _answer


class LoopbackStripeGateway(StripeGateway):
    """The production gateway with a short timeout, aimed at the fault server (set `api_base` first)."""

    api_base = ""

    def __init__(self):
        client = stripe.RequestsClient(timeout=CLIENT_TIMEOUT)
        client._sleep_time_seconds = lambda num_retries: 0.01  # the SDK's retries, without its waits
        super().__init__(api_key="sk_test_faults_0123456789", api_base=self.api_base, http_client=client)
