import pytest

from billing.gateways.stripe import StripeGateway
from tests.contract.standin import API_KEY, WEBHOOK_SECRET, StripeStandin
from tests.webhooks import post_and_apply


@pytest.fixture(scope="session")
def standin_server():
    """One stand-in per test process (so one per xdist worker), on a free loopback port."""
    server = StripeStandin().start()
    yield server
    server.stop()


@pytest.fixture
def standin(standin_server):
    """The stand-in, empty for each test; anything still hanging at the end is let go."""
    standin_server.reset()
    yield standin_server
    standin_server.reset()


@pytest.fixture
def standin_gateway(standin, settings) -> StripeGateway:
    """The portal's real Stripe gateway, and every get_gateway() of the test, pointed at the stand-in."""
    settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
    settings.STRIPE_API_BASE = standin.url
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return StripeGateway(api_key=API_KEY, api_base=standin.url)


@pytest.fixture
def deliver(client, standin_gateway, standin, run_tasks):
    """POST a webhook event to /stripe/webhook/ as Stripe sends it (whole object, signed), then let the
    task worker apply it; `apply=False` makes only the request."""

    def post(event_type: str, obj, *, previous_attributes: dict | None = None, apply: bool = True):
        body, signature = standin.webhook(event_type, obj, previous_attributes=previous_attributes)
        return post_and_apply(
            lambda: client.post(
                "/stripe/webhook/", data=body, content_type="application/json", headers={"Stripe-Signature": signature}
            ),
            run_tasks,
            apply=apply,
        )

    return post
