"""The console's money and access actions in admin: confirmation pages, services, permissions, failures."""

import pytest
from django.urls import reverse

from billing.gateways.base import TemporarilyUnavailable
from billing.models import Subscription, SubscriptionStatus
from portal.models import AuditEntry
from purchases.models import AccessGrant, Purchase, Refund

pytestmark = pytest.mark.django_db

ATTEMPT = "0123456789abcdef0123456789abcdef"  # the refund form's one-time id, as its page would carry it


def test_refund_page_says_what_will_happen_then_refunds_part(support_client, paid_purchase, gateway):
    url = reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk])
    page = support_client.get(url).content.decode()
    assert "This will happen:" in page and "£15.00" in page and "through Stripe" in page

    response = support_client.post(url, {"amount": "5.50", "reason": "Late delivery", "attempt": ATTEMPT}, follow=True)

    assert "Refunded £5.50." in response.content.decode()
    refund = Refund.objects.get()
    assert refund.amount == 550 and refund.reason == "Late delivery" and refund.stripe_refund_id
    assert [r.amount for r in gateway.refunds.values()] == [550]


def test_a_refund_stripe_holds_as_pending_is_shown_to_staff_as_started_not_made(support_client, paid_purchase, gateway):
    type(gateway).refund_status = "pending"
    url = reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk])

    response = support_client.post(url, {"amount": "5.50", "reason": "Late delivery", "attempt": ATTEMPT}, follow=True)

    page = response.content.decode()
    assert "Refund of £5.50 started" in page and "Refunded £5.50." not in page
    assert Refund.objects.get().status == "pending"


def test_a_purchase_not_paid_through_stripe_says_so_before_refunding(support_client, customer, gateway):
    from tests.factories import RecordedPurchaseFactory

    purchase = RecordedPurchaseFactory(customer=customer)
    page = support_client.get(reverse("admin:purchases_purchase_refund", args=[purchase.pk])).content.decode()

    assert "not paid through Stripe" in page and "through Stripe" not in page.replace("not paid through Stripe", "")


def test_refund_of_more_than_is_left_is_refused_on_the_form(support_client, paid_purchase, gateway):
    url = reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk])
    response = support_client.post(url, {"amount": "15.01", "reason": "Too much", "attempt": ATTEMPT})
    assert "more than the £15.00 left" in response.content.decode()
    assert not Refund.objects.exists() and not gateway.refunds


def test_a_stripe_failure_is_shown_in_words_and_nothing_is_recorded(
    support_client, paid_purchase, gateway, monkeypatch
):
    def timeout(self, **kwargs):
        raise TemporarilyUnavailable("timeout")

    monkeypatch.setattr(gateway.__class__, "refund_create", timeout)
    url = reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk])
    response = support_client.post(url, {"amount": "1.00", "reason": "Test", "attempt": ATTEMPT})
    page = response.content.decode()
    assert "Stripe did not answer, so this may or may not have been done" in page
    assert "not answering right now" in page
    assert not Refund.objects.exists()
    assert Purchase.objects.get(pk=paid_purchase.pk).amount_refunded == 0


def test_revoke_access_keeps_billing(support_client, paid_purchase, gateway, live_subscription):
    url = reverse("admin:purchases_purchase_revoke", args=[paid_purchase.pk])
    assert "Billing continues" in support_client.get(url).content.decode()
    support_client.post(url)
    assert not AccessGrant.objects.filter(purchase=paid_purchase, revoked_at=None).exists()
    assert Subscription.objects.get(pk=live_subscription.pk).status == SubscriptionStatus.ACTIVE


@pytest.mark.parametrize(("when", "revoke"), [("period_end", False), ("period_end", True), ("now", False)])
def test_cancel_payments_with_or_without_access(
    support_client, paid_purchase, live_subscription, gateway, when, revoke
):
    url = reverse("admin:purchases_purchase_cancel", args=[paid_purchase.pk])
    data = {"when": when, **({"revoke_access": "on"} if revoke else {})}
    support_client.post(url, data)
    subscription = Subscription.objects.get(pk=live_subscription.pk)
    active_grants = AccessGrant.objects.filter(purchase=paid_purchase, revoked_at=None).exists()
    if when == "now":
        assert subscription.status == SubscriptionStatus.CANCELED and not active_grants
    else:
        assert subscription.cancel_at_period_end and subscription.status == SubscriptionStatus.ACTIVE
        assert active_grants is not revoke


def test_subscription_actions_pause_resume_undo_and_card_link(support_client, live_subscription, gateway, mailoutbox):
    def act(action, data=None):
        url = reverse(f"admin:billing_subscription_{action}", args=[live_subscription.pk])
        assert "This will happen:" in support_client.get(url).content.decode()
        return support_client.post(url, data or {}, follow=True)

    act("pause", {"resumes_on": ""})
    assert Subscription.objects.get(pk=live_subscription.pk).paused
    act("resume")
    assert not Subscription.objects.get(pk=live_subscription.pk).paused
    act("cancel_at_period_end")
    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end
    act("keep")
    assert not Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end
    act("card_link")
    assert AuditEntry.objects.filter(action="card.update_link_sent", customer=live_subscription.customer).exists()
    page = support_client.get(reverse("admin:billing_subscription_change", args=[live_subscription.pk]))
    assert reverse("admin:billing_subscription_cancel_now", args=[live_subscription.pk]) in page.content.decode()


def test_a_pause_date_in_the_past_is_refused(support_client, live_subscription, gateway):
    url = reverse("admin:billing_subscription_pause", args=[live_subscription.pk])
    response = support_client.post(url, {"resumes_on": "2001-01-01"})
    assert "Choose a date in the future." in response.content.decode()
    assert not Subscription.objects.get(pk=live_subscription.pk).paused


def test_a_plain_customer_and_staff_without_permission_cannot_act(client, paid_purchase, live_subscription, gateway):
    from tests.factories import UserFactory

    urls = [
        reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk]),
        reverse("admin:purchases_purchase_revoke", args=[paid_purchase.pk]),
        reverse("admin:purchases_purchase_cancel", args=[paid_purchase.pk]),
        *[
            reverse(f"admin:billing_subscription_{action}", args=[live_subscription.pk])
            for action in ["cancel_now", "pause", "card_link"]
        ],
    ]
    client.force_login(live_subscription.customer.user)
    for url in urls:
        response = client.post(url, {"amount": "1", "reason": "x", "when": "now"})
        assert response.status_code == 302 and "login" in response["Location"]
    bare_staff = UserFactory(email="intern@example.com", is_staff=True)  # with two-factor, without permissions
    client.force_login(bare_staff)
    for url in urls:
        assert client.post(url, {"amount": "1", "reason": "x", "when": "now"}).status_code == 403
    assert not Refund.objects.exists()
    assert Subscription.objects.get(pk=live_subscription.pk).status == SubscriptionStatus.ACTIVE


def test_the_refund_form_carries_a_fresh_attempt_id_and_keeps_it_when_the_form_comes_back(
    support_client, paid_purchase, gateway
):
    url = reverse("admin:purchases_purchase_refund", args=[paid_purchase.pk])
    first, second = (support_client.get(url).context["form"]["attempt"].value() for _ in range(2))
    assert first != second and len(first) == 32

    response = support_client.post(url, {"amount": "99.00", "reason": "Too much", "attempt": first})

    assert response.context["form"]["attempt"].value() == first
    assert support_client.post(url, {"amount": "1.00", "reason": "No id"}).status_code == 200  # refused
    assert not Refund.objects.exists() and not gateway.refunds
