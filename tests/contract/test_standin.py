"""The stand-in behaves as Stripe does where the portal depends on it, as the real SDK sees it."""

import json
import time
from decimal import Decimal

import pytest
import stripe

from tests.contract.standin import API_KEY, WEBHOOK_SECRET, decode_form


def sdk_client(standin, *, retries: int = 0, timeout: float = 5, **options) -> stripe.StripeClient:
    return stripe.StripeClient(
        API_KEY,
        base_addresses={"api": standin.url},
        max_network_retries=retries,
        http_client=stripe.RequestsClient(timeout=timeout),
        **options,
    )


@pytest.fixture
def sdk(standin):
    return sdk_client(standin)


@pytest.fixture
def customer_id(standin):
    return standin.customer_create(email="ada@example.com", name="Ada Lovelace")


@pytest.fixture
def paid_subscription(standin, customer_id):
    """An active subscription whose first invoice took two card attempts (one declined, one paid)."""
    card = standin.card_create(customer=customer_id)
    price = standin.price_create(amount=1500)
    return standin.subscription_create(
        customer=customer_id, prices=[(price, 1)], default_payment_method=card, failed_attempts=1
    )


# Unknown parameters ---------------------------------------------------------------------------


def test_a_parameter_the_pinned_sdk_does_not_name_is_refused_and_nothing_is_made(sdk, standin, customer_id):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.setup_intents.create(params={"customer": customer_id, "payment_method_types": ["card"]})

    assert refused.value.http_status == 400
    assert (refused.value.code, refused.value.param) == ("parameter_unknown", "payment_method_types")
    assert refused.value.user_message == "Received unknown parameter: payment_method_types"
    assert not [obj for obj in standin.objects.values() if obj["object"] == "setup_intent"]


def test_the_parameter_the_pinned_sdk_names_instead_is_taken(sdk, customer_id):
    intent = sdk.v1.setup_intents.create(params={"customer": customer_id, "allowed_payment_method_types": ["card"]})

    assert intent.status == "requires_payment_method"
    assert intent.payment_method_types == ["card"] and intent.client_secret.startswith(f"{intent.id}_secret_")


def test_an_unknown_nested_parameter_is_named_by_its_full_path(sdk, standin, customer_id):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.customers.update(customer_id, params={"invoice_settings": {"default_card": "pm_123"}})

    assert refused.value.param == "invoice_settings[default_card]"
    assert standin.requests("POST")[0].error["code"] == "parameter_unknown"


def test_an_object_parameter_that_cannot_be_unset_refuses_an_empty_string(sdk, customer_id):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.customers.update(customer_id, params={"invoice_settings": ""})

    assert (refused.value.code, refused.value.param) == ("parameter_invalid_empty", "invoice_settings")


# Stripe's form encoding -----------------------------------------------------------------------


def test_form_bodies_decode_to_nested_hashes_and_lists_with_empty_strings_kept():
    body = "items[0][price]=price_1&items[0][quantity]=2&expand[]=payments&expand[]=lines&address=&metadata[a]=1"

    assert decode_form(body) == {
        "items": [{"price": "price_1", "quantity": "2"}],
        "expand": ["payments", "lines"],
        "address": "",
        "metadata": {"a": "1"},
    }


def test_what_the_sdk_encodes_arrives_as_stripe_reads_it_and_an_empty_string_unsets(sdk, standin, customer_id):
    price = standin.price_create(amount=700)
    card = standin.card_create(customer=customer_id)

    subscription = sdk.v1.subscriptions.create(
        params={"customer": customer_id, "items": [{"price": price, "quantity": 3}], "default_payment_method": card}
    )
    sdk.v1.customers.update(customer_id, params={"address": {"line1": "1 Quay Street", "country": "GB"}})
    cleared = sdk.v1.customers.update(customer_id, params={"address": ""})

    assert subscription.status == "active" and subscription["items"].data[0].quantity == 3
    assert standin.requests("POST", "/v1/subscriptions")[0].params["items"] == [{"price": price, "quantity": "3"}]
    assert cleared.address is None


# Idempotency ----------------------------------------------------------------------------------


def test_the_same_key_and_body_replays_the_first_answer_and_applies_nothing(sdk, standin, customer_id):
    first = sdk.v1.customers.update(customer_id, params={"name": "First"}, options={"idempotency_key": "k-first"})
    sdk.v1.customers.update(customer_id, params={"name": "Second"}, options={"idempotency_key": "k-second"})

    replay = sdk.v1.customers.update(customer_id, params={"name": "First"}, options={"idempotency_key": "k-first"})

    assert replay.to_dict() == first.to_dict() and replay.name == "First"  # the saved answer …
    assert standin.get(customer_id)["name"] == "Second"  # … and nothing applied again
    assert replay.last_response.headers["Idempotent-Replayed"] == "true"
    assert [entry.replayed for entry in standin.requests("POST")] == [False, False, True]


def test_a_create_replayed_under_its_key_makes_one_object(sdk, standin):
    params = {"email": "grace@example.com"}
    first = sdk.v1.customers.create(params=params, options={"idempotency_key": "k-create"})
    again = sdk.v1.customers.create(params=params, options={"idempotency_key": "k-create"})

    assert again.id == first.id
    assert [obj["id"] for obj in standin.objects.values() if obj["object"] == "customer"] == [first.id]


def test_another_body_under_a_used_key_is_an_idempotency_error_and_changes_nothing(sdk, standin, customer_id):
    sdk.v1.customers.update(customer_id, params={"name": "First"}, options={"idempotency_key": "k"})

    with pytest.raises(stripe.IdempotencyError) as refused:
        sdk.v1.customers.update(customer_id, params={"name": "Other"}, options={"idempotency_key": "k"})

    assert refused.value.http_status == 400
    assert "same parameters" in refused.value.user_message
    assert standin.get(customer_id)["name"] == "First"


def test_a_used_key_on_another_endpoint_is_an_idempotency_error(sdk, standin, customer_id):
    sdk.v1.customers.update(customer_id, params={"name": "First"}, options={"idempotency_key": "k"})

    with pytest.raises(stripe.IdempotencyError, match="same endpoint"):
        sdk.v1.setup_intents.create(params={"customer": customer_id}, options={"idempotency_key": "k"})

    assert not [obj for obj in standin.objects.values() if obj["object"] == "setup_intent"]


def test_a_refused_request_saves_nothing_under_its_key(sdk, standin, customer_id):
    with pytest.raises(stripe.InvalidRequestError):
        sdk.v1.customers.update(customer_id, params={"nickname": "x"}, options={"idempotency_key": "k"})

    sdk.v1.customers.update(customer_id, params={"name": "Fixed"}, options={"idempotency_key": "k"})

    assert standin.get(customer_id)["name"] == "Fixed"


# Includable and expandable fields -------------------------------------------------------------


def test_an_invoice_carries_its_payments_only_when_expanded(sdk, standin, paid_subscription):
    invoice_id = standin.get(paid_subscription)["latest_invoice"]

    plain = sdk.v1.invoices.retrieve(invoice_id).to_dict()
    expanded = sdk.v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})

    assert "payments" not in plain and "charge" not in plain and "payment_intent" not in plain
    paid, declined = expanded.payments.data  # newest first
    assert (paid.status, paid.is_default, paid.amount_paid) == ("paid", True, 1500)
    assert (declined.status, declined.is_default) == ("canceled", False)
    assert paid.payment.type == "payment_intent" and paid.payment.payment_intent.startswith("pi_")
    intent = sdk.v1.payment_intents.retrieve(paid.payment.payment_intent)
    assert intent.status == "succeeded" and intent.latest_charge.startswith("ch_")


def test_an_expansion_path_reaches_through_lists_to_the_charge(sdk, standin, paid_subscription):
    invoice_id = standin.get(paid_subscription)["latest_invoice"]

    invoice = sdk.v1.invoices.retrieve(
        invoice_id, params={"expand": ["payments.data.payment.payment_intent.latest_charge", "customer"]}
    )

    charge = invoice.payments.data[0].payment.payment_intent.latest_charge
    assert (charge.object, charge.amount, charge.status) == ("charge", 1500, "succeeded")
    assert invoice.customer.email == "ada@example.com"
    assert isinstance(invoice.payments.data[1].payment.payment_intent, stripe.PaymentIntent)


def test_an_expandable_id_stays_an_id_unless_expanded(sdk, paid_subscription):
    subscription = sdk.v1.subscriptions.retrieve(paid_subscription)
    expanded = sdk.v1.subscriptions.retrieve(
        paid_subscription, params={"expand": ["latest_invoice", "default_payment_method", "customer"]}
    )

    assert isinstance(subscription.latest_invoice, str) and isinstance(subscription.customer, str)
    assert expanded.latest_invoice.id == subscription.latest_invoice and expanded.latest_invoice.status == "paid"
    assert expanded.default_payment_method.card.last4 == "4242"
    assert expanded.customer.id == subscription.customer


def test_a_field_that_is_not_expandable_is_refused(sdk, customer_id):
    with pytest.raises(stripe.InvalidRequestError, match=r"This property cannot be expanded \(email\)"):
        sdk.v1.customers.retrieve(customer_id, params={"expand": ["email"]})


# Subscriptions --------------------------------------------------------------------------------


def test_subscription_periods_are_on_the_items_with_prices_as_decimal_strings(sdk, paid_subscription):
    subscription = sdk.v1.subscriptions.retrieve(paid_subscription)
    raw = json.loads(subscription.last_response.body)

    item = raw["items"]["data"][0]
    assert "current_period_end" not in raw
    assert item["current_period_end"] > item["current_period_start"]
    assert item["price"]["unit_amount_decimal"] == "1500"
    assert subscription["items"].data[0].price.unit_amount_decimal == Decimal("1500")


def test_resume_is_refused_unless_the_subscription_is_paused(sdk, standin, paid_subscription):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        sdk.v1.subscriptions.resume(paid_subscription)

    assert refused.value.http_status == 400 and "only a subscription with status 'paused'" in refused.value.user_message
    assert standin.get(paid_subscription)["status"] == "active"


def test_a_paused_subscription_resumes_to_active_with_a_new_paid_invoice(sdk, standin, paid_subscription):
    first_invoice = standin.get(paid_subscription)["latest_invoice"]
    standin.subscription_pause(paid_subscription)

    resumed = sdk.v1.subscriptions.resume(paid_subscription)

    assert (resumed.status, resumed.status_details) == ("active", None)
    assert resumed.latest_invoice != first_invoice
    assert sdk.v1.invoices.retrieve(resumed.latest_invoice).status == "paid"


def test_unsetting_pause_collection_does_not_resume_a_paused_subscription(sdk, standin, paid_subscription):
    standin.subscription_pause(paid_subscription)

    updated = sdk.v1.subscriptions.update(paid_subscription, params={"pause_collection": ""})

    assert updated.status == "paused" and updated.pause_collection is None


def test_cancel_at_period_end_sets_when_it_ends_and_when_it_was_asked(sdk, paid_subscription):
    subscription = sdk.v1.subscriptions.update(paid_subscription, params={"cancel_at_period_end": True})

    assert subscription.cancel_at == subscription["items"].data[0].current_period_end
    assert subscription.canceled_at is not None and subscription.status == "active"
    kept = sdk.v1.subscriptions.update(paid_subscription, params={"cancel_at_period_end": False})
    assert (kept.cancel_at, kept.canceled_at) == (None, None)


def test_a_default_card_must_belong_to_the_customer(sdk, standin, customer_id, paid_subscription):
    stranger = standin.card_create()

    with pytest.raises(stripe.InvalidRequestError, match="must be attached to the customer"):
        sdk.v1.subscriptions.update(paid_subscription, params={"default_payment_method": stranger})
    with pytest.raises(stripe.InvalidRequestError, match="must be attached to the customer"):
        sdk.v1.customers.update(customer_id, params={"invoice_settings": {"default_payment_method": stranger}})


# Cards ----------------------------------------------------------------------------------------


def test_confirming_a_setup_intent_attaches_a_new_card_to_its_customer(sdk, standin, customer_id):
    intent = sdk.v1.setup_intents.create(params={"customer": customer_id, "usage": "off_session"})

    method_id = standin.setup_intent_confirm(intent.id, card="mastercard")

    confirmed = sdk.v1.setup_intents.retrieve(intent.id)
    assert (confirmed.status, confirmed.payment_method) == ("succeeded", method_id)
    method = sdk.v1.payment_methods.retrieve(method_id)
    assert (method.customer, method.card.brand, method.card.last4) == (customer_id, "mastercard", "4444")


def test_a_detached_card_cannot_be_attached_again(sdk, standin, customer_id):
    card = standin.card_create(customer=customer_id)
    sdk.v1.payment_methods.detach(card)

    with pytest.raises(stripe.InvalidRequestError, match="may not be used again"):
        sdk.v1.payment_methods.attach(card, params={"customer": customer_id})
    with pytest.raises(stripe.InvalidRequestError, match="not attached to a customer"):
        sdk.v1.payment_methods.detach(card)


# Refunds --------------------------------------------------------------------------------------


def test_a_pending_refund_that_fails_gives_the_amount_back_to_the_charge(sdk, standin, paid_subscription):
    invoice = sdk.v1.invoices.retrieve(
        standin.get(paid_subscription)["latest_invoice"], params={"expand": ["payments"]}
    )
    intent = sdk.v1.payment_intents.retrieve(invoice.payments.data[0].payment.payment_intent)
    standin.next_refund_status = "pending"

    refund = sdk.v1.refunds.create(params={"payment_intent": intent.id, "amount": 500})
    previous = standin.refund_settle(refund.id, status="failed", failure_reason="expired_or_canceled_card")

    assert (refund.status, refund.charge) == ("pending", intent.latest_charge)
    failed = sdk.v1.refunds.retrieve(refund.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert previous["status"] == "pending"
    assert sdk.v1.charges.retrieve(intent.latest_charge).amount_refunded == 0


def test_a_refund_of_more_than_is_left_is_refused(sdk, standin, paid_subscription):
    invoice = sdk.v1.invoices.retrieve(
        standin.get(paid_subscription)["latest_invoice"], params={"expand": ["payments"]}
    )
    intent_id = invoice.payments.data[0].payment.payment_intent
    sdk.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1000})

    with pytest.raises(stripe.InvalidRequestError, match="greater than unrefunded amount"):
        sdk.v1.refunds.create(params={"payment_intent": intent_id, "amount": 501})


# Faults, keys and versions --------------------------------------------------------------------


def test_a_500_is_retried_by_the_sdk_under_the_same_key_and_applied_once(standin, customer_id):
    standin.fail(r"/v1/customers/.+", status=500, method="POST")

    sdk_client(standin, retries=2).v1.customers.update(customer_id, params={"name": "Retried"})

    first, second = standin.requests("POST")
    assert (first.status, first.fault, second.status) == (500, "500", 200)
    assert first.idempotency_key == second.idempotency_key
    assert standin.get(customer_id)["name"] == "Retried"


def test_a_429_and_a_card_decline_come_back_as_the_sdk_errors(sdk, standin, customer_id):
    standin.fail(r"/v1/customers/.+", status=429)
    standin.fail(r"/v1/setup_intents", status=402)

    with pytest.raises(stripe.RateLimitError):
        sdk.v1.customers.retrieve(customer_id)
    with pytest.raises(stripe.CardError) as declined:
        sdk.v1.setup_intents.create(params={"customer": customer_id})
    assert declined.value.code == "card_declined"


def test_a_hang_holds_the_answer_until_the_client_gives_up(standin, customer_id):
    standin.hang(r"/v1/customers/.+", seconds=60, method="GET")
    started = time.monotonic()

    with pytest.raises(stripe.APIConnectionError):
        sdk_client(standin, timeout=0.5).v1.customers.retrieve(customer_id)

    assert time.monotonic() - started < 5


def test_a_change_applied_before_its_answer_was_lost_is_replayed_on_retry(standin, customer_id):
    standin.hang(r"/v1/customers/.+", seconds=60, method="POST", after_apply=True)

    answer = sdk_client(standin, retries=1, timeout=0.5).v1.customers.update(customer_id, params={"name": "Once"})

    late, retry = standin.requests("POST")
    assert (late.fault, late.status) == ("hang after apply", None)
    assert retry.replayed and retry.idempotency_key == late.idempotency_key
    assert answer.name == "Once"


def test_a_retry_while_the_first_is_still_running_is_a_conflict(standin, customer_id):
    standin.hang(r"/v1/customers/.+", seconds=60, method="POST")

    with pytest.raises(stripe.APIError) as conflict:
        sdk_client(standin, retries=1, timeout=0.5).v1.customers.update(customer_id, params={"name": "Slow"})

    assert conflict.value.http_status == 409
    assert standin.get(customer_id)["name"] == "Ada Lovelace"


def test_a_request_in_another_api_version_is_refused(standin, customer_id):
    client = sdk_client(standin, stripe_version="2024-06-20")

    with pytest.raises(stripe.InvalidRequestError, match="only in API version"):
        client.v1.customers.retrieve(customer_id)


def test_a_request_with_another_key_is_refused(standin, customer_id):
    client = stripe.StripeClient("sk_test_someone_else", base_addresses={"api": standin.url})

    with pytest.raises(stripe.AuthenticationError):
        client.v1.customers.retrieve(customer_id)


# Webhooks -------------------------------------------------------------------------------------


def test_a_webhook_carries_the_whole_object_and_verifies_with_the_sdk(standin, paid_subscription):
    invoice_id = standin.get(paid_subscription)["latest_invoice"]

    body, signature = standin.webhook("invoice.paid", invoice_id)

    event = stripe.Webhook.construct_event(body, signature, WEBHOOK_SECRET)
    assert (event.type, event.data.object.id, event.data.object.status) == ("invoice.paid", invoice_id, "paid")
    assert event.data.object.lines.data[0].pricing.unit_amount_decimal == Decimal("1500")
    assert "payments" not in json.loads(body)["data"]["object"]


# The catalogue the demo makes ---------------------------------------------------------------


def test_a_plan_made_with_its_product_inline_is_listed_and_reads_as_a_price(sdk):
    plan = sdk.v1.plans.create(
        params={"id": "plan_demo", "amount": 1200, "currency": "gbp", "interval": "month", "product": {"name": "Demo"}}
    )

    assert [listed.id for listed in sdk.v1.plans.list().data] == ["plan_demo"]
    assert sdk.v1.products.retrieve(plan.product).name == "Demo"
    price = sdk.v1.prices.retrieve("plan_demo")
    assert (price.unit_amount, price.unit_amount_decimal, price.recurring.interval) == (1200, Decimal("1200"), "month")
    with pytest.raises(stripe.InvalidRequestError, match="already exists"):
        sdk.v1.plans.create(params={"id": "plan_demo", "amount": 1200, "currency": "gbp", "interval": "month"})
