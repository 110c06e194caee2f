"""A Stripe API stand-in on loopback, for the real SDK to talk to in tests.

It answers in the object shapes of the API version the SDK is pinned to (every object is built from
the files in `shapes/`) and keeps Stripe's rules where the portal depends on them:

- a parameter that the SDK's own typed params (`stripe.params`) do not name for the endpoint is
  refused with `parameter_unknown`, so what counts as known is the owner's definition, not ours;
- a POST carrying an `Idempotency-Key` runs once: the same key with the same parameters replays the
  saved answer (`Idempotent-Replayed: true`) and applies nothing; other parameters, or another
  endpoint, under that key are an `idempotency_error`; a retry while the first is still running is
  a 409 (Stripe ignores keys on GET and DELETE, so does this);
- includable fields (an invoice's `payments`, a charge's `refunds`, a customer's `tax_ids`) are
  returned only when expanded, and expandable ids become objects only when expanded;
- a subscription resumes only from `status=paused`;
- a subscription schedule is made from a subscription (`from_subscription`, one phase: the current
  period), its phases are replaced whole on update (the current phase's start may not move, phases
  follow one another, the last one lasts one cycle of its price unless it says otherwise), and it is
  released or cancelled with the subscription; while one manages a subscription, the subscription's
  cancellation settings are refused and no second schedule is made from it.

Tests drive it through Python helpers (confirm a SetupIntent as Stripe.js would, settle a pending
refund, make a paid subscription, inject 500s, 429s, card declines and bounded hangs, build signed
webhook deliveries with the whole object) and read its request log. State is in memory and reset
for each test; the server listens on 127.0.0.1 only.
"""

import calendar
import copy
import hashlib
import hmac
import inspect
import json
import re
import secrets
import threading
import time
import types
import typing
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import parse_qsl, urlsplit

import stripe
import stripe.params
import stripe.params.billing_portal
from stripe._request_options import RequestOptions
from stripe._stripe_object import StripeObject
from stripe.billing_portal import SessionService as BillingPortalSessionService
from typing_extensions import is_typeddict

SHAPES = Path(__file__).with_name("shapes")
API_VERSION = stripe.api_version  # the only version the stand-in answers in
API_KEY = "sk_test_standin_0123456789"
WEBHOOK_SECRET = "whsec_standin_0123456789"
MAX_HANG_SECONDS = 120.0  # a hang also ends when the test resets the stand-in

ADDRESS_KEYS = ("city", "country", "line1", "line2", "postal_code", "state")
TEST_CARDS = {  # Stripe's test-mode card aliases and the card each stands for
    "visa": ("visa", "4242", "US", "credit"),
    "visa_debit": ("visa", "5556", "US", "debit"),
    "mastercard": ("mastercard", "4444", "US", "credit"),
    "amex": ("amex", "8431", "US", "credit"),
    "gb": ("visa", "0005", "GB", "credit"),
}


@cache
def _shape_text(name: str) -> str:
    return (SHAPES / f"{name}.json").read_text()


def shape(name: str) -> dict:
    """A fresh copy of one current-shape object from shapes/."""
    return json.loads(_shape_text(name))


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it: HMAC-SHA256 of "timestamp.body"."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# ---------------------------------------------------------------------------------------------
# Errors, in Stripe's envelope
# ---------------------------------------------------------------------------------------------


class StripeApiError(Exception):
    """One error answer: an HTTP status and Stripe's `{"error": {...}}` body."""

    def __init__(
        self, status: int, message: str, *, type: str = "invalid_request_error", code=None, param=None, **extra
    ):
        super().__init__(message)
        error = {"type": type, "message": message, **extra}
        if code:
            error["code"] = code
        if param is not None:
            error["param"] = param
        self.status = status
        self.body = {"error": error}


def _missing(kind: str, object_id: str, param: str = "id") -> StripeApiError:
    return StripeApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def _required(param: str) -> StripeApiError:
    return StripeApiError(400, f"Missing required param: {param}.", code="parameter_missing", param=param)


# ---------------------------------------------------------------------------------------------
# Stripe's form encoding: a[b][0][c]=x, expand[]=payments, and "" to unset
# ---------------------------------------------------------------------------------------------


def decode_form(text: str) -> dict:
    """Parse a Stripe form body or query string into nested dicts and lists (values stay strings)."""
    root: dict = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        head = key.split("[", 1)[0]
        tokens = [head, *re.findall(r"\[([^\]]*)\]", key[len(head) :])]
        _insert(root, tokens, value)
    return root


def _insert(node, tokens: list[str], value: str) -> None:
    for position, token in enumerate(tokens):
        last = position == len(tokens) - 1
        if isinstance(node, list):
            index = len(node) if token == "" else int(token)
            node.extend([None] * (index + 1 - len(node)))
            key: Any = index
            current = node[index]
        else:
            key = token
            current = node.get(token)
        if last:
            node[key] = value
            return
        following = tokens[position + 1]
        if current is None or isinstance(current, str):
            current = [] if following == "" or following.isdigit() else {}
            node[key] = current
        node = current


# ---------------------------------------------------------------------------------------------
# What the SDK says an endpoint takes: its TypedDict params, read with typing.get_type_hints
# ---------------------------------------------------------------------------------------------

_REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)


@cache
def params_fields(params_class: type) -> dict[str, Any]:
    """The request parameters a params TypedDict names, with their types (its RequestOptions removed)."""
    own = dict(params_class.__annotations__)
    if RequestOptions in getattr(params_class, "__orig_bases__", ()):
        own = {name: tp for name, tp in own.items() if name not in _REQUEST_OPTION_KEYS}
    # Resolve the string annotations in the params module without touching RequestOptions' own ones.
    holder = type("Hints", (), {"__annotations__": own, "__module__": params_class.__module__})
    return typing.get_type_hints(holder)


def _alternatives(tp) -> list:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return [alt for arg in get_args(tp) for alt in _alternatives(arg)]
    if origin is Literal:
        return [("literal", value) for value in get_args(tp)]
    return [tp]


def _is_free_map(tp) -> bool:
    origin = get_origin(tp) or tp
    return origin is dict or (isinstance(origin, type) and issubclass(origin, StripeObject))


def check_params(value: dict, params_class: type, prefix: str = "") -> None:
    """Raise Stripe's error for the first parameter the SDK's TypedDict does not name, or a bad value."""
    fields = params_fields(params_class)
    for name, sub in value.items():
        full = f"{prefix}[{name}]" if prefix else name
        if name not in fields:
            raise StripeApiError(400, f"Received unknown parameter: {full}", code="parameter_unknown", param=full)
        _check_value(sub, fields[name], full)
    for name in sorted(getattr(params_class, "__required_keys__", frozenset()) - set(value) - _REQUEST_OPTION_KEYS):
        raise _required(f"{prefix}[{name}]" if prefix else name)


def _check_value(value, tp, param: str) -> None:
    alternatives = _alternatives(tp)
    literals = {alt[1] for alt in alternatives if isinstance(alt, tuple)}
    others = [alt for alt in alternatives if not isinstance(alt, tuple)]
    if Any in others:
        return
    if value == "":
        if "" in literals or str in others:
            return  # an empty string unsets an emptyable parameter (or is an empty string)
        raise StripeApiError(
            400,
            f"You passed an empty string for '{param}'. We assume empty values are an attempt to unset a "
            f"parameter; however '{param}' cannot be unset. You should remove '{param}' from your request "
            "or supply a non-empty value.",
            code="parameter_invalid_empty",
            param=param,
        )
    if isinstance(value, dict):
        for alt in others:
            if is_typeddict(alt):
                check_params(value, alt, param)
                return
        if any(_is_free_map(alt) for alt in others):
            return
        raise StripeApiError(400, f"Invalid {_kind(others, literals)}", param=param)
    if isinstance(value, list):
        for alt in others:
            if get_origin(alt) is list:
                (element,) = get_args(alt)
                for index, item in enumerate(value):
                    _check_value(item, element, f"{param}[{index}]")
                return
        raise StripeApiError(400, f"Invalid {_kind(others, literals)}", param=param)
    if value in literals or str in others:
        return
    if int in others and re.fullmatch(r"-?\d+", value):
        return
    if bool in others and value in ("true", "false"):
        return
    if (float in others or Decimal in others) and _is_number(value):
        return
    if int in others:
        raise StripeApiError(400, f"Invalid integer: {value}", code="parameter_invalid_integer", param=param)
    if bool in others:
        raise StripeApiError(400, f"Invalid boolean: {value}", param=param)
    if literals and not others:
        allowed = ", ".join(sorted(str(v) for v in literals if v != ""))
        raise StripeApiError(400, f"Invalid {param}: must be one of {allowed}", param=param)
    raise StripeApiError(400, f"Invalid {_kind(others, literals)}", param=param)


def _kind(others: list, literals: set) -> str:
    if any(is_typeddict(alt) or _is_free_map(alt) for alt in others):
        return "hash"
    if any(get_origin(alt) is list for alt in others):
        return "array"
    return "string"


def _is_number(value: str) -> bool:
    try:
        Decimal(value)
    except InvalidOperation:
        return False
    return True


# ---------------------------------------------------------------------------------------------
# Routes: method, path and params class read from the SDK's own service methods
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    regex: re.Pattern
    params: type
    action: str


def sdk_route(service: type, name: str, action: str) -> Route:
    """The endpoint a StripeClient service method calls, and the params TypedDict it is typed with."""
    function = getattr(service, name)
    call = re.search(r'_request\(\s*"(\w+)",\s*"([^"]+)"', inspect.getsource(function))
    assert call, f"{service.__name__}.{name} does not call _request as expected"
    method, template = call.group(1).upper(), call.group(2)
    annotation = inspect.signature(function).parameters["params"].annotation
    if isinstance(annotation, str):  # required params: 'XParams'; optional ones: Optional['XParams']
        params_name = annotation
    else:
        params_name = next(arg.__forward_arg__ for arg in get_args(annotation) if isinstance(arg, typing.ForwardRef))
    namespace = stripe.params.billing_portal if service is BillingPortalSessionService else stripe.params
    pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return Route(method, template, re.compile(f"^{pattern}$"), getattr(namespace, params_name), action)


ROUTES = [
    sdk_route(stripe.CustomerService, "create", "customer_create"),
    sdk_route(stripe.CustomerService, "retrieve", "customer_retrieve"),
    sdk_route(stripe.CustomerService, "update", "customer_update"),
    sdk_route(stripe.CustomerService, "delete", "customer_delete"),
    sdk_route(stripe.CustomerTaxIdService, "list", "tax_id_list"),
    sdk_route(stripe.CustomerTaxIdService, "create", "tax_id_create"),
    sdk_route(stripe.CustomerTaxIdService, "delete", "tax_id_delete"),
    sdk_route(stripe.CustomerPaymentMethodService, "list", "customer_payment_method_list"),
    sdk_route(stripe.SetupIntentService, "create", "setup_intent_create"),
    sdk_route(stripe.SetupIntentService, "retrieve", "setup_intent_retrieve"),
    sdk_route(stripe.PaymentMethodService, "retrieve", "payment_method_retrieve"),
    sdk_route(stripe.PaymentMethodService, "attach", "payment_method_attach"),
    sdk_route(stripe.PaymentMethodService, "detach", "payment_method_detach"),
    sdk_route(stripe.PaymentMethodService, "list", "payment_method_list"),
    sdk_route(stripe.SubscriptionService, "create", "subscription_create"),
    sdk_route(stripe.SubscriptionService, "retrieve", "subscription_retrieve"),
    sdk_route(stripe.SubscriptionService, "list", "subscription_list"),
    sdk_route(stripe.SubscriptionService, "update", "subscription_update"),
    sdk_route(stripe.SubscriptionService, "cancel", "subscription_cancel"),
    sdk_route(stripe.SubscriptionService, "resume", "subscription_resume"),
    sdk_route(stripe.SubscriptionService, "pause", "subscription_pause"),
    sdk_route(stripe.SubscriptionScheduleService, "create", "subscription_schedule_create"),
    sdk_route(stripe.SubscriptionScheduleService, "retrieve", "subscription_schedule_retrieve"),
    sdk_route(stripe.SubscriptionScheduleService, "update", "subscription_schedule_update"),
    sdk_route(stripe.SubscriptionScheduleService, "release", "subscription_schedule_release"),
    sdk_route(stripe.InvoiceService, "retrieve", "invoice_retrieve"),
    sdk_route(stripe.InvoiceService, "create_preview", "invoice_create_preview"),
    sdk_route(stripe.InvoiceService, "list", "invoice_list"),
    sdk_route(stripe.InvoiceService, "pay", "invoice_pay"),
    sdk_route(stripe.InvoicePaymentService, "list", "invoice_payment_list"),
    sdk_route(stripe.InvoicePaymentService, "retrieve", "invoice_payment_retrieve"),
    sdk_route(stripe.PaymentIntentService, "retrieve", "payment_intent_retrieve"),
    sdk_route(stripe.ChargeService, "retrieve", "charge_retrieve"),
    sdk_route(stripe.RefundService, "create", "refund_create"),
    sdk_route(stripe.RefundService, "retrieve", "refund_retrieve"),
    sdk_route(stripe.RefundService, "list", "refund_list"),
    sdk_route(BillingPortalSessionService, "create", "billing_portal_session_create"),
    sdk_route(stripe.PlanService, "create", "plan_create"),
    sdk_route(stripe.PlanService, "retrieve", "plan_retrieve"),
    sdk_route(stripe.PlanService, "list", "plan_list"),
    sdk_route(stripe.PriceService, "create", "price_create"),
    sdk_route(stripe.PriceService, "retrieve", "price_retrieve"),
    sdk_route(stripe.PriceService, "list", "price_list"),
    sdk_route(stripe.ProductService, "create", "product_create"),
    sdk_route(stripe.ProductService, "retrieve", "product_retrieve"),
    sdk_route(stripe.ProductService, "list", "product_list"),
]


# ---------------------------------------------------------------------------------------------
# The request log and the faults tests ask for
# ---------------------------------------------------------------------------------------------


@dataclass
class LoggedRequest:
    method: str
    path: str
    params: dict
    idempotency_key: str | None
    stripe_version: str | None
    status: int | None = None  # None: no answer was sent (the connection was dropped)
    replayed: bool = False
    fault: str = ""
    error: dict | None = None


@dataclass
class _Fault:
    pattern: re.Pattern
    method: str | None
    remaining: int
    status: int = 0  # 500, 429 or 402 (a card decline); 0 for a hang
    seconds: float = 0.0
    after_apply: bool = False


@dataclass
class _Saved:
    """An idempotency key's first request, and its answer once it has one."""

    method: str
    path: str
    params: dict
    answer: tuple[int, dict] | None = None
    request_id: str = ""


FAULT_BODIES = {
    500: {"error": {"type": "api_error", "message": "An unknown error occurred"}},
    429: {
        "error": {
            "type": "invalid_request_error",
            "code": "rate_limit",
            "message": "Request rate limit exceeded. Learn more about rate limits here "
            "https://docs.stripe.com/rate-limits.",
        }
    },
    402: {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Your card was declined.",
            "param": "",
        }
    },
}


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, standin: "StripeStandin"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format, *args):  # the request log is kept by the stand-in
        pass

    def _dispatch(self):
        self.server.standin._handle(self)

    do_GET = do_POST = do_DELETE = _dispatch


class StripeStandin:
    """Stripe's API for one test at a time: start once, reset before each test."""

    def __init__(self, *, api_key: str = API_KEY, webhook_secret: str = WEBHOOK_SECRET):
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self._lock = threading.RLock()
        self._gate = threading.Event()
        self._server = _Server(self)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread: threading.Thread | None = None
        self._clear()

    # Lifecycle ------------------------------------------------------------------------------

    def start(self) -> "StripeStandin":
        self._thread = threading.Thread(target=self._server.serve_forever, name="stripe-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release_hangs()
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every object, key, fault and logged request; end any request still hanging."""
        self._release_hangs()
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self.objects: dict[str, dict] = {}
        self.log: list[LoggedRequest] = []
        self._idempotent: dict[str, _Saved] = {}
        self._faults: list[_Fault] = []
        self._detached: set[str] = set()
        self.next_refund_status = "succeeded"  # what the next refund is when Stripe answers its create

    def _release_hangs(self) -> None:
        gate, self._gate = self._gate, threading.Event()
        gate.set()

    # Faults ---------------------------------------------------------------------------------

    def fail(self, path: str, *, status: int = 500, times: int = 1, method: str | None = None) -> None:
        """Answer the next `times` requests whose path matches the regex `path` with a 500, a 429 or a 402."""
        assert status in FAULT_BODIES, status
        with self._lock:
            self._faults.append(_Fault(re.compile(path), method, times, status=status))

    def hang(
        self, path: str, *, seconds: float, times: int = 1, method: str | None = None, after_apply: bool = False
    ) -> None:
        """Hold the next `times` matching requests for `seconds` (at most MAX_HANG_SECONDS, ended by reset).

        With after_apply the request is applied first and only its answer is late (or lost, when the test
        ends first): what a client sees when Stripe did the work but the connection broke.
        """
        with self._lock:
            self._faults.append(
                _Fault(re.compile(path), method, times, seconds=min(seconds, MAX_HANG_SECONDS), after_apply=after_apply)
            )

    def release(self) -> None:
        """Let go of every request still hanging (its answer is dropped) and forget the faults not yet used."""
        with self._lock:
            self._faults.clear()
        self._release_hangs()

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.remaining and (fault.method in (None, method)) and fault.pattern.fullmatch(path):
                    fault.remaining -= 1
                    return fault
        return None

    def _hold(self, seconds: float) -> bool:
        """Wait out a hang; False when the test reset the stand-in meanwhile (the answer is then dropped)."""
        gate = self._gate
        return not gate.wait(seconds)

    # The request log ------------------------------------------------------------------------

    def requests(self, method: str | None = None, path: str | None = None) -> list[LoggedRequest]:
        """Logged requests, oldest first; `path` is a regex the whole path must match."""
        with self._lock:
            return [
                entry
                for entry in self.log
                if (method is None or entry.method == method) and (path is None or re.fullmatch(path, entry.path))
            ]

    # Handling one request -------------------------------------------------------------------

    def _handle(self, request: _Handler) -> None:
        url = urlsplit(request.path)
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length).decode() if length else ""
        method = request.command
        entry = LoggedRequest(
            method=method,
            path=url.path,
            params=decode_form(url.query if method in ("GET", "DELETE") else body),
            idempotency_key=request.headers.get("Idempotency-Key"),
            stripe_version=request.headers.get("Stripe-Version"),
        )
        with self._lock:
            self.log.append(entry)
        answer = self._answer(entry, request.headers.get("Authorization", ""))
        if answer is None:
            request.close_connection = True
            return
        status, payload, headers = answer
        entry.status = status
        entry.error = payload.get("error") if status >= 400 else None
        data = json.dumps(payload).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
            request.send_header("Stripe-Version", API_VERSION)
            if entry.idempotency_key and method == "POST":
                request.send_header("Idempotency-Key", entry.idempotency_key)
            for name, value in headers.items():
                request.send_header(name, value)
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            request.close_connection = True  # the client gave up waiting

    def _answer(self, entry: LoggedRequest, authorization: str) -> tuple[int, dict, dict] | None:
        try:
            self._check_key(authorization)
            if entry.stripe_version != API_VERSION:
                raise StripeApiError(
                    400,
                    f"The stand-in answers only in API version {API_VERSION} (the SDK's pinned version); "
                    f"this request asked for {entry.stripe_version!r}.",
                )
            route, path_args = self._route(entry.method, entry.path)
            fault = self._take_fault(entry.method, entry.path)
            if fault and fault.status:
                entry.fault = str(fault.status)
                headers = {"Stripe-Should-Retry": "true"} if fault.status == 500 else {}
                return fault.status, copy.deepcopy(FAULT_BODIES[fault.status]), headers
            check_params(entry.params, route.params)
            return self._run_once(entry, route, path_args, fault)
        except StripeApiError as error:
            return error.status, error.body, {}

    def _check_key(self, authorization: str) -> None:
        scheme, _, key = authorization.partition(" ")
        if scheme != "Bearer" or not key:
            raise StripeApiError(
                401,
                "You did not provide an API key. You need to provide your API key in the Authorization header, "
                "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        if not key.startswith("sk_test_") or key != self.api_key:
            raise StripeApiError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")

    def _route(self, method: str, path: str) -> tuple[Route, dict]:
        for route in ROUTES:
            match = route.regex.match(path)
            if match and route.method == method:
                return route, match.groupdict()
        raise StripeApiError(
            404,
            f"Unrecognized request URL ({method}: {path}). Please see https://docs.stripe.com or we can help at "
            "https://support.stripe.com/.",
        )

    def _run_once(self, entry: LoggedRequest, route: Route, path_args: dict, fault: _Fault | None):
        """Run the endpoint, once per idempotency key (POST only, as Stripe)."""
        key = entry.idempotency_key if entry.method == "POST" else None
        saved = None
        if key:
            with self._lock:
                saved = self._idempotent.get(key)
                if saved is None:
                    saved = self._idempotent[key] = _Saved(entry.method, entry.path, entry.params)
                elif saved.answer is None:
                    raise StripeApiError(
                        409,
                        "There is currently another in-progress request using this Idempotent Key (probably "
                        "because of a timeout). Please try again later.",
                        type="idempotency_error",
                    )
                elif (saved.method, saved.path) != (entry.method, entry.path):
                    raise StripeApiError(
                        400,
                        f"Keys for idempotent requests can only be used for the same endpoint they were first used "
                        f"for ('{saved.method} {saved.path}' vs '{entry.method} {entry.path}'). Try using a key "
                        f"other than '{key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    )
                elif saved.params != entry.params:
                    raise StripeApiError(
                        400,
                        "Keys for idempotent requests can only be used with the same parameters they were first "
                        f"used with. Try using a key other than '{key}' if you meant to execute a different "
                        "request.",
                        type="idempotency_error",
                    )
                else:
                    entry.replayed = True
                    status, payload = saved.answer
                    return status, copy.deepcopy(payload), {"Idempotent-Replayed": "true"}
        answer = None
        try:
            if fault and not fault.after_apply:
                entry.fault = "hang"
                if not self._hold(fault.seconds):
                    return None
            answer = self._execute(route, path_args, entry.params)
            if saved is not None:
                saved.answer = copy.deepcopy(answer)
        finally:
            if saved is not None and answer is None:
                with self._lock:
                    self._idempotent.pop(key, None)  # never executed: Stripe saves nothing
        if fault and fault.after_apply:
            entry.fault = "hang after apply"
            if not self._hold(fault.seconds):
                return None
        return answer[0], answer[1], {}

    def _execute(self, route: Route, path_args: dict, params: dict) -> tuple[int, dict]:
        with self._lock:
            try:
                result = getattr(self, f"_{route.action}")(params, **path_args)
                return 200, self._expand(result, params.get("expand") or [])
            except StripeApiError as error:
                return error.status, error.body
            except Exception as error:  # a stand-in bug answers as one, rather than as a dropped connection
                message = f"The stand-in failed on {route.method} {route.template}: {type(error).__name__}: {error}"
                return 500, {"error": {"type": "api_error", "message": message}}

    # Objects ------------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_1St{secrets.token_hex(8)}"

    def _now(self) -> int:
        return int(time.time())

    def _get(self, object_id, kind: str, *, param: str = "id", label: str | None = None) -> dict:
        obj = self.objects.get(object_id) if isinstance(object_id, str) else None
        if obj is None or obj["object"] != kind or obj.get("deleted"):
            raise _missing(label or kind, str(object_id), param)
        return obj

    def _render(self, obj: dict) -> dict:
        """The object as Stripe returns it unexpanded (a deleted customer is its tombstone)."""
        if obj.get("deleted"):
            return {"id": obj["id"], "object": obj["object"], "deleted": True}
        return copy.deepcopy(obj)

    def _list(self, url: str, objects: list[dict], params: dict) -> dict:
        limit = int(params.get("limit") or 10)
        rendered = [self._render(obj) for obj in objects]
        return {"object": "list", "data": rendered[:limit], "has_more": len(rendered) > limit, "url": url}

    def _of_kind(self, kind: str, **match) -> list[dict]:
        """Objects of one kind whose fields equal `match`, newest first (as Stripe lists them)."""
        found = [
            (order, obj)
            for order, obj in enumerate(self.objects.values())
            if obj["object"] == kind and all(obj.get(name) == value for name, value in match.items())
        ]
        # Within one second, the later made comes first too.
        found.sort(key=lambda pair: (pair[1].get("created") or 0, pair[0]), reverse=True)
        return [obj for _, obj in found]

    def _only(self, params: dict, handled: str, prefix: str = "") -> None:
        """Refuse a parameter Stripe knows but the stand-in does not model (`handled`: the names it does)."""
        for name in params:
            if name != "expand" and name not in handled.split():
                full = f"{prefix}[{name}]" if prefix else name
                raise StripeApiError(
                    400,
                    f"The stand-in does not model '{full}' on this endpoint (Stripe knows it); "
                    "teach tests/contract/standin.py before relying on it.",
                    code="standin_unmodelled",
                    param=full,
                )

    # Expansion: includable fields and expandable ids, only when asked -----------------------

    def _includable(self, node: dict, name: str):
        kind, object_id = node.get("object"), node.get("id")
        if kind == "invoice" and name == "payments":
            return lambda: self._list(
                f"/v1/invoice_payments?invoice={object_id}", self._of_kind("invoice_payment", invoice=object_id), {}
            )
        if kind == "charge" and name == "refunds":
            return lambda: self._list(f"/v1/charges/{object_id}/refunds", self._of_kind("refund", charge=object_id), {})
        if kind == "customer" and name == "tax_ids":
            return lambda: self._list(
                f"/v1/customers/{object_id}/tax_ids", self._of_kind("tax_id", customer=object_id), {}
            )
        return None

    def _expand(self, result: dict, paths: list[str]) -> dict:
        rendered = self._render(result) if result.get("object") != "list" else result
        for path in paths:
            self._expand_path(rendered, path.split("."), path)
        return rendered

    def _expand_path(self, node: dict, segments: list[str], path: str) -> None:
        head, rest = segments[0], segments[1:]
        if node.get("object") == "list" and head == "data":
            for item in node["data"]:
                if rest and isinstance(item, dict):
                    self._expand_path(item, rest, path)
            return
        cannot = StripeApiError(400, f"This property cannot be expanded ({head}).", param="expand")
        includable = self._includable(node, head)
        if includable and head not in node:
            node[head] = includable()
        elif head not in node:
            raise cannot
        value = node[head]
        expandable = includable is not None
        if isinstance(value, str) and re.fullmatch(r"[a-z]+(_[a-z]+)*_[A-Za-z0-9]+", value):
            target = self.objects.get(value)
            if target is None:
                raise StripeApiError(
                    400,
                    f"The stand-in holds no object {value!r} to expand ({path}); teach tests/contract/standin.py.",
                    param="expand",
                )
            node[head] = value = self._render(target)
            expandable = True
        if isinstance(value, dict) and rest:
            self._expand_path(value, rest, path)
        elif value is not None and not expandable:
            raise cannot

    # Webhooks -------------------------------------------------------------------------------

    def webhook(
        self, event_type: str, obj: dict | str, *, previous_attributes: dict | None = None
    ) -> tuple[bytes, str]:
        """A delivery as Stripe sends it: the WHOLE current object in data.object, and its signature header.

        `obj` is an object id held here (rendered as it is now) or an object to send as given, such as the
        snapshot `customer_delete` returns for `customer.deleted`.
        """
        with self._lock:
            data_object = self._render(self.objects[obj]) if isinstance(obj, str) else copy.deepcopy(obj)
        envelope = shape("event_invoice_paid")
        data: dict[str, Any] = {"object": data_object}
        if previous_attributes is not None:
            data["previous_attributes"] = previous_attributes
        envelope.update(
            id=self._new_id("evt"),
            api_version=API_VERSION,
            created=self._now(),
            data=data,
            request={"id": None, "idempotency_key": None},
            type=event_type,
        )
        body = json.dumps(envelope).encode()
        return body, stripe_signature(body, self.webhook_secret)

    # Test helpers: what Stripe.js, Checkout or the Dashboard would do ------------------------

    def get(self, object_id: str) -> dict:
        """An object as Stripe would return it now, unexpanded."""
        with self._lock:
            return self._render(self.objects[object_id])

    def customer_create(self, *, email: str, name: str = "") -> str:
        with self._lock:
            return self._customer_create({"email": email, "name": name})["id"]

    def card_create(
        self,
        *,
        customer: str | None = None,
        card: str = "visa",
        default: bool = False,
        exp_month: int = 12,
        exp_year: int = 2034,
    ) -> str:
        """A card PaymentMethod, attached to `customer` when given, and made its default when asked."""
        with self._lock:
            method = self._card_new(card, exp_month=exp_month, exp_year=exp_year)
            if customer:
                self._attach(method["id"], customer, param="customer")
            if default:
                self.objects[customer]["invoice_settings"]["default_payment_method"] = method["id"]
            return method["id"]

    def setup_intent_confirm(self, setup_intent_id: str, *, card: str = "visa", outcome: str = "succeeded") -> str:
        """Confirm a SetupIntent as Stripe.js would: make a card PaymentMethod and, on success, attach it.

        outcome: "succeeded", "requires_action" (3-D Secure still to do) or "card_declined".
        Returns the PaymentMethod id ("" when declined).
        """
        with self._lock:
            intent = self._get(setup_intent_id, "setup_intent", label="setupintent")
            if outcome == "card_declined":
                intent.update(
                    status="requires_payment_method",
                    last_setup_error={
                        "code": "card_declined",
                        "decline_code": "generic_decline",
                        "message": "Your card was declined.",
                        "type": "card_error",
                    },
                )
                return ""
            method = self._card_new(card)
            intent["payment_method"] = method["id"]
            intent["latest_attempt"] = self._new_id("setatt")
            if outcome == "requires_action":
                intent.update(status="requires_action", next_action={"type": "use_stripe_sdk", "use_stripe_sdk": {}})
                return method["id"]
            if intent["customer"]:
                self._attach(method["id"], intent["customer"], param="customer")
            intent.update(status="succeeded", next_action=None, last_setup_error=None)
            return method["id"]

    def price_create(
        self, *, amount: int, currency: str = "gbp", interval: str = "month", product_name: str = "Membership"
    ) -> str:
        with self._lock:
            product = self._product_create({"name": product_name})
            return self._price_create(
                {
                    "currency": currency,
                    "unit_amount": str(amount),
                    "product": product["id"],
                    "recurring": {"interval": interval},
                }
            )["id"]

    def subscription_create(
        self,
        *,
        customer: str,
        prices: list[tuple[str, int]],
        default_payment_method: str | None = None,
        trial_days: int | None = None,
        failed_attempts: int = 0,
    ) -> str:
        """Subscribe a customer as Checkout would; the first invoice is charged to their card.

        `failed_attempts` declined card attempts come before the one that pays, so the invoice has
        several payments.
        """
        with self._lock:
            subscription = self._subscription_build(
                customer=self._get(customer, "customer", param="customer"),
                items=[(self._price_of(price, "items[0][price]"), quantity, {}) for price, quantity in prices],
                default_payment_method=default_payment_method,
                trial_end=self._now() + trial_days * 86400 if trial_days else None,
                failed_attempts=failed_attempts,
            )
            return subscription["id"]

    def coupon_create(self, coupon_id: str, *, percent_off: int = 50, max_redemptions: int | None = None) -> str:
        """A coupon as the creator makes it in the Dashboard (repeating for 3 months)."""
        with self._lock:
            self.objects[coupon_id] = {
                "id": coupon_id,
                "object": "coupon",
                "amount_off": None,
                "created": self._now(),
                "currency": None,
                "duration": "repeating",
                "duration_in_months": 3,
                "livemode": False,
                "max_redemptions": max_redemptions,
                "metadata": {},
                "name": None,
                "percent_off": percent_off,
                "redeem_by": None,
                "times_redeemed": 0,
                "valid": True,
            }
            return coupon_id

    def renewal_fail(self, subscription_id: str) -> str:
        """A renewal whose card was declined, as Stripe's billing cycle makes it: a new open invoice with one
        failed attempt, and the subscription past due. Returns the invoice id."""
        with self._lock:
            subscription = self._get(subscription_id, "subscription")
            invoice = self._invoice_for(subscription, billing_reason="subscription_cycle")
            customer = self.objects[subscription["customer"]]
            method_id = subscription["default_payment_method"] or customer["invoice_settings"]["default_payment_method"]
            self._payment_attempt(invoice, self.objects[method_id], paid=False)
            subscription.update(status="past_due", latest_invoice=invoice["id"])
            return invoice["id"]

    def subscription_pause(self, subscription_id: str) -> None:
        """Pause the subscription itself (status paused), as the Dashboard or the pause endpoint would."""
        with self._lock:
            self._subscription_pause({}, subscription_id)

    def subscription_set_cancel_at(self, subscription_id: str, cancel_at: int) -> None:
        with self._lock:
            self._subscription_update({"cancel_at": str(cancel_at)}, subscription_id)

    def customer_delete(self, customer_id: str) -> dict:
        """Delete a customer as the Dashboard would; return the customer as it was (what customer.deleted carries)."""
        with self._lock:
            snapshot = self._render(self._get(customer_id, "customer"))
            self._customer_delete({}, customer_id)
            return snapshot

    def paid_by(self, invoice_id: str) -> tuple[str, str]:
        """The PaymentIntent and charge of the payment that paid an invoice."""
        with self._lock:
            (payment,) = self._of_kind("invoice_payment", invoice=invoice_id, status="paid")
            intent_id = payment["payment"]["payment_intent"]
            return intent_id, self.objects[intent_id]["latest_charge"]

    def refund_create(self, *, charge: str, amount: int) -> str:
        """Refund part of a charge as the Dashboard would (pending or not per next_refund_status)."""
        with self._lock:
            return self._refund_create({"charge": charge, "amount": str(amount)})["id"]

    def refund_settle(self, refund_id: str, *, status: str, failure_reason: str = "") -> dict:
        """Move a pending refund to succeeded or failed, as the card network would; return previous_attributes."""
        with self._lock:
            refund = self._get(refund_id, "refund")
            assert refund["status"] == "pending", refund["status"]
            previous = {"status": "pending", "pending_reason": refund["pending_reason"]}
            refund.update(status=status, pending_reason=None)
            card = refund["destination_details"]["card"]
            if status == "failed":
                previous.update(failure_reason=None, failure_balance_transaction=None)
                refund.update(
                    failure_reason=failure_reason or "declined", failure_balance_transaction=self._new_id("txn")
                )
                card.update(reference_status="unavailable", type="refund")
                charge = self.objects[refund["charge"]]
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
            else:
                card.update(reference=secrets.token_hex(8), reference_status="available", type="refund")
            return previous

    # Customers ------------------------------------------------------------------------------

    def _customer_create(self, params: dict) -> dict:
        self._only(
            params,
            "name email phone description metadata address shipping invoice_settings preferred_locales "
            "tax_exempt payment_method tax_id_data",
        )
        customer = shape("customer")
        customer.update(
            id=self._new_id("cus"),
            created=self._now(),
            address=None,
            email=None,
            name=None,
            phone=None,
            description=None,
            metadata={},
            preferred_locales=[],
            next_invoice_sequence=1,
            invoice_prefix=secrets.token_hex(4).upper(),
            shipping=None,
        )
        customer["invoice_settings"]["default_payment_method"] = None
        if method := params.get("payment_method"):
            self._get(method, "payment_method", param="payment_method", label="PaymentMethod")
        self.objects[customer["id"]] = customer
        if method:
            self._attach(method, customer["id"], param="payment_method")
        for datum in params.get("tax_id_data") or []:
            self._tax_id_create(datum, customer["id"])
        self._customer_apply(customer, {k: v for k, v in params.items() if k not in ("payment_method", "tax_id_data")})
        return customer

    def _customer_retrieve(self, params: dict, customer: str) -> dict:
        obj = self.objects.get(customer)
        if obj is None or obj["object"] != "customer":
            raise _missing("customer", customer)
        return obj  # a deleted customer answers as its tombstone

    def _customer_update(self, params: dict, customer: str) -> dict:
        self._only(
            params,
            "name email phone description metadata address shipping invoice_settings preferred_locales tax_exempt",
        )
        obj = self._get(customer, "customer")
        self._customer_apply(obj, params)
        return obj

    def _customer_apply(self, customer: dict, params: dict) -> None:
        for name in ("name", "email", "phone", "description", "tax_exempt"):
            if name in params:
                customer[name] = params[name] or None
        if "preferred_locales" in params:
            customer["preferred_locales"] = params["preferred_locales"] or []
        if "metadata" in params:
            customer["metadata"] = _metadata(customer["metadata"], params["metadata"])
        if "address" in params:
            customer["address"] = _address(customer["address"], params["address"])
        if "shipping" in params:
            shipping = params["shipping"]
            customer["shipping"] = (
                None
                if shipping == ""
                else {
                    "address": _address(None, shipping.get("address") or {}),
                    "name": shipping.get("name"),
                    "phone": shipping.get("phone") or None,
                }
            )
        if "invoice_settings" in params:
            settings = params["invoice_settings"]
            self._only(settings, "default_payment_method", prefix="invoice_settings")
            if "default_payment_method" in settings:
                method_id = settings["default_payment_method"]
                if method_id:
                    method = self._get(
                        method_id,
                        "payment_method",
                        param="invoice_settings[default_payment_method]",
                        label="PaymentMethod",
                    )
                    if method["customer"] != customer["id"]:
                        raise StripeApiError(
                            400,
                            f"The customer does not have a payment method with the ID {method_id}. The payment "
                            "method must be attached to the customer.",
                            code="resource_missing",
                            param="invoice_settings[default_payment_method]",
                        )
                customer["invoice_settings"]["default_payment_method"] = method_id or None

    def _customer_delete(self, params: dict, customer: str) -> dict:
        self._only(params, "")
        obj = self._get(customer, "customer")
        now = self._now()
        for subscription in self._of_kind("subscription", customer=customer):
            if subscription["status"] not in ("canceled", "incomplete_expired"):
                subscription.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False)
        obj["deleted"] = True
        return obj

    # Tax IDs --------------------------------------------------------------------------------

    def _tax_id_list(self, params: dict, customer: str) -> dict:
        self._only(params, "limit")
        self._get(customer, "customer")
        return self._list(f"/v1/customers/{customer}/tax_ids", self._of_kind("tax_id", customer=customer), params)

    def _tax_id_create(self, params: dict, customer: str) -> dict:
        self._only(params, "type value")
        self._get(customer, "customer")
        tax_id = shape("tax_id")
        value = params["value"]
        tax_id.update(
            id=self._new_id("txi"),
            created=self._now(),
            customer=customer,
            type=params["type"],
            value=value,
            country=value[:2].upper() if value[:2].isalpha() else None,
        )
        tax_id["owner"]["customer"] = customer
        self.objects[tax_id["id"]] = tax_id
        return tax_id

    def _tax_id_delete(self, params: dict, customer: str, id: str) -> dict:
        self._only(params, "")
        tax_id = self._get(id, "tax_id", label="tax_id")
        if tax_id["customer"] != customer:
            raise _missing("tax_id", id)
        del self.objects[id]
        return {"id": id, "object": "tax_id", "deleted": True}

    # SetupIntents and PaymentMethods --------------------------------------------------------

    def _setup_intent_create(self, params: dict) -> dict:
        self._only(
            params,
            "customer usage allowed_payment_method_types automatic_payment_methods description metadata payment_method",
        )
        intent = shape("setup_intent_requires_payment_method")
        intent_id = self._new_id("seti")
        customer = params.get("customer")
        if customer:
            self._get(customer, "customer", param="customer")
        intent.update(
            id=intent_id,
            client_secret=f"{intent_id}_secret_{secrets.token_urlsafe(24).replace('-', 'x').replace('_', 'y')}",
            created=self._now(),
            customer=customer or None,
            usage=params.get("usage") or "off_session",
            description=params.get("description") or None,
            metadata=_metadata({}, params.get("metadata") or {}),
        )
        if types := params.get("allowed_payment_method_types"):
            intent.update(
                allowed_payment_method_types=types, payment_method_types=types, automatic_payment_methods=None
            )
        else:
            # Without a list, Stripe offers what the account's payment method settings allow (cards here).
            intent.update(
                allowed_payment_method_types=None,
                payment_method_types=["card"],
                automatic_payment_methods={"allow_redirects": "always", "enabled": True},
            )
        if method := params.get("payment_method"):
            self._get(method, "payment_method", param="payment_method", label="PaymentMethod")
            intent.update(payment_method=method, status="requires_confirmation")
        self.objects[intent_id] = intent
        return intent

    def _setup_intent_retrieve(self, params: dict, intent: str) -> dict:
        self._only(params, "client_secret")
        return self._get(intent, "setup_intent", label="setupintent")

    def _card_new(self, card: str, *, exp_month: int = 12, exp_year: int = 2034) -> dict:
        brand, last4, country, funding = TEST_CARDS[card]
        method = shape("payment_method_card")
        method.update(id=self._new_id("pm"), created=self._now(), customer=None)
        method["billing_details"] = {
            "address": dict.fromkeys(ADDRESS_KEYS),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        }
        method["card"].update(
            brand=brand,
            display_brand=brand,
            last4=last4,
            country=country,
            funding=funding,
            exp_month=exp_month,
            exp_year=exp_year,
            fingerprint=secrets.token_urlsafe(12)[:16],
            networks={"available": [brand], "preferred": None},
        )
        self.objects[method["id"]] = method
        return method

    def _attach(self, method_id: str, customer_id: str, *, param: str) -> dict:
        method = self._get(method_id, "payment_method", label="PaymentMethod")
        self._get(customer_id, "customer", param=param)
        if method["customer"] == customer_id:
            return method
        if method["customer"]:
            raise StripeApiError(400, "The payment method you provided has already been attached to a customer.")
        if method_id in self._detached:
            raise StripeApiError(
                400,
                "This PaymentMethod was previously used without being attached to a Customer or was detached from a "
                "Customer, and may not be used again.",
            )
        method["customer"] = customer_id
        return method

    def _payment_method_retrieve(self, params: dict, payment_method: str) -> dict:
        self._only(params, "")
        alias = payment_method.removeprefix("pm_card_")
        if payment_method not in self.objects and payment_method.startswith("pm_card_") and alias in TEST_CARDS:
            return self._card_new(alias)  # a test-mode alias stands for a fresh card each time
        return self._get(payment_method, "payment_method", label="PaymentMethod")

    def _payment_method_attach(self, params: dict, payment_method: str) -> dict:
        self._only(params, "customer")
        if not params.get("customer"):
            raise _required("customer")
        return self._attach(payment_method, params["customer"], param="customer")

    def _payment_method_detach(self, params: dict, payment_method: str) -> dict:
        self._only(params, "")
        method = self._get(payment_method, "payment_method", label="PaymentMethod")
        if not method["customer"]:
            raise StripeApiError(
                400, "The payment method you provided is not attached to a customer so detachment is impossible."
            )
        customer = self.objects[method["customer"]]
        if customer["invoice_settings"]["default_payment_method"] == payment_method:
            customer["invoice_settings"]["default_payment_method"] = None
        method["customer"] = None
        self._detached.add(payment_method)
        return method

    def _payment_method_list(self, params: dict) -> dict:
        self._only(params, "customer type limit")
        if not params.get("customer"):
            raise _required("customer")
        return self._customer_payment_method_list(
            {k: v for k, v in params.items() if k != "customer"}, params["customer"]
        )

    def _customer_payment_method_list(self, params: dict, customer: str) -> dict:
        self._only(params, "type limit")
        self._get(customer, "customer", param="customer")
        methods = [
            m for m in self._of_kind("payment_method", customer=customer) if params.get("type") in (None, m["type"])
        ]
        return self._list("/v1/payment_methods", methods, params)

    # Products, prices, plans ----------------------------------------------------------------

    def _product_create(self, params: dict) -> dict:
        self._only(params, "id name description metadata active")
        if not params.get("name"):
            raise _required("name")
        product = shape("product")
        product_id = params.get("id") or self._new_id("prod")
        if product_id in self.objects:
            raise StripeApiError(400, "Product already exists.", code="resource_already_exists", param="id")
        now = self._now()
        product.update(
            id=product_id,
            created=now,
            updated=now,
            name=params["name"],
            description=params.get("description") or None,
            metadata=_metadata({}, params.get("metadata") or {}),
            active=params.get("active", "true") == "true",
        )
        self.objects[product_id] = product
        return product

    def _product_retrieve(self, params: dict, id: str) -> dict:
        self._only(params, "")
        return self._get(id, "product")

    def _product_of(self, params: dict, param_name: str, data_name: str) -> str:
        if product := params.get(param_name):
            if isinstance(product, dict):
                return self._product_create(product)["id"]
            return self._get(product, "product", param=param_name)["id"]
        if data := params.get(data_name):
            return self._product_create(data)["id"]
        raise _required(param_name)

    def _price_create(self, params: dict) -> dict:
        self._only(
            params,
            "currency unit_amount unit_amount_decimal product product_data recurring nickname "
            "lookup_key metadata tax_behavior active",
        )
        if not params.get("currency"):
            raise _required("currency")
        price = shape("price")
        unit_amount = params.get("unit_amount") or params.get("unit_amount_decimal")
        recurring = params.get("recurring")
        price.update(
            id=self._new_id("price"),
            created=self._now(),
            currency=params["currency"].lower(),
            product=self._product_of(params, "product", "product_data"),
            unit_amount=int(Decimal(unit_amount)) if unit_amount is not None else None,
            unit_amount_decimal=str(Decimal(unit_amount)) if unit_amount is not None else None,
            nickname=params.get("nickname") or None,
            lookup_key=params.get("lookup_key") or None,
            metadata=_metadata({}, params.get("metadata") or {}),
            tax_behavior=params.get("tax_behavior") or "unspecified",
            type="recurring" if recurring else "one_time",
            recurring=(
                {
                    "interval": recurring["interval"],
                    "interval_count": int(recurring.get("interval_count") or 1),
                    "meter": None,
                    "trial_period_days": None,
                    "usage_type": "licensed",
                }
                if recurring
                else None
            ),
        )
        self.objects[price["id"]] = price
        return price

    def _price_retrieve(self, params: dict, price: str) -> dict:
        self._only(params, "")
        return self._price_of(price, "id")

    def _price_of(self, price_id: str, param: str) -> dict:
        """A price, or a plan seen as the price it is (Stripe answers a plan id on the prices API)."""
        obj = self.objects.get(price_id)
        if obj and obj["object"] == "price":
            return obj
        if obj and obj["object"] == "plan":
            price = shape("price")
            price.update(
                id=obj["id"],
                created=obj["created"],
                currency=obj["currency"],
                product=obj["product"],
                nickname=obj["nickname"],
                metadata=obj["metadata"],
                unit_amount=obj["amount"],
                unit_amount_decimal=obj["amount_decimal"],
                tax_behavior="unspecified",
                recurring={
                    "interval": obj["interval"],
                    "interval_count": obj["interval_count"],
                    "meter": None,
                    "trial_period_days": obj["trial_period_days"],
                    "usage_type": obj["usage_type"],
                },
            )
            return price
        raise _missing("price", price_id, param)

    def _plan_of(self, price: dict) -> dict:
        plan = shape("plan")
        recurring = price["recurring"]
        plan.update(
            id=price["id"],
            created=price["created"],
            currency=price["currency"],
            product=price["product"],
            nickname=price["nickname"],
            metadata=copy.deepcopy(price["metadata"]),
            amount=price["unit_amount"],
            amount_decimal=price["unit_amount_decimal"],
            interval=recurring["interval"],
            interval_count=recurring["interval_count"],
            trial_period_days=recurring["trial_period_days"],
            usage_type=recurring["usage_type"],
        )
        return plan

    def _plan_create(self, params: dict) -> dict:
        self._only(
            params,
            "id amount amount_decimal currency interval interval_count product nickname metadata active "
            "trial_period_days usage_type",
        )
        for name in ("currency", "interval"):
            if not params.get(name):
                raise _required(name)
        plan_id = params.get("id") or self._new_id("plan")
        if plan_id in self.objects:
            raise StripeApiError(400, "Plan already exists.", code="resource_already_exists", param="id")
        amount = params.get("amount") or params.get("amount_decimal") or "0"
        plan = shape("plan")
        plan.update(
            id=plan_id,
            created=self._now(),
            currency=params["currency"].lower(),
            interval=params["interval"],
            interval_count=int(params.get("interval_count") or 1),
            amount=int(Decimal(amount)),
            amount_decimal=str(Decimal(amount)),
            product=self._product_of(params, "product", "product_data"),
            nickname=params.get("nickname") or None,
            metadata=_metadata({}, params.get("metadata") or {}),
            trial_period_days=int(params["trial_period_days"]) if params.get("trial_period_days") else None,
        )
        self.objects[plan_id] = plan
        return plan

    def _plan_retrieve(self, params: dict, plan: str) -> dict:
        self._only(params, "")
        return self._get(plan, "plan")

    def _plan_list(self, params: dict) -> dict:
        self._only(params, "active product limit")
        return self._list("/v1/plans", self._catalogue("plan", params), params)

    def _price_list(self, params: dict) -> dict:
        self._only(params, "active product limit")
        return self._list("/v1/prices", self._catalogue("price", params), params)

    def _product_list(self, params: dict) -> dict:
        self._only(params, "active limit")
        return self._list("/v1/products", self._catalogue("product", params), params)

    def _catalogue(self, kind: str, params: dict) -> list[dict]:
        active = {"true": True, "false": False}.get(params.get("active"))
        return [
            obj
            for obj in self._of_kind(kind)
            if active in (None, obj["active"]) and params.get("product") in (None, obj.get("product"))
        ]

    # Subscriptions --------------------------------------------------------------------------

    def _subscription_create(self, params: dict) -> dict:
        self._only(
            params,
            "customer items default_payment_method cancel_at cancel_at_period_end trial_period_days "
            "trial_end metadata description payment_behavior proration_behavior off_session",
        )
        if not params.get("customer"):
            raise _required("customer")
        if not params.get("items"):
            raise _required("items")
        customer = self._get(params["customer"], "customer", param="customer")
        items = []
        for index, item in enumerate(params["items"]):
            self._only(item, "price plan quantity metadata", prefix=f"items[{index}]")
            price_id = item.get("price") or item.get("plan")
            if not price_id:
                raise _required(f"items[{index}][price]")
            items.append(
                (
                    self._price_of(price_id, f"items[{index}][price]"),
                    int(item.get("quantity") or 1),
                    item.get("metadata"),
                )
            )
        method = params.get("default_payment_method") or None
        if method and self._get(method, "payment_method", param="default_payment_method")["customer"] != customer["id"]:
            raise StripeApiError(
                400,
                f"The customer does not have a payment method with the ID {method}. The payment method must be "
                "attached to the customer.",
                code="resource_missing",
                param="default_payment_method",
            )
        trial_end = None
        if params.get("trial_end"):
            trial_end = self._now() if params["trial_end"] == "now" else int(params["trial_end"])
        elif params.get("trial_period_days"):
            trial_end = self._now() + int(params["trial_period_days"]) * 86400
        subscription = self._subscription_build(
            customer=customer,
            items=items,
            default_payment_method=method,
            trial_end=trial_end,
            metadata=_metadata({}, params.get("metadata") or {}),
            description=params.get("description") or None,
        )
        if params.get("payment_behavior") == "error_if_incomplete" and subscription["status"] == "incomplete":
            raise StripeApiError(402, "Your card was declined.", type="card_error", code="card_declined")
        changes = {k: params[k] for k in ("cancel_at", "cancel_at_period_end") if k in params}
        if changes:
            self._subscription_update(changes, subscription["id"])
        return subscription

    def _subscription_build(
        self,
        *,
        customer: dict,
        items: list,
        default_payment_method=None,
        trial_end=None,
        metadata=None,
        description=None,
        failed_attempts: int = 0,
    ) -> dict:
        now = self._now()
        subscription = shape("subscription_active")
        subscription_id = self._new_id("sub")
        subscription.update(
            id=subscription_id,
            created=now,
            start_date=now,
            billing_cycle_anchor=now,
            customer=customer["id"],
            default_payment_method=default_payment_method,
            description=description,
            metadata=metadata or {},
            latest_invoice=None,
        )
        subscription["billing_mode"]["updated_at"] = now
        template = subscription["items"]["data"][0]
        rows = []
        for price, quantity, item_metadata in items:
            item = copy.deepcopy(template)
            item.update(
                id=self._new_id("si"),
                created=now,
                current_period_start=now,
                current_period_end=trial_end or _period_end(now, price["recurring"]),
                price=copy.deepcopy(price),
                plan=self._plan_of(price),
                quantity=quantity,
                subscription=subscription_id,
                metadata=_metadata({}, item_metadata or {}),
            )
            rows.append(item)
        subscription["items"] = {
            "object": "list",
            "data": rows,
            "has_more": False,
            "total_count": len(rows),
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        }
        subscription["currency"] = rows[0]["price"]["currency"]
        if trial_end:
            subscription.update(status="trialing", trial_start=now, trial_end=trial_end)
        self.objects[subscription_id] = subscription
        invoice = self._invoice_for(subscription, billing_reason="subscription_create", free=bool(trial_end))
        subscription["latest_invoice"] = invoice["id"]
        if not self._invoice_collect(invoice, failed_attempts=failed_attempts) and not trial_end:
            subscription["status"] = "incomplete"
        return subscription

    def _subscription_retrieve(self, params: dict, subscription_exposed_id: str) -> dict:
        self._only(params, "")
        return self._get(subscription_exposed_id, "subscription")

    def _subscription_list(self, params: dict) -> dict:
        self._only(params, "customer status price limit")
        status = params.get("status")
        found = [
            s
            for s in self._of_kind("subscription")
            if params.get("customer") in (None, s["customer"])
            and (status == "all" or (status is None and s["status"] != "canceled") or status == s["status"])
            and params.get("price") in (None, *(item["price"]["id"] for item in s["items"]["data"]))
        ]
        return self._list("/v1/subscriptions", found, params)

    def _subscription_update(self, params: dict, subscription_exposed_id: str) -> dict:
        self._only(
            params,
            "cancel_at cancel_at_period_end pause_collection default_payment_method metadata "
            "description proration_behavior payment_behavior cancellation_details items proration_date discounts",
        )
        subscription = self._get(subscription_exposed_id, "subscription")
        if subscription.get("schedule") and {"cancel_at", "cancel_at_period_end"} & set(params):
            raise StripeApiError(
                400,
                f"The subscription is managed by the subscription schedule `{subscription['schedule']}`, and updating "
                "any cancelation behavior directly is not allowed. Please update the schedule instead.",
            )
        discounts = self._discounts_param(subscription, params["discounts"]) if "discounts" in params else None
        if subscription["status"] == "canceled" and set(params) - {"metadata", "cancellation_details", "expand"}:
            raise StripeApiError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        now = self._now()
        period_ends = [item["current_period_end"] for item in subscription["items"]["data"]]
        if "cancel_at_period_end" in params:
            if params["cancel_at_period_end"] == "true":
                # canceled_at records when the cancellation was asked for; cancel_at when it takes effect.
                subscription.update(cancel_at_period_end=True, cancel_at=min(period_ends), canceled_at=now)
            else:
                subscription.update(cancel_at_period_end=False, cancel_at=None, canceled_at=None)
        if "cancel_at" in params:
            value = params["cancel_at"]
            if value == "":
                subscription.update(cancel_at=None, canceled_at=None, cancel_at_period_end=False)
            else:
                when = {"min_period_end": min(period_ends), "max_period_end": max(period_ends)}.get(value)
                subscription.update(cancel_at=when or int(value), cancel_at_period_end=False, canceled_at=now)
        if "items" in params:
            self._price_change_apply(subscription, self._price_change(subscription, params))
        if "pause_collection" in params:
            pause = params["pause_collection"]
            subscription["pause_collection"] = (
                None
                if pause == ""
                else {
                    "behavior": pause["behavior"],
                    "resumes_at": int(pause["resumes_at"]) if pause.get("resumes_at") else None,
                }
            )
        if "default_payment_method" in params:
            method = params["default_payment_method"] or None
            if method:
                owner = self._get(method, "payment_method", param="default_payment_method", label="PaymentMethod")
                if owner["customer"] != subscription["customer"]:
                    raise StripeApiError(
                        400,
                        f"The customer does not have a payment method with the ID {method}. The payment method must "
                        "be attached to the customer.",
                        code="resource_missing",
                        param="default_payment_method",
                    )
            subscription["default_payment_method"] = method
        if "metadata" in params:
            subscription["metadata"] = _metadata(subscription["metadata"], params["metadata"])
        if "description" in params:
            subscription["description"] = params["description"] or None
        if discounts is not None:
            subscription["discounts"] = discounts
        if details := params.get("cancellation_details"):
            for name in ("comment", "feedback"):
                if name in details:
                    subscription["cancellation_details"][name] = details[name] or None
        return subscription

    def _discounts_param(self, subscription: dict, value) -> list[str]:
        """The subscription's discounts after `discounts=`: a list replaces them all, "" clears them. Each entry
        names a coupon to redeem (it must exist and have redemptions left) or a discount the subscription has."""
        if value == "":
            return []
        wanted: list[str | dict] = []
        for index, entry in enumerate(value):
            prefix = f"discounts[{index}]"
            self._only(entry, "coupon discount", prefix=prefix)
            if entry.get("discount"):
                if entry["discount"] not in subscription["discounts"]:
                    raise _missing("discount", entry["discount"], f"{prefix}[discount]")
                wanted.append(entry["discount"])
            elif entry.get("coupon"):
                coupon = self._get(entry["coupon"], "coupon", param=f"{prefix}[coupon]")
                if not coupon["valid"]:
                    raise StripeApiError(
                        400, f"Coupon expired: {coupon['id']}", code="coupon_expired", param=f"{prefix}[coupon]"
                    )
                wanted.append(coupon)
            else:
                raise _required(f"{prefix}[coupon]")
        # Checked in full before anything is redeemed: a refused request changes nothing.
        ids = []
        for item in wanted:
            if isinstance(item, str):
                ids.append(item)
                continue
            discount_id = self._new_id("di")
            self.objects[discount_id] = {
                "id": discount_id,
                "object": "discount",
                "customer": subscription["customer"],
                "source": {"coupon": item["id"], "type": "coupon"},
                "start": self._now(),
                "end": None,
                "subscription": subscription["id"],
            }
            item["times_redeemed"] += 1
            item["valid"] = item["max_redemptions"] is None or item["times_redeemed"] < item["max_redemptions"]
            ids.append(discount_id)
        return ids

    def _subscription_cancel(self, params: dict, subscription_exposed_id: str) -> dict:
        self._only(params, "invoice_now prorate cancellation_details")
        subscription = self._get(subscription_exposed_id, "subscription")
        if subscription["status"] != "canceled":
            now = self._now()
            subscription.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False)
            subscription["cancellation_details"]["reason"] = "cancellation_requested"
            if subscription.get("schedule"):  # the schedule ends with its subscription
                self.objects[subscription["schedule"]].update(status="canceled", canceled_at=now, current_phase=None)
        return subscription

    def _subscription_resume(self, params: dict, subscription: str) -> dict:
        self._only(params, "billing_cycle_anchor payment_behavior proration_behavior proration_date")
        obj = self._get(subscription, "subscription")
        if obj["status"] != "paused":
            # Stripe's resume is for a subscription in status `paused` only (the wording is the stand-in's).
            raise StripeApiError(
                400,
                f"Subscription {subscription} cannot be resumed because its status is '{obj['status']}'; only a "
                "subscription with status 'paused' can be resumed.",
            )
        now = self._now()
        obj.update(status="active", status_details=None)
        if params.get("billing_cycle_anchor", "now") == "now":
            obj["billing_cycle_anchor"] = now
            for item in obj["items"]["data"]:
                item.update(current_period_start=now, current_period_end=_period_end(now, item["price"]["recurring"]))
            invoice = self._invoice_for(obj, billing_reason="subscription_update")
            obj["latest_invoice"] = invoice["id"]
            if not self._invoice_collect(invoice):
                obj["status"] = "past_due"
        return obj

    def _subscription_pause(self, params: dict, subscription: str) -> dict:
        self._only(params, "type invoicing_behavior")
        obj = self._get(subscription, "subscription")
        if obj["status"] not in ("active", "trialing", "past_due"):
            raise StripeApiError(
                400, f"Subscription {subscription} cannot be paused because its status is '{obj['status']}'."
            )
        now = self._now()
        obj.update(
            status="paused",
            status_details={
                "paused": {"subscription": {"type": "pause_requested"}, "transitioned_at": now, "type": "subscription"}
            },
        )
        return obj

    # Subscription schedules -----------------------------------------------------------------

    def _subscription_schedule_create(self, params: dict) -> dict:
        self._only(params, "from_subscription metadata")
        if not params.get("from_subscription"):
            raise StripeApiError(
                400, "The stand-in models schedules made from a subscription only.", code="standin_unmodelled"
            )
        subscription = self._get(params["from_subscription"], "subscription", param="from_subscription")
        if subscription.get("schedule"):
            raise StripeApiError(
                400,
                "You cannot migrate a subscription that is already attached to a schedule: "
                f"`{subscription['schedule']}`.",
                param="from_subscription",
            )
        if subscription["status"] in ("canceled", "incomplete_expired"):
            raise StripeApiError(
                400,
                f"You cannot migrate a subscription in status `{subscription['status']}`.",
                param="from_subscription",
            )
        schedule = shape("subscription_schedule_from_subscription")
        schedule_id = self._new_id("sub_sched")
        items = subscription["items"]["data"]
        start, end = min(i["current_period_start"] for i in items), min(i["current_period_end"] for i in items)
        phase = schedule["phases"][0]
        phase.update(
            start_date=start,
            end_date=end,
            currency=subscription["currency"],
            default_payment_method=subscription["default_payment_method"],
            discounts=[{"coupon": None, "discount": d, "promotion_code": None} for d in subscription["discounts"]],
            items=[self._schedule_item(item["price"], item["quantity"]) for item in items],
        )
        schedule.update(
            id=schedule_id,
            created=self._now(),
            customer=subscription["customer"],
            subscription=subscription["id"],
            current_phase={"start_date": start, "end_date": end},
            metadata=_metadata({}, params.get("metadata") or {}),
        )
        self.objects[schedule_id] = schedule
        subscription["schedule"] = schedule_id
        return schedule

    def _schedule_item(self, price: dict, quantity: int) -> dict:
        return {
            "billing_thresholds": None,
            "discounts": [],
            "metadata": {},
            "plan": price["id"],
            "price": price["id"],
            "quantity": quantity,
            "tax_rates": [],
        }

    def _subscription_schedule_retrieve(self, params: dict, schedule: str) -> dict:
        self._only(params, "")
        return self._get(schedule, "subscription_schedule")

    def _subscription_schedule_managing(self, schedule_id: str, verb: str) -> dict:
        schedule = self._get(schedule_id, "subscription_schedule")
        if schedule["status"] not in ("not_started", "active"):
            raise StripeApiError(
                400,
                f"You cannot {verb} a subscription schedule that is currently in the `{schedule['status']}` status.",
            )
        return schedule

    def _subscription_schedule_update(self, params: dict, schedule: str) -> dict:
        self._only(params, "phases end_behavior metadata proration_behavior")
        obj = self._subscription_schedule_managing(schedule, "update")
        if "phases" in params:
            obj["phases"] = self._schedule_phases(obj, params["phases"])
        if "end_behavior" in params:
            obj["end_behavior"] = params["end_behavior"]
        if "metadata" in params:
            obj["metadata"] = _metadata(obj["metadata"], params["metadata"])
        return obj

    def _schedule_phases(self, schedule: dict, phases: list) -> list[dict]:
        """The new phases, checked whole before any is kept: Stripe replaces the list, past phases may be left out."""
        current = schedule["current_phase"]
        built: list[dict] = []
        previous_end = None
        for index, phase in enumerate(phases):
            prefix = f"phases[{index}]"
            self._only(phase, "start_date end_date duration items discounts proration_behavior metadata", prefix=prefix)
            if not phase.get("items"):
                raise _required(f"{prefix}[items]")
            start = phase.get("start_date")
            if index == 0:
                if start is None:
                    raise _required(f"{prefix}[start_date]")
                start = self._now() if start == "now" else int(start)
                if current and start != current["start_date"]:
                    raise StripeApiError(
                        400,
                        "You can not modify the start date of the current phase.",
                        param=f"{prefix}[start_date]",
                    )
            elif start is not None and int(start) != previous_end:
                raise StripeApiError(
                    400,
                    f"The start_date of a phase must equal the end_date of the phase before it ({previous_end}).",
                    param=f"{prefix}[start_date]",
                )
            else:
                start = previous_end
            items = []
            for position, item in enumerate(phase["items"]):
                self._only(item, "price plan quantity metadata", prefix=f"{prefix}[items][{position}]")
                price_id = item.get("price") or item.get("plan")
                if not price_id:
                    raise _required(f"{prefix}[items][{position}][price]")
                price = self._price_of(price_id, f"{prefix}[items][{position}][price]")
                items.append((price, int(item.get("quantity") or 1)))
            currencies = {price["currency"] for price, _ in items}
            if len(currencies) != 1 or (built and currencies != {built[0]["currency"]}):
                raise StripeApiError(400, "All prices in a schedule must share one currency.", param=f"{prefix}[items]")
            if phase.get("end_date") is not None and phase.get("duration") is not None:
                raise StripeApiError(
                    400, "You may only specify one of end_date and duration.", param=f"{prefix}[end_date]"
                )
            if phase.get("end_date") is not None:
                end = int(phase["end_date"])
            elif phase.get("duration") is not None:
                end = _period_end(start, phase["duration"])
            elif index == len(phases) - 1:
                end = _period_end(start, items[0][0]["recurring"])  # the last phase lasts one cycle of its price
            else:
                raise _required(f"{prefix}[end_date]")
            if end <= start:
                raise StripeApiError(400, "A phase must end after it starts.", param=f"{prefix}[end_date]")
            row = shape("subscription_schedule_from_subscription")["phases"][0]
            row.update(
                start_date=start,
                end_date=end,
                currency=currencies.pop(),
                items=[self._schedule_item(price, quantity) for price, quantity in items],
                discounts=[
                    {"coupon": d.get("coupon"), "discount": d.get("discount"), "promotion_code": None}
                    for d in phase.get("discounts") or []
                ],
                proration_behavior=phase.get("proration_behavior") or "create_prorations",
                metadata=_metadata({}, phase.get("metadata") or {}),
                default_payment_method=schedule["phases"][0]["default_payment_method"],
            )
            built.append(row)
            previous_end = end
        return built

    def _subscription_schedule_release(self, params: dict, schedule: str) -> dict:
        self._only(params, "preserve_cancel_date")
        obj = self._subscription_schedule_managing(schedule, "release")
        subscription = self.objects.get(obj["subscription"])
        if subscription is not None:
            subscription["schedule"] = None
        obj.update(
            status="released",
            released_at=self._now(),
            released_subscription=obj["subscription"],
            subscription=None,
            current_phase=None,
        )
        return obj

    def schedule_phase_start(self, schedule_id: str) -> dict:
        """The current phase ends and the next begins, as Stripe's billing cycle makes it: the subscription's items
        move to the phase's prices without proration and its renewal is invoiced and collected. With no phase left,
        the schedule ends by its `end_behavior` (release here). Returns the subscription."""
        with self._lock:
            schedule = self._subscription_schedule_managing(schedule_id, "advance")
            subscription = self._get(schedule["subscription"], "subscription")
            following = [p for p in schedule["phases"] if p["start_date"] >= schedule["current_phase"]["end_date"]]
            if not following:
                schedule.update(status="released", released_at=self._now(), released_subscription=subscription["id"])
                schedule.update(subscription=None, current_phase=None)
                subscription["schedule"] = None
                return subscription
            phase = following[0]
            rows = subscription["items"]["data"]
            for row, item in zip(rows, phase["items"], strict=False):
                price = self._price_of(item["price"], "price")
                row.update(
                    price=copy.deepcopy(price),
                    plan=self._plan_of(price),
                    quantity=item["quantity"],
                    current_period_start=phase["start_date"],
                    current_period_end=_period_end(phase["start_date"], price["recurring"]),
                )
            schedule["current_phase"] = {"start_date": phase["start_date"], "end_date": phase["end_date"]}
            invoice = self._invoice_for(subscription, billing_reason="subscription_cycle")
            self._invoice_collect(invoice)
            subscription["latest_invoice"] = invoice["id"]
            return subscription

    # Invoices, payments, charges ------------------------------------------------------------

    def _invoice_for(self, subscription: dict, *, billing_reason: str, free: bool = False) -> dict:
        customer = self.objects[subscription["customer"]]
        invoice = shape("invoice_paid")
        invoice_id = self._new_id("in")
        now = self._now()
        template = invoice["lines"]["data"][0]
        lines = []
        for item in subscription["items"]["data"]:
            price = item["price"]
            amount = 0 if free else price["unit_amount"] * item["quantity"]
            line = copy.deepcopy(template)
            product = self.objects.get(price["product"])
            line.update(
                id=self._new_id("il"),
                amount=amount,
                subtotal=amount,
                currency=price["currency"],
                description=f"{item['quantity']} × {product['name'] if product else price['product']}",
                invoice=invoice_id,
                period={"start": item["current_period_start"], "end": item["current_period_end"]},
                quantity=item["quantity"],
                quantity_decimal=str(item["quantity"]),
                subscription=subscription["id"],
                taxes=[],
            )
            line["parent"]["subscription_item_details"].update(
                subscription=subscription["id"], subscription_item=item["id"]
            )
            line["pricing"] = {
                "price_details": {"price": price["id"], "product": price["product"]},
                "type": "price_details",
                "unit_amount_decimal": price["unit_amount_decimal"],
            }
            lines.append(line)
        total = sum(line["amount"] for line in lines)
        invoice.update(
            id=invoice_id,
            created=now,
            effective_at=now,
            period_start=now,
            period_end=now,
            customer=customer["id"],
            customer_email=customer["email"],
            customer_name=customer["name"],
            customer_address=copy.deepcopy(customer["address"]),
            currency=subscription["currency"],
            billing_reason=billing_reason,
            amount_due=total,
            amount_paid=0,
            amount_remaining=total,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            total_taxes=[],
            attempted=False,
            attempt_count=0,
            status="open",
            number=f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}",
            hosted_invoice_url=f"https://invoice.stripe.com/i/acct_standin/test_{invoice_id}",
            invoice_pdf=f"https://pay.stripe.com/invoice/acct_standin/test_{invoice_id}/pdf",
            webhooks_delivered_at=None,
        )
        invoice["status_transitions"] = {
            "finalized_at": now,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        }
        invoice["parent"]["subscription_details"]["subscription"] = subscription["id"]
        invoice["lines"] = {
            "object": "list",
            "data": lines,
            "has_more": False,
            "total_count": len(lines),
            "url": f"/v1/invoices/{invoice_id}/lines",
        }
        customer["next_invoice_sequence"] += 1
        self.objects[invoice_id] = invoice
        return invoice

    # Changing an item's price, with its prorations ------------------------------------------

    def _price_change(self, subscription: dict, params: dict, prefix: str = "") -> dict:
        """What moving one item to another price means now, as Stripe prorates it (per second, each line rounded).

        Same interval: the unused time of the old price is credited and the rest of the period charged at the
        new one. Another interval: the billing cycle restarts now, so the new price's whole first period is
        charged, less the credit.
        """

        def name(param: str) -> str:
            return f"{prefix}[{param}]" if prefix else param

        items = params.get("items") or []
        if len(items) != 1 or set(items[0]) - {"id", "price"}:
            raise StripeApiError(
                400,
                "The stand-in models one item moved to another price ({id, price}) only.",
                code="standin_unmodelled",
                param=name("items"),
            )
        wanted = items[0]
        item = next((row for row in subscription["items"]["data"] if row["id"] == wanted.get("id")), None)
        if item is None:
            raise _missing("subscription item", str(wanted.get("id")), name("items") + "[0][id]")
        price = self._price_of(wanted.get("price", ""), name("items") + "[0][price]")
        if price["currency"] != subscription["currency"]:
            raise StripeApiError(
                400,
                f"The price specified is in {price['currency']}, which does not match the subscription's "
                f"currency {subscription['currency']}.",
                param=name("items") + "[0][price]",
            )
        behavior = params.get("proration_behavior") or "create_prorations"
        start, end = item["current_period_start"], item["current_period_end"]
        moment = int(params.get("proration_date") or self._now())
        if not start <= moment <= end:
            raise StripeApiError(
                400,
                "The proration_date must be within the current subscription period.",
                param=name("proration_date"),
            )
        old_amount = item["price"]["unit_amount"] * item["quantity"]
        new_amount = price["unit_amount"] * item["quantity"]
        left = (end - moment) / (end - start) if end > start else 0
        cycle = lambda p: (p["recurring"]["interval"], int(p["recurring"].get("interval_count") or 1))  # noqa: E731
        same_cycle = cycle(item["price"]) == cycle(price)
        lines = []
        if behavior != "none":
            lines.append((item["price"], -round(old_amount * left), "Unused time on", item["quantity"]))
            if same_cycle:
                lines.append((price, round(new_amount * left), "Remaining time on", item["quantity"]))
        if not same_cycle:
            lines.append((price, new_amount, "", item["quantity"]))
        return {
            "item": item,
            "price": price,
            "moment": moment,
            "period": (start, end) if same_cycle else (moment, _period_end(moment, price["recurring"])),
            "lines": lines,
            "invoice_now": behavior == "always_invoice" or not same_cycle,
        }

    def _price_change_invoice(self, subscription: dict, change: dict, *, preview: bool) -> dict:
        """The invoice a price change makes (or would make, for a preview: never stored, never numbered)."""
        customer = self.objects[subscription["customer"]]
        invoice = self._invoice_for(subscription, billing_reason="subscription_update")
        del self.objects[invoice["id"]]
        customer["next_invoice_sequence"] -= 1
        template = invoice["lines"]["data"][0]
        day = datetime.fromtimestamp(change["moment"], tz=UTC).strftime("%d %b %Y")
        lines = []
        for price, amount, words, quantity in change["lines"]:
            product = self.objects.get(price["product"])
            name = product["name"] if product else price["product"]
            line = copy.deepcopy(template)
            line.update(
                id=self._new_id("il"),
                amount=amount,
                subtotal=amount,
                description=f"{words} {name} after {day}" if words else f"{quantity} × {name}",
                period={"start": change["moment"], "end": change["period"][1]},
                quantity=quantity,
                quantity_decimal=str(quantity),
            )
            line["parent"]["subscription_item_details"]["proration"] = bool(words)
            line["pricing"] = {
                "price_details": {"price": price["id"], "product": price["product"]},
                "type": "price_details",
                "unit_amount_decimal": price["unit_amount_decimal"],
            }
            lines.append(line)
        total = sum(line["amount"] for line in lines)
        due = max(total, 0)
        invoice["lines"].update(data=lines, total_count=len(lines))
        invoice.update(
            amount_due=due,
            amount_remaining=due,
            subtotal=total,
            subtotal_excluding_tax=total,
            total=total,
            total_excluding_tax=total,
            starting_balance=customer.get("balance") or 0,
            ending_balance=(customer.get("balance") or 0) + min(total, 0),
        )
        if preview:
            self._as_preview(invoice)
        return invoice

    @staticmethod
    def _as_preview(invoice: dict) -> None:
        """What a previewed invoice is that a made one is not: a draft, never numbered, nowhere to see or pay."""
        invoice.update(
            id=f"upcoming_{invoice['id']}", status="draft", number=None, hosted_invoice_url=None, invoice_pdf=None
        )
        invoice["status_transitions"]["finalized_at"] = None
        for line in invoice["lines"]["data"]:
            line["invoice"] = invoice["id"]

    def _invoice_create_preview(self, params: dict) -> dict:
        self._only(params, "subscription subscription_details schedule")
        if params.get("schedule"):
            if params.get("subscription") or params.get("subscription_details"):
                raise StripeApiError(
                    400, "You may only specify one of these parameters: schedule, subscription.", param="schedule"
                )
            schedule = self._get(params["schedule"], "subscription_schedule", param="schedule")
            return self._renewal_preview(self._get(schedule["subscription"], "subscription"), schedule)
        subscription = self._get(params.get("subscription"), "subscription", param="subscription")
        if "subscription_details" not in params:
            return self._renewal_preview(subscription, None)
        details = params.get("subscription_details") or {}
        self._only(details, "items proration_behavior proration_date", prefix="subscription_details")
        change = self._price_change(subscription, details, prefix="subscription_details")
        return self._price_change_invoice(subscription, change, preview=True)

    def _renewal_preview(self, subscription: dict, schedule: dict | None) -> dict:
        """The invoice the next renewal makes (never stored, never numbered): each item at its price, or at the
        schedule's next phase's when that phase starts with the new period (with the phase's discounts, which
        replace the subscription's then), less the discounts whose coupons still apply: a `once` coupon on the
        first invoice after its redemption only, a `repeating` one for its months from the redemption. The
        customer's balance is then applied (credit is negative), as `starting_balance`."""
        if subscription["status"] == "canceled":
            raise StripeApiError(
                404, f"No upcoming invoices for customer: {subscription['customer']}", code="invoice_upcoming_none"
            )
        renewing = copy.deepcopy(subscription)
        rows = renewing["items"]["data"]
        period_start = rows[0]["current_period_end"]
        following = (
            [p for p in schedule["phases"] if p["start_date"] >= schedule["current_phase"]["end_date"]]
            if schedule and schedule.get("current_phase")
            else []
        )

        def redeemed(discount_id: str) -> tuple:  # (discount id or None for a coupon a phase redeems, coupon, since)
            discount = self.objects[discount_id]
            return discount_id, self.objects[discount["source"]["coupon"]], discount["start"]

        discounts = [redeemed(d) for d in subscription.get("discounts") or []]
        if following and following[0]["start_date"] <= period_start:
            phase = following[0]
            for row, item in zip(rows, phase["items"], strict=False):
                row.update(price=self._price_of(item["price"], "price"), quantity=item["quantity"])
            discounts = [
                redeemed(entry["discount"])
                if entry.get("discount")
                else (None, self.objects[entry["coupon"]], phase["start_date"])
                for entry in phase.get("discounts") or []
            ]
        for row in rows:
            row.update(
                current_period_start=period_start,
                current_period_end=_period_end(period_start, row["price"]["recurring"]),
            )
        customer = self.objects[subscription["customer"]]
        invoice = self._invoice_for(renewing, billing_reason="subscription_cycle")
        del self.objects[invoice["id"]]
        customer["next_invoice_sequence"] -= 1
        invoiced_since = [
            o["created"]
            for o in self.objects.values()
            if o["object"] == "invoice"
            and ((o.get("parent") or {}).get("subscription_details") or {}).get("subscription") == subscription["id"]
        ]
        total = invoice["total"]
        discounted = []
        for discount_id, coupon, start in discounts:
            if coupon["duration"] == "once" and any(created > start for created in invoiced_since):
                continue
            if (
                coupon["duration"] == "repeating"
                and _period_end(start, {"interval": "month", "interval_count": coupon["duration_in_months"]})
                <= period_start
            ):
                continue
            off = round(total * coupon["percent_off"] / 100) if coupon["percent_off"] else coupon["amount_off"]
            off = min(off, total)
            total -= off
            discounted.append({"amount": off, "discount": discount_id})
        balance = customer.get("balance") or 0
        due = max(total + balance, 0)
        invoice.update(
            discounts=[d["discount"] for d in discounted if d["discount"]],
            total_discount_amounts=discounted,
            total=total,
            total_excluding_tax=total,
            amount_due=due,
            amount_remaining=due,
            starting_balance=balance,
            ending_balance=min(total + balance, 0),
            period_start=period_start,
            period_end=period_start,
        )
        self._as_preview(invoice)
        return invoice

    def _price_change_apply(self, subscription: dict, change: dict) -> None:
        """Move the item to its new price; invoice and collect the prorations now when asked (or the cycle moved)."""
        item = change["item"]
        invoice = self._price_change_invoice(subscription, change, preview=False) if change["invoice_now"] else None
        if invoice is not None and not self._invoice_collect(invoice):
            raise StripeApiError(
                402,
                "This customer has no attached payment source or default payment method.",
                code="resource_missing",
            )
        item.update(
            price=copy.deepcopy(change["price"]),
            plan=self._plan_of(change["price"]),
            current_period_start=change["period"][0],
            current_period_end=change["period"][1],
        )
        if invoice is not None:
            self.objects[invoice["id"]] = invoice
            self.objects[subscription["customer"]]["next_invoice_sequence"] += 1
            subscription["latest_invoice"] = invoice["id"]

    def _invoice_collect(self, invoice: dict, *, payment_method: str | None = None, failed_attempts: int = 0) -> bool:
        """Charge an open invoice to the card that pays it; False when there is no card."""
        now = self._now()
        if invoice["amount_due"] == 0:
            invoice.update(status="paid", amount_remaining=0)
            invoice["status_transitions"]["paid_at"] = now
            return True
        subscription = self.objects.get(invoice["parent"]["subscription_details"]["subscription"]) or {}
        customer = self.objects[invoice["customer"]]
        method_id = (
            payment_method
            or subscription.get("default_payment_method")
            or customer["invoice_settings"]["default_payment_method"]
        )
        if not method_id:
            return False
        method = self.objects[method_id]
        for _ in range(failed_attempts):
            self._payment_attempt(invoice, method, paid=False)
        self._payment_attempt(invoice, method, paid=True)
        invoice.update(status="paid", amount_paid=invoice["amount_due"], amount_remaining=0)
        invoice["status_transitions"]["paid_at"] = self._now()
        return True

    def _payment_attempt(self, invoice: dict, method: dict, *, paid: bool) -> None:
        now = self._now()
        amount = invoice["amount_due"]
        description = (
            "Subscription creation" if invoice["billing_reason"] == "subscription_create" else "Subscription update"
        )
        intent = shape("payment_intent_succeeded")
        charge = shape("charge_succeeded")
        intent_id, charge_id = self._new_id("pi"), self._new_id("ch")
        intent.update(
            id=intent_id,
            amount=amount,
            amount_received=amount if paid else 0,
            client_secret=f"{intent_id}_secret_{secrets.token_hex(12)}",
            created=now,
            currency=invoice["currency"],
            customer=invoice["customer"],
            description=description,
            latest_charge=charge_id,
            payment_method=method["id"],
            status="succeeded" if paid else "canceled",
            canceled_at=None if paid else now,
            cancellation_reason=None if paid else "automatic",
        )
        card = method["card"]
        charge.update(
            id=charge_id,
            amount=amount,
            amount_captured=amount if paid else 0,
            balance_transaction=self._new_id("txn") if paid else None,
            created=now,
            currency=invoice["currency"],
            customer=invoice["customer"],
            description=description,
            payment_intent=intent_id,
            payment_method=method["id"],
            billing_details=copy.deepcopy(method["billing_details"]),
            receipt_url=f"https://pay.stripe.com/receipts/invoices/test_{charge_id}",
            status="succeeded" if paid else "failed",
            paid=paid,
            captured=paid,
        )
        details = charge["payment_method_details"]["card"]
        details.update(
            amount_authorized=amount if paid else None,
            brand=card["brand"],
            country=card["country"],
            exp_month=card["exp_month"],
            exp_year=card["exp_year"],
            fingerprint=card["fingerprint"],
            funding=card["funding"],
            last4=card["last4"],
            network=card["brand"],
        )
        if not paid:
            charge.update(failure_code="card_declined", failure_message="Your card was declined.")
            charge["outcome"].update(
                network_status="declined_by_network",
                reason="generic_decline",
                seller_message="The bank did not return any further details with this decline.",
                type="issuer_declined",
            )
        payment = shape("invoice_paid_payments_expanded")["payments"]["data"][0]
        payment.update(
            id=self._new_id("inpay"),
            amount_paid=amount if paid else None,
            amount_requested=amount,
            created=now,
            currency=invoice["currency"],
            invoice=invoice["id"],
            is_default=paid,
            payment={"payment_intent": intent_id, "type": "payment_intent"},
            status="paid" if paid else "canceled",
            status_transitions={"canceled_at": None if paid else now, "paid_at": now if paid else None},
        )
        invoice.update(attempted=True, attempt_count=invoice["attempt_count"] + 1)
        for obj in (intent, charge, payment):
            self.objects[obj["id"]] = obj

    def _invoice_retrieve(self, params: dict, invoice: str) -> dict:
        self._only(params, "")
        return self._get(invoice, "invoice")

    def _invoice_list(self, params: dict) -> dict:
        self._only(params, "customer subscription status limit")
        found = [
            invoice
            for invoice in self._of_kind("invoice")
            if params.get("customer") in (None, invoice["customer"])
            and params.get("status") in (None, invoice["status"])
            and params.get("subscription") in (None, invoice["parent"]["subscription_details"]["subscription"])
        ]
        return self._list("/v1/invoices", found, params)

    def _invoice_pay(self, params: dict, invoice: str) -> dict:
        self._only(params, "payment_method off_session")
        obj = self._get(invoice, "invoice")
        if obj["status"] == "paid":
            raise StripeApiError(400, "Invoice is already paid", code="invoice_already_paid")
        if obj["status"] != "open":
            raise StripeApiError(400, f"You can only pay an invoice that is open; this one is {obj['status']}.")
        if not self._invoice_collect(obj, payment_method=params.get("payment_method")):
            raise StripeApiError(
                400,
                "This customer has no attached payment source or default payment method. Please consider adding a "
                "default payment method.",
            )
        return obj

    def _invoice_payment_list(self, params: dict) -> dict:
        self._only(params, "invoice status limit")
        found = [
            payment
            for payment in self._of_kind("invoice_payment")
            if params.get("invoice") in (None, payment["invoice"]) and params.get("status") in (None, payment["status"])
        ]
        return self._list("/v1/invoice_payments", found, params)

    def _invoice_payment_retrieve(self, params: dict, invoice_payment: str) -> dict:
        self._only(params, "")
        return self._get(invoice_payment, "invoice_payment")

    def _payment_intent_retrieve(self, params: dict, intent: str) -> dict:
        self._only(params, "client_secret")
        return self._get(intent, "payment_intent")

    def _charge_retrieve(self, params: dict, charge: str) -> dict:
        self._only(params, "")
        return self._get(charge, "charge")

    # Refunds --------------------------------------------------------------------------------

    def _refund_create(self, params: dict) -> dict:
        self._only(params, "charge payment_intent amount reason metadata")
        charge_id, intent_id = params.get("charge"), params.get("payment_intent")
        if not charge_id and not intent_id:
            raise StripeApiError(
                400, "One of the following params should be provided for this request: payment_intent or charge."
            )
        if intent_id:
            intent = self._get(intent_id, "payment_intent", param="payment_intent")
            if charge_id and charge_id != intent["latest_charge"]:
                raise StripeApiError(
                    400, f"Charge {charge_id} does not belong to PaymentIntent {intent_id}.", param="charge"
                )
            charge_id = intent["latest_charge"]
        charge = self._get(charge_id, "charge", param="charge")
        left = charge["amount_captured"] - charge["amount_refunded"]
        if left <= 0:
            raise StripeApiError(400, f"Charge {charge_id} has already been refunded.", code="charge_already_refunded")
        amount = int(params["amount"]) if params.get("amount") else left
        if amount > left:
            raise StripeApiError(
                400,
                f"Refund amount ({_money(amount, charge['currency'])}) is greater than unrefunded amount on charge "
                f"({_money(left, charge['currency'])})",
                param="amount",
            )
        status = self.next_refund_status
        refund = shape("refund_succeeded")
        refund.update(
            id=self._new_id("re"),
            amount=amount,
            balance_transaction=self._new_id("txn"),
            charge=charge_id,
            created=self._now(),
            currency=charge["currency"],
            customer=charge["customer"],
            metadata=_metadata({}, params.get("metadata") or {}),
            payment_intent=charge["payment_intent"],
            payment_method=charge["payment_method"],
            reason=params.get("reason") or None,
            status=status,
            pending_reason="processing" if status == "pending" else None,
        )
        refund["destination_details"]["card"].update(
            reference=None if status == "pending" else secrets.token_hex(8),
            reference_status="pending" if status == "pending" else "available",
            type="pending" if status == "pending" else "refund",
        )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        self.objects[refund["id"]] = refund
        return refund

    def _refund_retrieve(self, params: dict, refund: str) -> dict:
        self._only(params, "")
        return self._get(refund, "refund")

    def _refund_list(self, params: dict) -> dict:
        self._only(params, "charge payment_intent limit")
        found = [
            refund
            for refund in self._of_kind("refund")
            if params.get("charge") in (None, refund["charge"])
            and params.get("payment_intent") in (None, refund["payment_intent"])
        ]
        return self._list("/v1/refunds", found, params)

    # The billing portal ---------------------------------------------------------------------

    def _billing_portal_session_create(self, params: dict) -> dict:
        self._only(params, "customer return_url flow_data locale configuration")
        if not params.get("customer"):
            raise _required("customer")
        self._get(params["customer"], "customer", param="customer")
        session = shape("billing_portal_session")
        flow_data = params.get("flow_data")
        session.update(
            id=self._new_id("bps"),
            created=self._now(),
            customer=params["customer"],
            return_url=params.get("return_url") or None,
            locale=params.get("locale") or None,
            url=f"https://billing.stripe.com/p/session/test_{secrets.token_urlsafe(24)}",
        )
        if flow_data:
            session["flow"]["type"] = flow_data["type"]
        else:
            session["flow"] = None
        return session


def _metadata(current: dict, change) -> dict:
    """Stripe's metadata update: "" clears it all, a key set to "" is removed, others are set."""
    if change == "":
        return {}
    merged = dict(current)
    for key, value in change.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def _address(current: dict | None, change) -> dict | None:
    if change == "":
        return None
    address = dict(current) if current else dict.fromkeys(ADDRESS_KEYS)
    for key, value in change.items():
        address[key] = value or None
    return address


def _period_end(start: int, recurring: dict) -> int:
    count = int(recurring.get("interval_count") or 1)
    interval = recurring["interval"]
    if interval == "day":
        return start + 86400 * count
    if interval == "week":
        return start + 7 * 86400 * count
    moment = datetime.fromtimestamp(start, tz=UTC)
    months = moment.month - 1 + count * (12 if interval == "year" else 1)
    year, month = moment.year + months // 12, months % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())


def _money(amount: int, currency: str) -> str:
    return f"{Decimal(amount) / 100:.2f} {currency.upper()}"
