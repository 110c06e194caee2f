import pytest

from billing.gateways.base import (
    AuthenticationRequired,
    CardDeclined,
    CustomerDetails,
    PaymentError,
    TemporarilyUnavailable,
    get_gateway,
)
from billing.gateways.fake import DECLINE_MESSAGE, FakeGateway


def test_get_gateway_picks_the_class_named_in_settings(settings):
    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"

    assert isinstance(get_gateway(), FakeGateway)


def test_the_fake_succeeds_by_default(gateway):
    customer = gateway.customer_create(details=CustomerDetails(name="A", email="a@example.com"), idempotency_key="k")
    card = gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id="pm_good", subscription_ids=[], idempotency_key="k2"
    )

    assert gateway.customer_retrieve(customer_id=customer.id).default_payment_method_id == card.id


@pytest.mark.parametrize(
    ("payment_method", "error", "message"),
    [
        ("pm_card_declined", CardDeclined, DECLINE_MESSAGE),
        ("pm_card_3ds", AuthenticationRequired, str(AuthenticationRequired.default_user_message)),
        ("pm_timeout", TemporarilyUnavailable, str(TemporarilyUnavailable.default_user_message)),
    ],
)
def test_magic_payment_methods_fail_and_keep_the_old_default(gateway, payment_method, error, message):
    customer = gateway.customer_create(details=CustomerDetails(name="A", email="a@example.com"), idempotency_key="k")
    gateway.card_attach_as_default(
        customer_id=customer.id, payment_method_id="pm_good", subscription_ids=[], idempotency_key="k1"
    )

    with pytest.raises(error) as raised:
        gateway.card_attach_as_default(
            customer_id=customer.id, payment_method_id=payment_method, subscription_ids=[], idempotency_key="k2"
        )

    assert raised.value.user_message == message
    assert gateway.customer_retrieve(customer_id=customer.id).default_payment_method_id == "pm_good"


def test_a_retried_refund_with_the_same_key_refunds_once(gateway):
    first = gateway.refund_create(
        charge_id="ch_1", payment_intent_id="", amount=500, reason="", idempotency_key="refund-1"
    )
    again = gateway.refund_create(
        charge_id="ch_1", payment_intent_id="", amount=500, reason="", idempotency_key="refund-1"
    )

    assert first == again
    assert len(gateway.refunds) == 1


def test_only_declines_may_show_the_processors_own_text():
    assert CardDeclined("Insufficient funds.").user_message == "Insufficient funds."
    assert PaymentError("internal detail: param foo").user_message != "internal detail: param foo"
