"""The real Stripe SDK through our gateway, against localstripe (a stateful fake Stripe server)."""

import json
import time

import pytest
import stripe

from billing.gateways.base import (
    Address,
    CardDeclined,
    CustomerDetails,
    NotFound,
    SignatureInvalid,
    TemporarilyUnavailable,
)
from billing.gateways.stripe import StripeGateway

DETAILS = CustomerDetails(
    name="Dana Demo",
    email="dana@example.com",
    address=Address(line1="1 Rue Demo", city="Paris", postal_code="75001", country="FR"),
    tax_id_type="eu_vat",  # localstripe accepts eu_vat, nz_gst, au_abn and es_cif only
    tax_id_value="FR40303265045",
)


def new_card(gateway: StripeGateway, number: str) -> str:
    method = gateway.client.v1.payment_methods.create(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    return method.id


def tax_ids(gateway, customer_id):
    return [(t.type, t.value) for t in gateway.client.v1.customers.tax_ids.list(customer_id).data]


def test_customer_create_and_update_push_name_email_address_and_tax_id(stripe_gateway):
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="create-1")
    assert (customer.name, customer.email) == ("Dana Demo", "dana@example.com")
    assert tax_ids(stripe_gateway, customer.id) == [("eu_vat", "FR40303265045")]

    changed = CustomerDetails(
        name="Dana Doe",
        email="dana.doe@example.com",
        address=Address(line1="2 Hauptstraße", city="Berlin", country="DE"),
        tax_id_type="eu_vat",
        tax_id_value="DE123456788",
    )
    updated = stripe_gateway.customer_update(customer_id=customer.id, details=changed, idempotency_key="update-1")

    assert (updated.name, updated.email) == ("Dana Doe", "dana.doe@example.com")
    stored = stripe_gateway.client.v1.customers.retrieve(customer.id)
    assert stored.address.line1 == "2 Hauptstraße"
    assert tax_ids(stripe_gateway, customer.id) == [("eu_vat", "DE123456788")]


def test_a_good_card_becomes_the_customers_default(stripe_gateway):
    # localstripe's subscriptions do not take default_payment_method, so the subscription part of
    # card_attach_as_default (subscription_ids) cannot run here.
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="card-customer")
    plan = stripe_gateway.client.v1.plans.create(
        params={"product": {"name": "Membership"}, "amount": 1200, "currency": "gbp", "interval": "month"}
    )
    first = new_card(stripe_gateway, "4242424242424242")
    stripe_gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id=first, subscription_ids=[], idempotency_key="card-1"
    )
    subscription = stripe_gateway.client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )

    second = new_card(stripe_gateway, "5555555555554444")
    card = stripe_gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id=second, subscription_ids=[], idempotency_key="card-2"
    )

    assert card.last4 == "4444"  # localstripe calls every card "visa"; brands are checked on Stripe's examples
    assert stripe_gateway.customer_retrieve(customer_id=customer.id).default_payment_method_id == second
    mirrored = stripe_gateway.subscription_retrieve(subscription_id=subscription.id)
    assert (mirrored.status, mirrored.amount, mirrored.currency, mirrored.interval) == ("active", 1200, "gbp", "month")
    assert mirrored.current_period_end is not None
    assert {c.last4 for c in stripe_gateway.cards_list(customer_id=customer.id)} == {"4242", "4444"}


def test_a_declined_card_raises_with_stripes_message_and_keeps_the_old_default(stripe_gateway):
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="decline-customer")
    good = new_card(stripe_gateway, "4242424242424242")
    stripe_gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id=good, subscription_ids=[], idempotency_key="decline-1"
    )
    declined = new_card(stripe_gateway, "4000000000000002")

    with pytest.raises(CardDeclined) as error:
        stripe_gateway.card_attach_as_default(
            customer_id=customer.id, payment_method_id=declined, subscription_ids=[], idempotency_key="decline-2"
        )

    assert error.value.user_message == "Your card was declined."
    assert stripe_gateway.customer_retrieve(customer_id=customer.id).default_payment_method_id == good


def test_cancel_at_period_end_and_undo(stripe_gateway):
    customer = stripe_gateway.customer_create(details=DETAILS, idempotency_key="cancel-customer")
    card = new_card(stripe_gateway, "4242424242424242")
    stripe_gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id=card, subscription_ids=[], idempotency_key="cancel-card"
    )
    plan = stripe_gateway.client.v1.plans.create(
        params={"product": {"name": "Club"}, "amount": 900, "currency": "eur", "interval": "year"}
    )
    subscription = stripe_gateway.client.v1.subscriptions.create(
        params={"customer": customer.id, "items": [{"plan": plan.id}]}
    )

    pending = stripe_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription.id, cancel=True, idempotency_key="cancel-1"
    )
    assert pending.cancel_at_period_end is True and pending.status == "active"

    undone = stripe_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription.id, cancel=False, idempotency_key="cancel-2"
    )
    assert undone.cancel_at_period_end is False

    ended = stripe_gateway.subscription_cancel_now(subscription_id=subscription.id, idempotency_key="cancel-3")
    assert ended.status == "canceled"


def test_an_unknown_object_raises_not_found(stripe_gateway):
    with pytest.raises(NotFound):
        stripe_gateway.subscription_retrieve(subscription_id="sub_doesnotexist")


def test_an_unreachable_stripe_raises_temporarily_unavailable():
    gateway = StripeGateway(api_key="sk_test_x", api_base="http://127.0.0.1:9")  # nothing listens on port 9

    with pytest.raises(TemporarilyUnavailable) as error:
        gateway.customer_retrieve(customer_id="cus_123")

    assert "nothing will be done twice" in error.value.user_message


def signed(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = timestamp or int(time.time())
    signature = stripe.WebhookSignature._compute_signature(f"{timestamp}.{payload.decode()}", secret)
    return f"t={timestamp},v1={signature}"


def test_a_signed_event_is_read_and_forged_stale_or_tampered_ones_are_refused(stripe_resources):
    gateway = StripeGateway(api_key="sk_test_x", api_base="http://127.0.0.1:9")
    envelope = dict(
        stripe_resources["event"],
        type="customer.subscription.updated",
        data={"object": stripe_resources["subscription"]},
    )
    payload = json.dumps(envelope).encode()
    secret = "whsec_test_secret"

    event = gateway.event_construct(payload=payload, signature=signed(payload, secret), secret=secret)
    assert event.type == "customer.subscription.updated"
    assert event.object_id == stripe_resources["subscription"]["id"]

    for signature, body in [
        (signed(payload, "whsec_other_secret"), payload),  # forged
        (signed(payload, secret, timestamp=int(time.time()) - 3600), payload),  # stale
        (signed(payload, secret), payload.replace(b"active", b"canceled")),  # tampered
        ("", payload),  # missing
    ]:
        with pytest.raises(SignatureInvalid):
            gateway.event_construct(payload=body, signature=signature, secret=secret)
