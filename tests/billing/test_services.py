"""Billing services against the in-memory fake gateway: cards, subscriptions, invoices, refunds, the push."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Customer, User
from accounts.services import customer_update_contact
from billing import services
from billing.gateways.base import CardDeclined, CustomerDetails, TemporarilyUnavailable
from billing.models import Card, CustomerPush, Subscription, SubscriptionStatus
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from purchases.models import AccessGrant, Purchase, Receipt
from tests.billing.conftest import calls
from tests.factories import OfferFactory

pytestmark = pytest.mark.django_db


# The processor's customer -----------------------------------------------------------------------


def test_the_processor_customer_is_created_once_when_first_needed(customer, gateway):
    assert customer.stripe_customer_id == ""
    first = services.stripe_customer_ensure(customer=customer)
    second = services.stripe_customer_ensure(customer=Customer.objects.get(pk=customer.pk))
    assert first == second == Customer.objects.get(pk=customer.pk).stripe_customer_id
    created = calls(gateway, "customer_create")
    assert len(created) == 1
    assert created[0]["details"].email == customer.email
    # The key names the customer and what is sent, so a retry replays and changed details never clash.
    assert created[0]["idempotency_key"].startswith(f"portal:customer-create:{customer.pk}:")


def test_an_edit_of_fields_the_processor_does_not_hold_records_and_queues_no_push(
    stripe_customer, gateway, django_capture_on_commit_callbacks, run_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        customer_update_contact(customer=stripe_customer, data={"phone": "+44 20 7946 0000"}, by=None)
    assert not CustomerPush.objects.exists()
    assert run_tasks() == 0


def test_a_checkout_customer_unknown_here_gets_an_account_linked_by_email(gateway, db):
    remote = gateway.customer_create(
        details=CustomerDetails(name="Grace Hopper", email="Grace@Example.com"), idempotency_key="k"
    )
    customer = services.customer_for_stripe_id(stripe_customer_id=remote.id)
    assert customer.user.email == "grace@example.com"
    assert customer.full_name == "Grace Hopper"
    assert Customer.objects.get(stripe_customer_id=remote.id) == customer
    assert not customer.user.has_usable_password()  # they sign in by code, hub link or password reset
    # An existing account with that address is linked, not duplicated.
    assert services.customer_for_stripe_id(stripe_customer_id=remote.id) == customer
    assert User.objects.filter(email__iexact="grace@example.com").count() == 1


# Cards -----------------------------------------------------------------------------------------


def confirmed_setup(gateway, customer, payment_method_id):
    intent = services.card_setup_start(customer=customer)
    gateway.setup_intent_confirm(setup_intent_id=intent.id, payment_method_id=payment_method_id)
    return intent.id


def test_a_confirmed_card_becomes_the_default_and_the_previous_default_stays_on_file(stripe_customer, gateway):
    first = services.card_set_default(customer=stripe_customer, payment_method_id="pm_first", by=None)
    setup = confirmed_setup(gateway, stripe_customer, "pm_second")

    card = services.card_save_from_setup(customer=stripe_customer, setup_intent_id=setup, by=stripe_customer.user)

    assert card.stripe_payment_method_id == "pm_second" and card.is_default
    first.refresh_from_db()
    assert not first.is_default
    assert gateway.customers[stripe_customer.stripe_customer_id].default_payment_method_id == "pm_second"
    entry = AuditEntry.objects.filter(action="card.default_changed").latest("pk")
    assert entry.customer == stripe_customer and entry.actor == stripe_customer.user


def test_a_setup_intent_of_another_customer_is_refused(stripe_customer, other_customer, gateway):
    services.stripe_customer_ensure(customer=other_customer)
    setup = confirmed_setup(gateway, other_customer, "pm_theirs")
    with pytest.raises(services.BillingError) as refused:
        services.card_save_from_setup(customer=stripe_customer, setup_intent_id=setup, by=stripe_customer.user)
    assert refused.value.message == str(services.CARD_SETUP_NOT_FOUND)
    assert not Card.objects.exists()


def test_an_unconfirmed_setup_intent_changes_nothing(stripe_customer, gateway):
    intent = services.card_setup_start(customer=stripe_customer)
    with pytest.raises(services.BillingError) as refused:
        services.card_save_from_setup(customer=stripe_customer, setup_intent_id=intent.id, by=None)
    assert refused.value.message == str(services.CARD_SETUP_INCOMPLETE)


@pytest.mark.parametrize(
    ("payment_method", "error"), [("pm_card_declined", CardDeclined), ("pm_timeout", TemporarilyUnavailable)]
)
def test_a_declined_or_timed_out_card_keeps_the_previous_default(stripe_customer, gateway, payment_method, error):
    first = services.card_set_default(customer=stripe_customer, payment_method_id="pm_first", by=None)
    setup = confirmed_setup(gateway, stripe_customer, payment_method)
    with pytest.raises(error) as failure:
        services.card_save_from_setup(customer=stripe_customer, setup_intent_id=setup, by=None)
    if error is CardDeclined:
        assert failure.value.user_message == "Your card was declined."
    assert list(Card.objects.values_list("stripe_payment_method_id", "is_default")) == [
        (first.stripe_payment_method_id, True)
    ]


def test_subscriptions_with_a_card_of_their_own_are_moved_to_the_new_card(live_subscription, stripe_customer, gateway):
    Subscription.objects.filter(pk=live_subscription.pk).update(default_payment_method_id="pm_first")
    other = gateway.subscription_create(customer_id=stripe_customer.stripe_customer_id, amount=900)
    services.subscription_sync(remote=other)  # follows the customer's default: no own card

    services.card_set_default(customer=stripe_customer, payment_method_id="pm_new", by=None)

    attach = calls(gateway, "card_attach_as_default")[-1]
    assert attach["payment_method_id"] == "pm_new"
    assert gateway.subscriptions[live_subscription.stripe_subscription_id].default_payment_method_id == "pm_new"
    assert Subscription.objects.get(pk=live_subscription.pk).default_payment_method_id == "pm_new"
    assert Subscription.objects.get(stripe_subscription_id=other.id).default_payment_method_id == ""


def test_the_only_card_of_a_live_subscription_cannot_be_removed(live_subscription, stripe_customer, gateway):
    card = Card.objects.get(customer=stripe_customer)
    with pytest.raises(services.BillingError) as refused:
        services.card_remove(card=card, by=stripe_customer.user)
    assert refused.value.message == str(services.CARD_ONLY_ONE_FOR_SUBSCRIPTION)
    assert calls(gateway, "card_detach") == []


def test_the_default_card_cannot_be_removed_but_another_can(stripe_customer, gateway):
    old = services.card_set_default(customer=stripe_customer, payment_method_id="pm_old", by=None)
    new = services.card_set_default(customer=stripe_customer, payment_method_id="pm_new", by=None)
    with pytest.raises(services.BillingError) as refused:
        services.card_remove(card=new, by=None)
    assert refused.value.message == str(services.CARD_IS_DEFAULT)

    services.card_remove(card=old, by=stripe_customer.user)
    assert list(Card.objects.values_list("stripe_payment_method_id", flat=True)) == ["pm_new"]
    assert calls(gateway, "card_detach") == [{"payment_method_id": "pm_old"}]


def test_cards_sync_makes_the_mirror_match_the_processor(stripe_customer, gateway):
    services.card_set_default(customer=stripe_customer, payment_method_id="pm_a", by=None)
    services.card_set_default(customer=stripe_customer, payment_method_id="pm_b", by=None)
    gateway.cards.pop("pm_a")  # detached at Stripe
    services.customer_cards_sync(customer=stripe_customer)
    assert list(Card.objects.values_list("stripe_payment_method_id", "is_default")) == [("pm_b", True)]


# Subscriptions ---------------------------------------------------------------------------------


def test_self_cancel_ends_at_period_end_keeps_access_and_can_be_undone(live_subscription, stripe_customer, gateway):
    user = stripe_customer.user
    subscription = services.subscription_cancel(subscription=live_subscription, by=user)
    assert subscription.cancel_at_period_end and subscription.status == SubscriptionStatus.ACTIVE
    assert gateway.subscriptions[subscription.stripe_subscription_id].cancel_at_period_end is True
    assert AuditEntry.objects.filter(action="subscription.changed", actor=user).exists()

    with pytest.raises(services.BillingError):
        services.subscription_cancel(subscription=subscription, by=user)  # already set to end

    subscription = services.subscription_cancel_undo(subscription=subscription, by=user)
    assert not subscription.cancel_at_period_end
    assert gateway.subscriptions[subscription.stripe_subscription_id].cancel_at_period_end is False


def test_self_cancel_is_refused_when_the_creator_turned_it_off(live_subscription, stripe_customer, gateway):
    SiteSettings.objects.update_or_create(pk=1, defaults={"self_cancel_enabled": False})
    with pytest.raises(services.BillingError) as refused:
        services.subscription_cancel(subscription=live_subscription, by=stripe_customer.user)
    assert refused.value.message == str(services.SELF_CANCEL_OFF)
    assert calls(gateway, "subscription_set_cancel_at_period_end") == []


def test_a_customer_cannot_cancel_immediately(live_subscription, stripe_customer, gateway):
    subscription = services.subscription_cancel(
        subscription=live_subscription, by=stripe_customer.user, at_period_end=False
    )
    assert subscription.status == SubscriptionStatus.ACTIVE and subscription.cancel_at_period_end
    assert calls(gateway, "subscription_cancel_now") == []


def test_a_timeout_while_cancelling_leaves_the_mirror_as_it_was(
    live_subscription, stripe_customer, gateway, monkeypatch
):
    def timeout(**kwargs):
        raise TemporarilyUnavailable("timeout")

    monkeypatch.setattr(gateway.__class__, "subscription_set_cancel_at_period_end", lambda self, **kw: timeout(**kw))
    with pytest.raises(TemporarilyUnavailable):
        services.subscription_cancel(subscription=live_subscription, by=stripe_customer.user)
    live_subscription.refresh_from_db()
    assert not live_subscription.cancel_at_period_end
    assert not AuditEntry.objects.filter(action="subscription.changed").exists()


def test_when_a_subscription_ends_its_access_is_revoked(live_subscription, stripe_customer, gateway, staff_user):
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
    )
    services.invoice_record_paid(invoice=invoice)
    assert AccessGrant.objects.filter(customer=stripe_customer, revoked_at=None).count() == 1

    subscription = services.subscription_cancel(subscription=live_subscription, by=staff_user, at_period_end=False)

    assert subscription.status == SubscriptionStatus.CANCELED
    assert AccessGrant.objects.filter(customer=stripe_customer, revoked_at=None).count() == 0


def test_pause_and_resume(live_subscription, gateway, staff_user):
    until = timezone.now() + timedelta(days=30)
    subscription = services.subscription_pause(subscription=live_subscription, by=staff_user, resumes_at=until)
    assert subscription.paused and subscription.resumes_at == until.replace(microsecond=until.microsecond)
    assert subscription.display_status == "Paused"
    subscription = services.subscription_resume(subscription=subscription, by=staff_user)
    assert not subscription.paused


# Invoices and refunds --------------------------------------------------------------------------


def test_a_paid_invoice_records_one_purchase_receipt_and_access(live_subscription, stripe_customer, gateway):
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        charge_id="ch_1",
    )
    first = services.invoice_record_paid(invoice=invoice)
    again = services.invoice_record_paid(invoice=invoice)
    assert first == again
    assert Purchase.objects.filter(stripe_invoice_id=invoice.id).count() == 1
    assert Receipt.objects.filter(purchase=first).count() == 1
    assert first.amount == 1500 and first.stripe_charge_id == "ch_1"
    assert first.stripe_subscription_id == live_subscription.stripe_subscription_id


def test_a_paid_invoice_for_an_unknown_price_is_refused_with_a_reason(stripe_customer, gateway):
    invoice = gateway.invoice_create(customer_id=stripe_customer.stripe_customer_id, amount=100, price_id="price_x")
    with pytest.raises(services.BillingError) as refused:
        services.invoice_record_paid(invoice=invoice)
    assert "price_x" in refused.value.message
    assert not Purchase.objects.exists()


def test_a_payment_plan_ends_after_its_last_instalment(stripe_customer, gateway):
    OfferFactory(kind="payment_plan", interval="month", installments=2, price_amount=5000, stripe_price_id="price_plan")
    remote = gateway.subscription_create(
        customer_id=stripe_customer.stripe_customer_id, amount=5000, price_id="price_plan"
    )
    services.subscription_sync(remote=remote)
    for _ in range(2):
        invoice = gateway.invoice_create(
            customer_id=stripe_customer.stripe_customer_id,
            amount=5000,
            subscription_id=remote.id,
            price_id="price_plan",
        )
        services.invoice_record_paid(invoice=invoice)
    assert Subscription.objects.get(stripe_subscription_id=remote.id).cancel_at_period_end


def test_each_paid_invoice_of_a_subscription_counts_once_as_a_recorded_payment(
    live_subscription, stripe_customer, gateway
):
    invoices = [
        gateway.invoice_create(
            customer_id=stripe_customer.stripe_customer_id,
            amount=1500,
            subscription_id=live_subscription.stripe_subscription_id,
            price_id="price_member",
        )
        for _ in range(2)
    ]
    for invoice in invoices:
        services.invoice_record_paid(invoice=invoice)
    services.invoice_record_paid(invoice=invoices[1])  # the same invoice again

    assert Subscription.objects.get(pk=live_subscription.pk).payments_recorded == 2


def test_payments_recorded_before_the_subscription_is_mirrored_are_counted_when_it_is(stripe_customer, gateway):
    remote = gateway.subscription_create(
        customer_id=stripe_customer.stripe_customer_id, amount=1500, price_id="price_member"
    )
    OfferFactory(stripe_price_id="price_member")
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id, amount=1500, subscription_id=remote.id, price_id="price_member"
    )
    services.invoice_record_paid(invoice=invoice)
    assert not Subscription.objects.filter(stripe_subscription_id=remote.id).exists()

    assert services.subscription_sync(remote=remote).payments_recorded == 1


def test_the_migration_counts_the_payments_each_subscription_already_recorded(stripe_customer):
    import importlib

    from django.apps import apps

    from tests.factories import PurchaseFactory, SubscriptionFactory

    backfill = importlib.import_module("billing.migrations.0008_subscription_payments_recorded")
    paid, unpaid = SubscriptionFactory(customer=stripe_customer), SubscriptionFactory(customer=stripe_customer)
    for subscription_id in [paid.stripe_subscription_id] * 3 + ["", "sub_gone"]:
        PurchaseFactory(customer=stripe_customer, stripe_subscription_id=subscription_id)

    backfill.count_recorded_payments(apps, None)

    assert Subscription.objects.get(pk=paid.pk).payments_recorded == 3
    assert Subscription.objects.get(pk=unpaid.pk).payments_recorded == 0


def test_a_failed_payment_is_recorded(live_subscription, stripe_customer, gateway):
    gateway.subscription_update(subscription_id=live_subscription.stripe_subscription_id, status="past_due")
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        status="open",
        subscription_id=live_subscription.stripe_subscription_id,
    )
    services.invoice_record_failed(invoice=invoice)
    assert Subscription.objects.get(pk=live_subscription.pk).status == SubscriptionStatus.PAST_DUE
    assert AuditEntry.objects.filter(action="payment.failed", customer=stripe_customer).count() == 1


def test_refunds_made_at_the_processor_are_recorded_once(live_subscription, stripe_customer, gateway):
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id, amount=1500, price_id="price_member", charge_id="ch_9"
    )
    purchase = services.invoice_record_paid(invoice=invoice)
    gateway.refund_create(charge_id="ch_9", payment_intent_id="", amount=500, reason="", idempotency_key="r1")
    assert len(services.charge_refunds_sync(charge_id="ch_9")) == 1
    assert services.charge_refunds_sync(charge_id="ch_9") == []
    purchase.refresh_from_db()
    assert purchase.amount_refunded == 500 and purchase.status == "partially_refunded"


@pytest.fixture
def staff_user(db):
    return User.objects.create_user(email="support@example.com", password="x", is_staff=True)


# Staff actions on a purchase -------------------------------------------------------------------


def test_staff_refund_goes_to_the_processor_then_is_recorded(paid_purchase, gateway, staff_user):
    refund = services.purchase_refund(purchase=paid_purchase, amount=600, reason="Late delivery", by=staff_user)
    remote = calls(gateway, "refund_create")[-1]
    assert remote["charge_id"] == "ch_paid_purchase" and remote["amount"] == 600
    assert refund.stripe_refund_id and refund.reason == "Late delivery" and refund.created_by == staff_user
    # The webhook that follows finds it already recorded.
    assert services.charge_refunds_sync(charge_id="ch_paid_purchase") == []
    paid_purchase.refresh_from_db()
    assert paid_purchase.amount_refunded == 600


def test_staff_refund_never_exceeds_what_is_left_and_needs_a_reason(paid_purchase, gateway, staff_user):
    from purchases.services import PurchaseError

    with pytest.raises(PurchaseError, match="more than the"):
        services.purchase_refund(purchase=paid_purchase, amount=1501, reason="x", by=staff_user)
    with pytest.raises(services.BillingError):
        services.purchase_refund(purchase=paid_purchase, amount=100, reason="  ", by=staff_user)
    assert calls(gateway, "refund_create") == []


def test_a_refund_retried_after_a_timeout_uses_the_same_key(paid_purchase, gateway, staff_user, monkeypatch):
    original = gateway.__class__.refund_create

    def times_out_after_applying(self, **kwargs):
        original(self, **kwargs)  # the processor made the refund, but the answer was lost
        raise TemporarilyUnavailable("timeout")

    monkeypatch.setattr(gateway.__class__, "refund_create", times_out_after_applying)
    with pytest.raises(TemporarilyUnavailable):
        services.purchase_refund(purchase=paid_purchase, amount=500, reason="Retry test", by=staff_user)
    paid_purchase.refresh_from_db()
    assert paid_purchase.amount_refunded == 0  # our records unchanged
    monkeypatch.undo()
    services.purchase_refund(purchase=paid_purchase, amount=500, reason="Retry test", by=staff_user)
    assert len(gateway.refunds) == 1  # the same key: the processor made one refund, not two
    paid_purchase.refresh_from_db()
    assert paid_purchase.amount_refunded == 500


def test_revoking_access_keeps_billing(paid_purchase, live_subscription, gateway, staff_user):
    assert services.purchase_access_revoke(purchase=paid_purchase, by=staff_user) == 1
    assert not AccessGrant.objects.filter(purchase=paid_purchase, revoked_at=None).exists()
    assert gateway.subscriptions[live_subscription.stripe_subscription_id].status == "active"


# Telling the truth: refunds, ends, pauses, keys --------------------------------------------------


def test_a_refund_stripe_holds_as_pending_is_recorded_pending_then_given_back_when_it_fails(
    paid_purchase, gateway, staff_user
):
    from purchases.models import RefundStatus

    type(gateway).refund_status = "pending"  # every gateway of the test shares the fake's world
    refund = services.purchase_refund(purchase=paid_purchase, amount=600, reason="Late delivery", by=staff_user)
    assert refund.status == RefundStatus.PENDING
    paid_purchase.refresh_from_db()
    assert paid_purchase.amount_refunded == 600  # held back while on its way
    issued = OutboundEmail.objects.get(kind="refund_issued")
    assert issued.context["status"] == "pending"

    failed = gateway.refund_update(
        refund_id=refund.stripe_refund_id, status="failed", failure_reason="lost_or_stolen_card"
    )
    services.refund_sync(remote=failed)

    refund.refresh_from_db()
    paid_purchase.refresh_from_db()
    assert (refund.status, refund.failure_reason) == (RefundStatus.FAILED, "lost_or_stolen_card")
    assert paid_purchase.amount_refunded == 0 and paid_purchase.status == "paid"
    assert OutboundEmail.objects.filter(kind="refund_failed").count() == 1
    services.refund_sync(remote=failed)  # the same news again changes nothing and sends nothing
    assert OutboundEmail.objects.filter(kind="refund_failed").count() == 1


def test_a_refund_of_a_purchase_paid_outside_stripe_sends_nothing_to_stripe_and_says_so(customer, gateway, staff_user):
    from purchases.services import purchase_record

    purchase = purchase_record(customer=customer, offer=OfferFactory(price_amount=2000), amount=2000)
    services.purchase_refund(purchase=purchase, amount=500, reason="Goodwill", by=staff_user)

    assert calls(gateway, "refund_create") == []
    email = OutboundEmail.objects.get(kind="refund_issued")
    assert email.context["paid_outside_stripe"] is True


def test_a_purchase_paid_through_a_payment_intent_is_refunded_through_it(
    live_subscription, stripe_customer, gateway, staff_user
):
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        charge_id="",
        payment_intent_id="pi_only",
    )
    purchase = services.invoice_record_paid(invoice=invoice)
    assert (purchase.stripe_charge_id, purchase.stripe_payment_intent_id) == ("", "pi_only")

    refund = services.purchase_refund(purchase=purchase, amount=1500, reason="Asked", by=staff_user)

    assert calls(gateway, "refund_create")[-1]["payment_intent_id"] == "pi_only"
    assert refund.stripe_refund_id
    assert services.charge_refunds_sync(payment_intent_id="pi_only") == []  # its webhook finds it recorded


def test_an_invoice_is_recorded_for_the_offer_on_any_of_its_lines(live_subscription, stripe_customer, gateway):
    from dataclasses import replace

    from billing.gateways.base import GatewayInvoiceLine

    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1700,
        subscription_id=live_subscription.stripe_subscription_id,
    )
    invoice = replace(
        invoice,
        lines=(
            GatewayInvoiceLine(price_id="price_proration", amount=200),
            GatewayInvoiceLine(price_id="price_member", amount=1500),
        ),
    )

    purchase = services.invoice_record_paid(invoice=invoice)

    assert purchase.offer.stripe_price_id == "price_member" and purchase.amount == 1700


def test_a_date_set_in_stripe_shows_as_the_end_and_is_emailed_once(live_subscription, gateway):
    ends = timezone.now() + timedelta(days=12)
    remote = gateway.subscription_update(subscription_id=live_subscription.stripe_subscription_id, cancel_at=ends)

    synced = services.subscription_sync(remote=remote)
    services.subscription_sync(remote=remote)

    assert synced.is_set_to_end and synced.ends_at == ends
    assert OutboundEmail.objects.filter(kind="subscription_cancel_scheduled").count() == 1


def test_keep_undoes_an_end_date_set_in_stripe(live_subscription, gateway, customer):
    remote = gateway.subscription_update(
        subscription_id=live_subscription.stripe_subscription_id, cancel_at=timezone.now() + timedelta(days=3)
    )
    subscription = services.subscription_sync(remote=remote)

    kept = services.subscription_cancel_undo(subscription=subscription, by=customer.user)

    assert calls(gateway, "subscription_cancel_at_clear") and not kept.is_set_to_end


def test_resume_of_a_paused_subscription_uses_stripes_resume_and_it_is_active_again(
    live_subscription, gateway, staff_user
):
    remote = gateway.subscription_update(subscription_id=live_subscription.stripe_subscription_id, status="paused")
    subscription = services.subscription_sync(remote=remote)
    assert subscription.display_status == "Paused"

    resumed = services.subscription_resume(subscription=subscription, by=staff_user)

    assert calls(gateway, "subscription_resume")[-1]["status_paused"] is True
    assert resumed.status == SubscriptionStatus.ACTIVE and resumed.is_active


def test_staff_cancel_now_ends_the_access_it_paid_for(paid_purchase, live_subscription, gateway, staff_user):
    assert AccessGrant.objects.filter(purchase=paid_purchase, revoked_at=None).exists()

    services.subscription_cancel(subscription=live_subscription, by=staff_user, at_period_end=False)

    assert not AccessGrant.objects.filter(customer=paid_purchase.customer, revoked_at=None).exists()


def test_making_cards_a_b_then_a_the_default_sends_three_keys(stripe_customer, gateway):
    for method in ("pm_a", "pm_b", "pm_a"):
        services.card_set_default(customer=stripe_customer, payment_method_id=method, by=None)

    keys = [call["idempotency_key"] for call in calls(gateway, "card_attach_as_default")]
    assert len(set(keys)) == 3
    assert gateway.customers[stripe_customer.stripe_customer_id].default_payment_method_id == "pm_a"


def test_one_form_submitted_twice_sends_one_key(stripe_customer, gateway):
    for _ in range(2):
        services.card_set_default(customer=stripe_customer, payment_method_id="pm_a", by=None, attempt="f" * 32)

    keys = {call["idempotency_key"] for call in calls(gateway, "card_attach_as_default")}
    assert len(keys) == 1


def test_an_open_setup_intent_is_handed_out_again_instead_of_a_new_one(stripe_customer, gateway):
    first = services.card_setup_start(customer=stripe_customer)
    again = services.card_setup_start(customer=stripe_customer, reuse_id=first.id)
    assert again.id == first.id and len(calls(gateway, "setup_intent_create")) == 1

    gateway.setup_intent_confirm(setup_intent_id=first.id, payment_method_id="pm_done")
    fresh = services.card_setup_start(customer=stripe_customer, reuse_id=first.id)
    assert fresh.id != first.id  # a used one is never handed out again


def test_a_setup_intent_of_another_customer_is_never_handed_out(stripe_customer, other_customer, gateway):
    services.stripe_customer_ensure(customer=other_customer)
    theirs = services.card_setup_start(customer=other_customer)

    mine = services.card_setup_start(customer=stripe_customer, reuse_id=theirs.id)

    assert mine.id != theirs.id and mine.customer_id == stripe_customer.stripe_customer_id


def test_a_deleted_stripe_customer_leaves_no_stale_billing(paid_purchase, live_subscription, stripe_customer, gateway):
    stripe_id = stripe_customer.stripe_customer_id

    assert services.customer_processor_deleted(stripe_customer_id=stripe_id) == 1

    stripe_customer.refresh_from_db()
    live_subscription.refresh_from_db()
    assert stripe_customer.stripe_customer_id == "" and not stripe_customer.cards.exists()
    assert live_subscription.status == SubscriptionStatus.CANCELED
    assert not AccessGrant.objects.filter(customer=stripe_customer, revoked_at=None).exists()
    assert Purchase.objects.filter(pk=paid_purchase.pk).exists()  # what was bought and its receipts stay


def test_self_cancellation_off_needs_instructions(db):
    from django.core.exceptions import ValidationError

    settings_row = SiteSettings(self_cancel_enabled=False, self_cancel_instructions="  ")
    with pytest.raises(ValidationError) as raised:
        settings_row.clean()
    assert "self_cancel_instructions" in raised.value.message_dict


def test_a_paid_invoice_keeps_the_card_that_paid_on_its_purchase(live_subscription, stripe_customer, gateway):
    invoice = gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        card_brand="amex",
        card_last4="0005",
    )

    purchase = services.invoice_record_paid(invoice=invoice)

    assert (purchase.card_brand, purchase.card_last4) == ("amex", "0005")
    assert purchase.payment_method_display == "American Express •••• 0005"
