import hashlib
import hmac
import json
import sys
import time
import uuid
from pathlib import Path

import pytest

from billing.gateways.fake import FakeGateway
from billing.gateways.stripe import StripeGateway
from tests.contract import conftest as contract_fixtures
from tests.servers import free_port, loopback_server
from tests.webhooks import post_and_apply

# The Stripe stand-in of tests/contract, shared rather than copied.
standin_server = contract_fixtures.standin_server
standin = contract_fixtures.standin
standin_gateway = contract_fixtures.standin_gateway
deliver = contract_fixtures.deliver

SHAPES = Path(__file__).resolve().parents[1] / "contract" / "shapes"


@pytest.fixture(scope="session")
def stripe_resources() -> dict:
    """One current-shape object of each kind the recording servers answer with (tests/contract/shapes/)."""

    def shape(name: str) -> dict:
        return json.loads((SHAPES / f"{name}.json").read_text())

    return {
        "customer": shape("customer"),
        "payment_method": shape("payment_method_card"),
        "setup_intent": shape("setup_intent_requires_payment_method"),
        "subscription": shape("subscription_active"),
        "refund": shape("refund_succeeded"),
        "invoice": shape("invoice_paid_payments_expanded"),
        "event": shape("event_invoice_paid"),
    }


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    """A real localstripe server on a free port, its state file in a temporary folder."""
    port = free_port()
    state = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    command = [sys.executable, "-m", "portal.localstripe", "--port", str(port), "--state", str(state), "--from-scratch"]
    with loopback_server(command, port=port, name="localstripe") as url:
        yield url


@pytest.fixture
def stripe_gateway(localstripe_url) -> StripeGateway:
    return StripeGateway(api_key="sk_test_localstripe", api_base=localstripe_url)


@pytest.fixture
def gateway(settings):
    """The in-memory fake gateway, empty for each test, and the one `get_gateway()` returns."""
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()


WEBHOOK_SECRET = "whsec_test_portal"


def stripe_signature(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """A Stripe-Signature header as Stripe computes it: HMAC-SHA256 of "timestamp.body"."""
    timestamp = timestamp or int(time.time())
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(event_type: str, obj: dict, event_id: str | None = None) -> bytes:
    """A webhook body in Stripe's envelope."""
    return json.dumps(
        {
            "id": event_id or f"evt_{uuid.uuid4().hex[:24]}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": obj},
            "livemode": False,
        }
    ).encode()


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET


@pytest.fixture
def post_webhook(client, webhook_secret, run_tasks):
    """POST a signed event body to /stripe/webhook/ as Stripe would, then let the task worker apply what
    the request queued; `apply=False` makes only the request. Returns the response."""

    def post(body: bytes, signature: str | None = None, *, apply: bool = True):
        return post_and_apply(
            lambda: client.post(
                "/stripe/webhook/",
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": stripe_signature(body) if signature is None else signature},
            ),
            run_tasks,
            apply=apply,
        )

    return post


@pytest.fixture
def stripe_customer(customer, gateway):
    """The `customer` fixture with a customer at the (fake) processor."""
    from billing.services import stripe_customer_ensure

    stripe_customer_ensure(customer=customer)
    return customer


@pytest.fixture
def member(stripe_customer):
    """The signed-up customer's user, who acts on their own subscriptions."""
    return stripe_customer.user


@pytest.fixture
def member_client(client, member):
    client.force_login(member, backend="accounts.backends.PortalAuthenticationBackend")
    return client


def calls(gateway, name: str) -> list[dict]:
    """The keyword arguments of each call the fake gateway took to `name`, in order."""
    return [kwargs for call, kwargs in gateway.calls if call == name]


@pytest.fixture
def subscription_offer(db):
    from tests.factories import OfferFactory

    return OfferFactory(kind="subscription", interval="month", price_amount=1500, stripe_price_id="price_member")


@pytest.fixture
def live_subscription(stripe_customer, gateway, subscription_offer):
    """An active subscription at the processor, mirrored, paid by the customer's default card."""
    from billing.services import card_set_default, subscription_sync

    card_set_default(customer=stripe_customer, payment_method_id="pm_first", by=None)
    remote = gateway.subscription_create(
        customer_id=stripe_customer.stripe_customer_id, amount=1500, price_id="price_member"
    )
    return subscription_sync(remote=remote)


@pytest.fixture
def paid_purchase(live_subscription, stripe_customer, gateway):
    """The subscription's first invoice, paid and recorded: a purchase with its receipt and access."""
    from billing.services import invoice_record_paid

    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        charge_id="ch_paid_purchase",
    )
    return invoice_record_paid(invoice=invoice)
