"""What the Stripe gateway puts on the wire, through the real SDK, on the stand-in (tests/contract).

The stand-in refuses a parameter the pinned SDK's typed params do not have, replays an idempotency
key as Stripe does, and leaves includable fields out unless expanded, so these requests are checked
against Stripe's definition rather than our own idea of it.
"""

from datetime import UTC, datetime

import pytest

from billing.gateways.base import (
    CustomerDetails,
    DeadlinePassed,
    InvalidRequest,
    NotFound,
    TemporarilyUnavailable,
    payment_deadline,
)
from billing.gateways.stripe import API_VERSION

PAUSE_UNTIL = datetime(2027, 1, 1, tzinfo=UTC)


def writes(standin):
    return [r for r in standin.requests() if r.method in ("POST", "DELETE")]


@pytest.fixture
def member(standin):
    """A customer with a card, subscribed to one monthly price."""
    customer = standin.customer_create(email="ada@example.com", name="Ada")
    card = standin.card_create(customer=customer, default=True)
    price = standin.price_create(amount=1500)
    subscription = standin.subscription_create(customer=customer, prices=[(price, 1)], default_payment_method=card)
    return customer, subscription


def test_every_write_carries_an_idempotency_key_and_the_pinned_version(standin_gateway, standin, member):
    customer, subscription = member
    gateway = standin_gateway
    gateway.customer_update(
        customer_id=customer,
        details=CustomerDetails(name="Ada", email="ada@example.com", tax_id_type="eu_vat", tax_id_value="DE123456788"),
        idempotency_key="k-customer",
    )
    gateway.setup_intent_create(customer_id=customer, idempotency_key="k-setup")
    new_card = standin.card_create()
    gateway.card_attach_as_default(
        customer_id=customer, payment_method_id=new_card, subscription_ids=[subscription], idempotency_key="k-card"
    )
    gateway.subscription_set_cancel_at_period_end(subscription_id=subscription, cancel=True, idempotency_key="k-cancel")
    gateway.subscription_pause(subscription_id=subscription, resumes_at=PAUSE_UNTIL, idempotency_key="k-pause")
    gateway.subscription_resume(subscription_id=subscription, status_paused=False, idempotency_key="k-resume")

    sent = writes(standin)
    assert sent and all(r.idempotency_key for r in sent), sent
    assert len({r.idempotency_key for r in sent}) == len(sent)  # one key per distinct write
    assert all(r.status == 200 and not r.replayed for r in sent), [(r.path, r.status, r.error) for r in sent]
    assert {r.stripe_version for r in standin.requests()} == {API_VERSION}


def test_a_setup_intent_asks_for_nothing_the_pinned_version_lacks(standin_gateway, standin, member):
    customer, _ = member

    intent = standin_gateway.setup_intent_create(customer_id=customer, idempotency_key="k")

    (create,) = standin.requests("POST", "/v1/setup_intents")
    assert create.status == 200 and "payment_method_types[0]" not in create.params
    assert intent.client_secret.startswith(intent.id)


def test_the_new_card_becomes_the_default_of_the_customer_and_of_each_subscription_given(
    standin_gateway, standin, member
):
    customer, subscription = member
    new_card = standin.card_create()

    standin_gateway.card_attach_as_default(
        customer_id=customer, payment_method_id=new_card, subscription_ids=[subscription], idempotency_key="k"
    )

    assert standin.get(customer)["invoice_settings"]["default_payment_method"] == new_card
    assert standin.get(subscription)["default_payment_method"] == new_card


def test_pause_sends_pause_collection_and_resume_unsets_it(standin_gateway, standin, member):
    _, subscription = member
    standin_gateway.subscription_pause(subscription_id=subscription, resumes_at=PAUSE_UNTIL, idempotency_key="k1")
    assert standin.get(subscription)["pause_collection"]["resumes_at"] == int(PAUSE_UNTIL.timestamp())

    resumed = standin_gateway.subscription_resume(
        subscription_id=subscription, status_paused=False, idempotency_key="k2"
    )

    assert standin.get(subscription)["pause_collection"] is None and resumed.paused is False


def test_a_paused_subscription_is_resumed_through_its_own_endpoint(standin_gateway, standin, member):
    _, subscription = member
    standin.subscription_pause(subscription)

    resumed = standin_gateway.subscription_resume(subscription_id=subscription, status_paused=True, idempotency_key="k")

    assert standin.requests("POST", f"/v1/subscriptions/{subscription}/resume")
    assert resumed.status == "active" and resumed.paused is False


def test_an_invoice_is_read_with_its_payments(standin_gateway, standin, member):
    _, subscription = member
    invoice_id = standin.get(subscription)["latest_invoice"]

    invoice = standin_gateway.invoice_retrieve(invoice_id=invoice_id)

    intent, charge = standin.paid_by(invoice_id)
    assert invoice.payment_intent_id == intent
    assert invoice.subscription_id == subscription and invoice.status == "paid"


def test_a_retried_write_reuses_its_idempotency_key(standin_gateway, standin, member):
    _, subscription = member
    standin.fail(f"/v1/subscriptions/{subscription}", status=500, times=1, method="POST")

    standin_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription, cancel=True, idempotency_key="k"
    )

    first, second = standin.requests("POST", f"/v1/subscriptions/{subscription}")
    assert first.idempotency_key == second.idempotency_key == "k"
    assert standin.get(subscription)["cancel_at_period_end"] is True


def test_after_the_bounded_retries_a_500_is_temporarily_unavailable(standin_gateway, standin, member):
    _, subscription = member
    standin.fail(f"/v1/subscriptions/{subscription}", status=500, times=10, method="POST")

    with pytest.raises(TemporarilyUnavailable):
        standin_gateway.subscription_set_cancel_at_period_end(
            subscription_id=subscription, cancel=True, idempotency_key="k-cancel"
        )

    keys = [r.idempotency_key for r in standin.requests("POST", f"/v1/subscriptions/{subscription}")]
    assert keys == ["k-cancel"] * 3  # the first try and two retries, never a second key


def test_a_hanging_stripe_ends_at_the_deadline_retries_included(standin_gateway, standin, member):
    _, subscription = member
    standin.hang(f"/v1/subscriptions/{subscription}", seconds=30, times=5, method="POST")

    started = datetime.now(UTC)
    with payment_deadline(2), pytest.raises(DeadlinePassed):
        standin_gateway.subscription_set_cancel_at_period_end(
            subscription_id=subscription, cancel=True, idempotency_key="k"
        )

    assert (datetime.now(UTC) - started).total_seconds() < 3


def test_a_cancellation_carries_the_customers_reason_to_stripe(standin_gateway, standin, member):
    _, subscription = member

    standin_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription, cancel=True, idempotency_key="k", feedback="too_expensive", comment="Tight."
    )

    (update,) = standin.requests("POST", f"/v1/subscriptions/{subscription}")
    assert update.status == 200
    assert update.params["cancellation_details"] == {"feedback": "too_expensive", "comment": "Tight."}
    remote = standin.get(subscription)
    assert remote["cancel_at_period_end"] is True
    assert (remote["cancellation_details"]["feedback"], remote["cancellation_details"]["comment"]) == (
        "too_expensive",
        "Tight.",
    )


def test_a_cancellation_without_a_reason_sends_no_cancellation_details(standin_gateway, standin, member):
    _, subscription = member

    standin_gateway.subscription_set_cancel_at_period_end(
        subscription_id=subscription, cancel=True, idempotency_key="k"
    )

    (update,) = standin.requests("POST", f"/v1/subscriptions/{subscription}")
    assert "cancellation_details" not in update.params


def test_the_retention_coupon_is_added_to_the_discounts_the_subscription_already_has(standin_gateway, standin, member):
    _, subscription = member
    standin.coupon_create("LOYAL10", percent_off=10)
    standin.coupon_create("STAY50")
    standin_gateway.subscription_coupon_add(subscription_id=subscription, coupon_id="LOYAL10", idempotency_key="k1")
    (loyal,) = standin.get(subscription)["discounts"]

    kept = standin_gateway.subscription_coupon_add(
        subscription_id=subscription, coupon_id="STAY50", idempotency_key="k2"
    )

    discounts = standin.get(subscription)["discounts"]
    assert discounts[0] == loyal and len(discounts) == 2
    assert [standin.get(d)["source"]["coupon"] for d in discounts] == ["LOYAL10", "STAY50"]
    assert kept.discount_ids == tuple(discounts)
    last = standin.requests("POST", f"/v1/subscriptions/{subscription}")[-1]
    assert last.params["discounts"] == [{"discount": loyal}, {"coupon": "STAY50"}]


def test_a_coupon_replayed_under_its_key_is_redeemed_once(standin_gateway, standin, member):
    _, subscription = member
    standin.coupon_create("STAY50")
    standin.fail(f"/v1/subscriptions/{subscription}$", status=500, times=1, method="POST")

    standin_gateway.subscription_coupon_add(subscription_id=subscription, coupon_id="STAY50", idempotency_key="k")

    assert len(standin.get(subscription)["discounts"]) == 1
    assert standin.get("STAY50")["times_redeemed"] == 1


def test_a_coupon_stripe_does_not_have_or_that_is_used_up_is_refused_and_nothing_is_redeemed(
    standin_gateway, standin, member
):
    _, subscription = member
    standin.coupon_create("ONCE", max_redemptions=1)
    standin_gateway.subscription_coupon_add(subscription_id=subscription, coupon_id="ONCE", idempotency_key="k1")

    for coupon, refusal in (("NOPE", NotFound), ("ONCE", InvalidRequest)):
        with pytest.raises(refusal):
            standin_gateway.subscription_coupon_add(
                subscription_id=subscription, coupon_id=coupon, idempotency_key=coupon
            )

    assert len(standin.get(subscription)["discounts"]) == 1


def test_pay_now_retries_the_open_invoice_with_the_default_card_once_under_its_key(standin_gateway, standin, member):
    _, subscription = member
    invoice_id = standin.renewal_fail(subscription)
    failed = standin_gateway.invoice_retrieve(invoice_id=invoice_id)
    assert (failed.status, failed.attempt_count, failed.amount_due) == ("open", 1, 1500)

    paid = standin_gateway.invoice_pay(invoice_id=invoice_id, idempotency_key="k-pay")
    again = standin_gateway.invoice_pay(invoice_id=invoice_id, idempotency_key="k-pay")

    (first, second) = standin.requests("POST", f"/v1/invoices/{invoice_id}/pay")
    assert first.params == {} and not first.replayed and second.replayed  # no card named: the default pays
    assert paid.status == again.status == "paid" and paid.attempt_count == 2
    assert paid.payment_intent_id and paid.charge_id  # the paying attempt, read through its PaymentIntent


def test_pay_now_on_a_paid_invoice_is_refused(standin_gateway, standin, member):
    _, subscription = member
    invoice_id = standin.get(subscription)["latest_invoice"]

    with pytest.raises(InvalidRequest):
        standin_gateway.invoice_pay(invoice_id=invoice_id, idempotency_key="k")


def test_an_invoice_is_read_with_the_card_its_charge_was_paid_with(standin_gateway, standin, member):
    _, subscription = member
    invoice_id = standin.get(subscription)["latest_invoice"]

    invoice = standin_gateway.invoice_retrieve(invoice_id=invoice_id)

    intent, charge = standin.paid_by(invoice_id)
    card = standin.get(charge)["payment_method_details"]["card"]
    assert (invoice.card_brand, invoice.card_last4) == (card["brand"], card["last4"])
    assert invoice.charge_id == charge
    [read] = standin.requests("GET", f"/v1/payment_intents/{intent}")
    assert "expand" in read.params  # the charge came expanded with the intent: one call, not two


def test_deleting_a_customer_ends_its_subscriptions_and_a_second_delete_is_harmless(standin_gateway, standin, member):
    customer, subscription = member

    standin_gateway.customer_delete(customer_id=customer)
    standin_gateway.customer_delete(customer_id=customer)  # already gone: Stripe answers 404, which is fine

    first, second = standin.requests("DELETE", f"/v1/customers/{customer}")
    assert first.status == 200 and second.status == 404
    assert first.idempotency_key is None  # a DELETE takes none
    assert standin.get(customer)["deleted"] is True
    assert standin.get(subscription)["status"] == "canceled"
