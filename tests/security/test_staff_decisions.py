"""Finding 11: what staff decided, the customer cannot undo.

Support cancels a subscription's payments at the period end and revokes its access in the console. The
customer's billing page then offers no "Keep subscription" (it says whom to contact instead), a POST to
keep it anyway is refused, and the next paid invoice of that subscription grants nothing staff revoked."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from billing.gateways.fake import FakeGateway
from billing.models import Subscription
from billing.services import SUBSCRIPTION_CANCELLED_BY_STAFF
from portal.models import SiteSettings
from purchases.models import AccessGrant, Purchase
from tests.billing import conftest as billing_fixtures
from tests.billing.conftest import stripe_event

from .conftest import signed_in
from .sweep import record_figures

pytestmark = pytest.mark.django_db

stripe_customer = billing_fixtures.stripe_customer
subscription_offer = billing_fixtures.subscription_offer
live_subscription = billing_fixtures.live_subscription
paid_purchase = billing_fixtures.paid_purchase

HELP = "help@business.example"


@pytest.fixture(autouse=True)
def _business_email(db):
    site, _ = SiteSettings.objects.get_or_create(pk=1)
    site.business_email = HELP
    site.self_cancel_enabled = True
    site.save()


def renewal_paid(gateway, post_webhook, subscription: Subscription):
    """Stripe charges the subscription's next period and tells us (invoice.paid)."""
    invoice = gateway.invoice_create(
        customer_id=subscription.customer.stripe_customer_id,
        amount=1500,
        subscription_id=subscription.stripe_subscription_id,
        price_id="price_member",
    )
    assert post_webhook(stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"})).status_code == 200
    return Purchase.objects.get(stripe_invoice_id=invoice.id)


def active_grants(customer):
    return AccessGrant.objects.filter(customer=customer, revoked_at=None)


def test_the_customer_cannot_undo_a_cancellation_staff_scheduled_nor_get_revoked_access_back(
    client, support_client, gateway, post_webhook, paid_purchase, live_subscription, customer
):
    cancelled = support_client.post(
        reverse("admin:purchases_purchase_cancel", args=[paid_purchase.pk]),
        {"when": "period_end", "revoke_access": "on"},
    )
    assert cancelled.status_code == 302
    subscription = Subscription.objects.get(pk=live_subscription.pk)
    assert subscription.cancel_at_period_end and subscription.cancel_requested_by.email == "support@example.com"
    assert not active_grants(customer).exists()

    support_client.logout()
    signed_in(client, customer.user)
    page = client.get("/billing/").content.decode()
    keep_url = reverse("billing:subscription_keep", args=[subscription.pk])
    assert keep_url not in page and "Keep subscription" not in page
    assert f"Our team set this subscription to end. To keep it, contact {HELP}." in page

    response = client.post(keep_url)  # pressed anyway, from an old page or by hand

    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        str(SUBSCRIPTION_CANCELLED_BY_STAFF) % {"contact": HELP}
    ]
    assert Subscription.objects.get(pk=subscription.pk).cancel_at_period_end
    assert FakeGateway.subscriptions[subscription.stripe_subscription_id].cancel_at_period_end

    renewal = renewal_paid(gateway, post_webhook, subscription)  # say, a late retry of an open invoice

    assert renewal.customer == customer
    assert not active_grants(customer).exists(), "the renewal gave back the access staff revoked"
    record_figures("staff decisions", keep_offered=0, keep_refused=1, regranted=0)


def test_a_renewal_does_not_give_back_access_staff_revoked_while_billing_goes_on(
    support_client, gateway, post_webhook, paid_purchase, live_subscription, customer
):
    """ "Revoke access" keeps the payments going: each renewal is paid, and grants nothing."""
    response = support_client.post(reverse("admin:purchases_purchase_revoke", args=[paid_purchase.pk]))
    assert response.status_code == 302
    assert not active_grants(customer).exists()

    renewal_paid(gateway, post_webhook, live_subscription)

    assert not active_grants(customer).exists()


def test_staff_can_undo_their_own_cancellation_and_the_customer_can_undo_theirs(
    client, support_client, paid_purchase, live_subscription, customer
):
    keep_by_staff = reverse("admin:billing_subscription_keep", args=[live_subscription.pk])
    support_client.post(reverse("admin:billing_subscription_cancel_at_period_end", args=[live_subscription.pk]))
    assert support_client.post(keep_by_staff).status_code == 302
    subscription = Subscription.objects.get(pk=live_subscription.pk)
    assert not subscription.cancel_at_period_end and subscription.cancel_requested_by is None

    support_client.logout()
    signed_in(client, customer.user)
    client.post(reverse("billing:subscription_cancel", args=[subscription.pk]))
    assert Subscription.objects.get(pk=subscription.pk).cancel_at_period_end
    assert "Keep subscription" in client.get("/billing/").content.decode()

    client.post(reverse("billing:subscription_keep", args=[subscription.pk]))

    assert not Subscription.objects.get(pk=subscription.pk).cancel_at_period_end


def test_a_renewal_still_grants_access_the_customer_never_lost(gateway, post_webhook, paid_purchase, customer):
    subscription = Subscription.objects.get(stripe_subscription_id=paid_purchase.stripe_subscription_id)

    renewal = renewal_paid(gateway, post_webhook, subscription)

    assert active_grants(customer).filter(purchase=renewal).count() == renewal.offer.products.count() == 1
