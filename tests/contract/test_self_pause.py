"""The customer's own pause and resume, over the real SDK and HTTP against the Stripe stand-in."""

from datetime import UTC, datetime

import pytest
from dateutil.relativedelta import relativedelta
from django.urls import reverse

from billing.models import Subscription
from billing.plans import RESUME_MARGIN
from portal.models import OutboundEmail, SiteSettings
from tests.contract.standin import API_VERSION
from tests.contract.test_findings import mirrored, press, refused_by_stripe, subscribe

pytestmark = pytest.mark.django_db


@pytest.fixture
def paused_by_customer(client_logged_in, standin, standin_gateway, customer):
    """A monthly membership the customer paused for two billing periods from the pause page."""
    SiteSettings.objects.update_or_create(pk=1, defaults={"self_pause_enabled": True})
    _, subscription_id, _ = subscribe(standin, customer)
    subscription = mirrored(subscription_id)
    url = reverse("billing:subscription_pause", args=[subscription.pk])
    response = press(client_logged_in, url, url, cycles="2")
    assert response.status_code == 200
    return subscription_id


def test_the_pause_page_sends_pause_collection_that_voids_invoices_until_the_third_renewal(paused_by_customer, standin):
    (update,) = standin.requests("POST", f"/v1/subscriptions/{paused_by_customer}")
    period_end = datetime.fromtimestamp(standin.get(paused_by_customer)["items"]["data"][0]["current_period_end"], UTC)

    resumes_at = int((period_end + relativedelta(months=2) - RESUME_MARGIN).timestamp())
    assert update.params == {"pause_collection": {"behavior": "void", "resumes_at": str(resumes_at)}}
    assert update.idempotency_key and update.stripe_version == API_VERSION
    assert refused_by_stripe(standin) == []
    assert standin.get(paused_by_customer)["pause_collection"] == {"behavior": "void", "resumes_at": resumes_at}
    subscription = Subscription.objects.get(stripe_subscription_id=paused_by_customer)
    assert subscription.paused and subscription.paused_by_customer
    assert subscription.resumes_at == datetime.fromtimestamp(resumes_at, UTC)


def test_stripes_webhook_of_the_pause_sends_no_second_email(paused_by_customer, deliver):
    assert deliver("customer.subscription.updated", paused_by_customer).status_code == 200
    assert deliver("customer.subscription.updated", paused_by_customer).status_code == 200

    assert OutboundEmail.objects.filter(kind="subscription_paused").count() == 1


def test_resume_unsets_pause_collection_and_the_customer_is_emailed_once(
    paused_by_customer, client_logged_in, standin, deliver
):
    subscription = Subscription.objects.get(stripe_subscription_id=paused_by_customer)

    press(client_logged_in, reverse("billing:index"), reverse("billing:subscription_resume", args=[subscription.pk]))
    deliver("customer.subscription.updated", paused_by_customer)

    resume = standin.requests("POST", f"/v1/subscriptions/{paused_by_customer}")[-1]
    assert resume.params == {"pause_collection": ""} and resume.idempotency_key
    assert standin.get(paused_by_customer)["pause_collection"] is None
    subscription.refresh_from_db()
    assert not subscription.paused and not subscription.paused_by_customer
    assert OutboundEmail.objects.filter(kind="subscription_resumed").count() == 1


def test_stripe_ending_the_pause_on_its_date_is_mirrored_and_emailed_once(paused_by_customer, standin, deliver):
    standin_object = standin.objects[paused_by_customer]
    standin_object["pause_collection"] = None  # what Stripe does at resumes_at

    deliver("customer.subscription.updated", paused_by_customer)
    deliver("customer.subscription.updated", paused_by_customer)

    subscription = Subscription.objects.get(stripe_subscription_id=paused_by_customer)
    assert not subscription.paused and not subscription.paused_by_customer
    assert OutboundEmail.objects.filter(kind="subscription_resumed").count() == 1
