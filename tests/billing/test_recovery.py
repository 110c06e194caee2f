"""Recovering a failed payment: the failed invoice on the billing page, "Pay now", and the dunning email."""

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from billing.models import Subscription, SubscriptionStatus
from billing.recovery import NOTHING_TO_PAY, subscription_invoice_pay
from billing.services import BillingError, card_set_default
from portal.models import AuditEntry, OutboundEmail
from purchases.models import Purchase

from .conftest import stripe_event

pytestmark = pytest.mark.django_db

FAILED_ON = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def failed_invoice(live_subscription, stripe_customer, gateway):
    """The renewal's first attempt declined: the subscription is past due and its invoice open."""
    gateway.subscription_update(subscription_id=live_subscription.stripe_subscription_id, status="past_due")
    return gateway.invoice_create(
        customer_id=stripe_customer.stripe_customer_id,
        amount=1500,
        status="open",
        subscription_id=live_subscription.stripe_subscription_id,
        price_id="price_member",
        attempt_count=1,
        created=FAILED_ON,
    )


def failed_event(invoice_id: str) -> bytes:
    return stripe_event("invoice.payment_failed", {"id": invoice_id, "object": "invoice"})


@pytest.fixture
def billing_client(client, stripe_customer):
    client.force_login(stripe_customer.user)
    return client


def test_a_failed_payment_notes_the_open_invoice_and_emails_once_per_attempt(
    post_webhook, failed_invoice, live_subscription, gateway
):
    first = failed_event(failed_invoice.id)
    assert post_webhook(first).status_code == 200
    assert post_webhook(first).status_code == 200  # Stripe's redelivery of the same event
    assert post_webhook(failed_event(failed_invoice.id)).status_code == 200  # another event, the same attempt

    subscription = Subscription.objects.get(pk=live_subscription.pk)
    assert subscription.status == SubscriptionStatus.PAST_DUE and subscription.needs_payment
    assert (subscription.unpaid_invoice_id, subscription.unpaid_amount) == (failed_invoice.id, 1500)
    assert subscription.unpaid_invoice_date == FAILED_ON
    assert list(OutboundEmail.objects.filter(kind="payment_failed").values_list("key", flat=True)) == [
        f"payment_failed:{failed_invoice.id}:1"
    ]

    gateway.invoices[failed_invoice.id] = replace(failed_invoice, attempt_count=2)  # Stripe's next retry failed too
    post_webhook(failed_event(failed_invoice.id))

    assert OutboundEmail.objects.filter(kind="payment_failed").count() == 2


def test_the_dunning_email_carries_a_hub_link_to_the_billing_page(
    post_webhook, failed_invoice, run_tasks, mailoutbox, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post_webhook(failed_event(failed_invoice.id))
    run_tasks()

    (email,) = mailoutbox
    assert "We could not take your payment of £15.00" in email.body
    assert "/hub/" in email.body and "next=%2Fbilling%2F" in email.body.replace("/billing/", "%2Fbilling%2F")


def test_the_billing_page_shows_the_failed_payment_with_pay_now(
    billing_client, post_webhook, failed_invoice, live_subscription
):
    post_webhook(failed_event(failed_invoice.id))

    page = billing_client.get("/billing/").content.decode()

    assert f'data-unpaid="{live_subscription.pk}"' in page
    assert "Your payment of <strong>£15.00</strong> for Offer" in page and "on Nov. 28, 2026 failed." in page
    assert reverse("billing:subscription_pay", args=[live_subscription.pk]) in page
    assert "Pay now" in page and reverse("billing:card_new") in page


def test_pay_now_pays_the_invoice_records_it_once_and_clears_the_failure(
    billing_client, post_webhook, failed_invoice, live_subscription, gateway
):
    post_webhook(failed_event(failed_invoice.id))

    response = billing_client.post(reverse("billing:subscription_pay", args=[live_subscription.pk]), follow=True)

    assert "Thank you: your payment of £15.00 went through." in response.content.decode()
    subscription = Subscription.objects.get(pk=live_subscription.pk)
    assert subscription.status == SubscriptionStatus.ACTIVE and not subscription.needs_payment
    assert 'data-unpaid="' not in response.content.decode()
    assert Purchase.objects.filter(stripe_invoice_id=failed_invoice.id).count() == 1
    assert AuditEntry.objects.filter(action="payment.retried").count() == 1
    # Stripe's invoice.paid arrives afterwards and finds the payment recorded.
    post_webhook(stripe_event("invoice.paid", {"id": failed_invoice.id, "object": "invoice"}))
    assert Purchase.objects.filter(stripe_invoice_id=failed_invoice.id).count() == 1


def test_a_declined_pay_now_says_so_and_leaves_the_failure_to_pay(
    billing_client, post_webhook, failed_invoice, live_subscription, stripe_customer, gateway
):
    post_webhook(failed_event(failed_invoice.id))
    card_set_default(customer=stripe_customer, payment_method_id="pm_card_declined_on_charge", by=None)
    gateway.customers[stripe_customer.stripe_customer_id] = replace(
        gateway.customers[stripe_customer.stripe_customer_id], default_payment_method_id="pm_card_declined"
    )

    response = billing_client.post(reverse("billing:subscription_pay", args=[live_subscription.pk]), follow=True)

    assert "Your card was declined." in response.content.decode()
    assert Subscription.objects.get(pk=live_subscription.pk).needs_payment
    assert not Purchase.objects.filter(stripe_invoice_id=failed_invoice.id).exists()


def test_pay_now_is_refused_when_nothing_failed(live_subscription, gateway):
    with pytest.raises(BillingError) as refused:
        subscription_invoice_pay(subscription=live_subscription, by=live_subscription.customer.user)

    assert refused.value.message == str(NOTHING_TO_PAY)
    assert not [name for name, _ in gateway.calls if name == "invoice_pay"]


def test_a_late_failure_event_for_an_invoice_paid_since_notes_nothing(
    post_webhook, failed_invoice, live_subscription, gateway
):
    gateway.invoices[failed_invoice.id] = replace(failed_invoice, status="paid", amount_paid=1500)

    post_webhook(failed_event(failed_invoice.id))

    assert not Subscription.objects.get(pk=live_subscription.pk).unpaid_invoice_id
