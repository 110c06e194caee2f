"""Leaving well: the reason given on the cancel page and the one retention offer (billing.retention)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import CancellationFeedback, RetentionOfferRedemption, Subscription
from billing.retention import (
    OFFER_ALREADY_TAKEN,
    OFFER_NOT_APPLICABLE,
    OFFER_REFUSED,
    REASON_UNKNOWN,
    retention_offer_accept,
    subscription_cancel_with_reason,
)
from billing.services import BillingError, subscription_sync
from console.selectors import cancellation_reasons_count, dashboard_metrics
from portal.models import AuditEntry, OutboundEmail
from portal.services import site_settings_update

pytestmark = pytest.mark.django_db

OFFER = "Stay and get 50% off your next 3 months."


@pytest.fixture
def retention_offer(db):
    site_settings_update(data={"retention_coupon_id": "STAY50", "retention_offer_text": OFFER})


@pytest.fixture
def billing_client(client, stripe_customer):
    client.force_login(stripe_customer.user)
    return client


def cancel_url(subscription: Subscription) -> str:
    return reverse("billing:subscription_cancel", args=[subscription.pk])


# --- Services ---------------------------------------------------------------------------------


def test_a_cancellation_sends_the_reason_to_stripe_and_keeps_it_with_the_contact(live_subscription, gateway):
    customer = live_subscription.customer

    cancelled = subscription_cancel_with_reason(
        subscription=live_subscription, by=customer.user, reason="too_expensive", comment="  Money is tight.  "
    )

    assert cancelled.cancel_at_period_end is True
    (call,) = [kwargs for name, kwargs in gateway.calls if name == "subscription_set_cancel_at_period_end"]
    assert (call["feedback"], call["comment"]) == ("too_expensive", "Money is tight.")
    (feedback,) = CancellationFeedback.objects.filter(customer=customer)
    assert (feedback.reason, feedback.comment, feedback.offer_accepted) == ("too_expensive", "Money is tight.", False)
    entry = AuditEntry.objects.get(action="subscription.cancel_reason")
    assert entry.actor == customer.user and entry.changes["reason"] == "too_expensive"


def test_a_reason_that_is_not_one_of_stripes_codes_is_refused_and_nothing_is_cancelled(live_subscription, gateway):
    with pytest.raises(BillingError) as refused:
        subscription_cancel_with_reason(
            subscription=live_subscription, by=live_subscription.customer.user, reason="bored"
        )

    assert refused.value.message == str(REASON_UNKNOWN)
    assert not Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end
    assert not CancellationFeedback.objects.exists()


def test_cancelling_twice_records_one_reason(live_subscription, gateway):
    user = live_subscription.customer.user
    subscription_cancel_with_reason(subscription=live_subscription, by=user, reason="unused")

    with pytest.raises(BillingError):
        subscription_cancel_with_reason(subscription=live_subscription, by=user, reason="unused")

    assert CancellationFeedback.objects.count() == 1


def test_the_offer_redeems_the_creators_coupon_and_keeps_the_subscription(
    live_subscription, gateway, retention_offer, run_tasks, mailoutbox, django_capture_on_commit_callbacks
):
    customer = live_subscription.customer

    with django_capture_on_commit_callbacks(execute=True):
        kept = retention_offer_accept(subscription=live_subscription, by=customer.user, reason="too_expensive")
    run_tasks()

    assert kept.is_active and not kept.is_set_to_end
    assert gateway.subscriptions[live_subscription.stripe_subscription_id].discount_ids == ("di_STAY50",)
    redemption = RetentionOfferRedemption.objects.get(customer=customer)
    assert (redemption.coupon_id, redemption.subscription_id) == ("STAY50", live_subscription.pk)
    feedback = CancellationFeedback.objects.get(customer=customer)
    assert (feedback.reason, feedback.offer_accepted) == ("too_expensive", True)
    assert AuditEntry.objects.filter(action="retention_offer.applied", customer=customer).exists()
    (email,) = mailoutbox
    assert email.subject == f"Your offer on {live_subscription.offer.name} is applied"
    assert OFFER in email.body


def test_the_offer_is_taken_once_per_customer_and_its_email_sent_once(
    live_subscription, gateway, retention_offer, stripe_customer, subscription_offer
):
    user = stripe_customer.user
    retention_offer_accept(subscription=live_subscription, by=user)
    second = subscription_sync(
        remote=gateway.subscription_create(
            customer_id=stripe_customer.stripe_customer_id, amount=900, price_id="price_member"
        )
    )

    for subscription in (live_subscription, second):
        with pytest.raises(BillingError) as refused:
            retention_offer_accept(subscription=subscription, by=user)
        assert refused.value.message == str(OFFER_ALREADY_TAKEN)

    assert [name for name, _ in gateway.calls].count("subscription_coupon_add") == 1
    assert RetentionOfferRedemption.objects.count() == 1
    assert OutboundEmail.objects.filter(kind="retention_offer_applied").count() == 1


def test_the_offer_is_not_applied_to_a_subscription_already_set_to_end(live_subscription, gateway, retention_offer):
    user = live_subscription.customer.user
    subscription_cancel_with_reason(subscription=live_subscription, by=user)

    with pytest.raises(BillingError) as refused:
        retention_offer_accept(subscription=live_subscription, by=user)

    assert refused.value.message == str(OFFER_NOT_APPLICABLE)
    assert not RetentionOfferRedemption.objects.exists()


def test_a_coupon_stripe_does_not_know_is_refused_in_words_and_nothing_is_recorded(live_subscription, gateway):
    site_settings_update(data={"retention_coupon_id": "missing-coupon", "retention_offer_text": OFFER})

    with pytest.raises(BillingError) as refused:
        retention_offer_accept(subscription=live_subscription, by=live_subscription.customer.user)

    assert refused.value.message == str(OFFER_REFUSED) % {"contact": "us"}
    assert not RetentionOfferRedemption.objects.exists() and not CancellationFeedback.objects.exists()


# --- Dashboard --------------------------------------------------------------------------------


def test_the_dashboard_counts_cancellations_by_reason_and_offers_taken(live_subscription, stripe_customer):
    now = timezone.now()
    for reason in ["too_expensive", "too_expensive", "unused", ""]:
        CancellationFeedback.objects.create(customer=stripe_customer, subscription=live_subscription, reason=reason)
    CancellationFeedback.objects.create(
        customer=stripe_customer, subscription=live_subscription, reason="too_expensive", offer_accepted=True
    )
    CancellationFeedback.objects.create(
        customer=stripe_customer, subscription=live_subscription, reason="unused", created_at=now - timedelta(days=40)
    )

    reasons, taken = cancellation_reasons_count(since=now - timedelta(days=30), until=now + timedelta(seconds=1))

    assert reasons == [("It is too expensive", 2), ("I do not use it enough", 1), ("No reason given", 1)]
    assert taken == 1
    assert dashboard_metrics().cancellation_reasons == reasons


def test_the_admin_dashboard_and_the_contact_page_show_the_reasons(creator_client, live_subscription, stripe_customer):
    CancellationFeedback.objects.create(
        customer=stripe_customer, subscription=live_subscription, reason="missing_features", comment="No API."
    )

    dashboard = creator_client.get("/admin/").content.decode()
    contact = creator_client.get(reverse("admin:accounts_customer_change", args=[stripe_customer.pk])).content.decode()

    assert 'id="cancellation-reasons"' in dashboard and "Something I need is missing" in dashboard
    assert "cancellation reasons (newest)" in contact.lower() and "No API." in contact


# --- The cancel page --------------------------------------------------------------------------


def test_the_cancel_page_asks_why_and_shows_the_offer_once_configured(billing_client, live_subscription, gateway):
    page = billing_client.get(cancel_url(live_subscription)).content.decode()
    assert 'name="reason"' in page and 'name="comment"' in page
    assert 'id="retention-offer"' not in page

    site_settings_update(data={"retention_coupon_id": "STAY50", "retention_offer_text": OFFER})
    page = billing_client.get(cancel_url(live_subscription)).content.decode()

    assert 'id="retention-offer"' in page and OFFER in page


def test_cancelling_on_the_page_with_a_reason_ends_at_period_end_and_keeps_the_reason(
    billing_client, live_subscription, gateway, retention_offer
):
    response = billing_client.post(
        cancel_url(live_subscription), {"reason": "switched_service", "comment": "Found another."}, follow=True
    )

    assert "Your subscription will end on" in response.content.decode()
    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end is True
    assert CancellationFeedback.objects.get().reason == "switched_service"
    assert not RetentionOfferRedemption.objects.exists()


def test_taking_the_offer_on_the_page_keeps_the_subscription_and_hides_the_offer_next_time(
    billing_client, live_subscription, gateway, retention_offer
):
    response = billing_client.post(
        cancel_url(live_subscription), {"reason": "too_expensive", "action": "offer"}, follow=True
    )

    assert f"Thank you for staying. Your offer is applied: {OFFER}" in response.content.decode()
    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end is False
    assert RetentionOfferRedemption.objects.filter(customer=live_subscription.customer).exists()
    assert 'id="retention-offer"' not in billing_client.get(cancel_url(live_subscription)).content.decode()


def test_an_offer_button_posted_when_no_offer_is_shown_cancels_as_asked(billing_client, live_subscription, gateway):
    billing_client.post(cancel_url(live_subscription), {"action": "offer"})

    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end is True
    assert not RetentionOfferRedemption.objects.exists()


def test_a_comment_too_long_is_refused_on_the_page_and_nothing_is_cancelled(billing_client, live_subscription, gateway):
    response = billing_client.post(cancel_url(live_subscription), {"comment": "x" * 501})

    assert response.status_code == 400
    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end is False


def test_the_creator_must_give_both_the_coupon_and_its_text(creator_client):
    from django.core.exceptions import ValidationError

    from portal.models import SiteSettings

    site = SiteSettings(retention_coupon_id="STAY50")
    with pytest.raises(ValidationError) as invalid:
        site.clean()
    assert "retention_offer_text" in invalid.value.message_dict


def test_a_german_customer_is_asked_and_thanked_in_german(billing_client, live_subscription, retention_offer):
    from django.conf import settings
    from django.utils import translation

    from console.emails import email_render

    customer = live_subscription.customer
    customer.language = "de"
    customer.save(update_fields=["language"])
    try:
        page = billing_client.get(cancel_url(live_subscription)).content.decode()
        rendered = email_render(
            customer=customer,
            kind="retention_offer_applied",
            context={"offer_name": "Mitgliedschaft", "offer_text": OFFER},
        )
    finally:
        translation.activate(settings.LANGUAGE_CODE)

    assert "Warum kündigen Sie?" in page and "Es ist mir zu teuer" in page and "Angebot annehmen und bleiben" in page
    assert rendered.subject == "Ihr Angebot für Mitgliedschaft ist angewendet"
    assert "Schön, dass Sie bleiben." in rendered.text and OFFER in rendered.text
