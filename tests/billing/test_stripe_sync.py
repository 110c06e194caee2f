"""manage.py stripe_sync: backfill cards and subscriptions from the processor."""

import io

import pytest
from django.core.management import CommandError, call_command

from billing.models import Card, Subscription

pytestmark = pytest.mark.django_db


def test_sync_backfills_cards_and_subscriptions_with_a_progress_bar(stripe_customer, other_customer, gateway):
    gateway.card_attach_as_default(
        customer_id=stripe_customer.stripe_customer_id,
        payment_method_id="pm_at_stripe",
        subscription_ids=[],
        idempotency_key="k",
    )
    gateway.subscription_create(customer_id=stripe_customer.stripe_customer_id, amount=1200)
    out = io.StringIO()

    call_command("stripe_sync", stdout=out)

    assert "1/1" in out.getvalue() and "Synced 1 customers." in out.getvalue()
    assert Card.objects.get(customer=stripe_customer).stripe_payment_method_id == "pm_at_stripe"
    assert Subscription.objects.get(customer=stripe_customer).status == "active"


def test_sync_of_one_customer_by_email(stripe_customer, gateway):
    out = io.StringIO()
    call_command("stripe_sync", customer=stripe_customer.email, stdout=out)
    assert "Synced 1 customers." in out.getvalue()
    with pytest.raises(CommandError, match="No customer"):
        call_command("stripe_sync", customer="nobody@example.com", stdout=out)


def test_a_processor_failure_is_reported_and_the_command_fails(stripe_customer, gateway):
    gateway.customers.clear()  # the processor no longer knows the customer
    with pytest.raises(CommandError, match="1 of 1 customers could not be synced"):
        call_command("stripe_sync", stdout=io.StringIO(), stderr=io.StringIO())
