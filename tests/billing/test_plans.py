"""The customer's own pause (billing.plans) against the in-memory fake gateway, and its pages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from accounts.models import User
from billing import plans, services
from billing.models import Subscription
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from tests.billing.conftest import calls

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def pausing_allowed(db):
    SiteSettings.objects.update_or_create(pk=1, defaults={"self_pause_enabled": True})


@pytest.fixture
def subscription(live_subscription, gateway) -> Subscription:
    """The live monthly subscription, its period ending on a known day."""
    remote = gateway.subscription_update(
        subscription_id=live_subscription.stripe_subscription_id, current_period_end=PERIOD_END
    )
    return services.subscription_sync(remote=remote)


# The service ------------------------------------------------------------------------------------


def test_a_two_period_pause_skips_two_renewals_and_charges_resume_just_before_the_third(
    pausing_allowed, subscription, member, gateway
):
    paused = plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=2)

    third_renewal = datetime(2027, 2, 20, 12, 0, tzinfo=UTC)
    assert calls(gateway, "subscription_pause")[-1]["resumes_at"] == third_renewal - plans.RESUME_MARGIN
    assert paused.paused and paused.paused_by_customer
    assert paused.resumes_at == third_renewal - plans.RESUME_MARGIN


def test_a_pause_is_audited_as_the_customers_and_emailed_once_with_its_resume_date(
    pausing_allowed, subscription, member, gateway
):
    paused = plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=1)
    services.subscription_sync(remote=gateway.subscription_retrieve(subscription_id=paused.stripe_subscription_id))

    entry = AuditEntry.objects.filter(action="subscription.changed").latest("pk")
    assert entry.actor == member and entry.actor_kind == "customer"
    assert entry.changes["paused"] == [False, True]
    emails = OutboundEmail.objects.filter(kind="subscription_paused")
    assert emails.count() == 1
    assert emails.get().context["resumes_at"] == datetime(2027, 1, 20, 11, 59, tzinfo=UTC).isoformat()


def test_a_quarterly_subscription_pauses_by_billing_periods_of_three_months(
    pausing_allowed, subscription, member, gateway
):
    subscription.interval_count = 3

    assert plans.pause_resumes_at(subscription=subscription, cycles=1) == datetime(2027, 3, 20, 11, 59, tzinfo=UTC)


def test_a_period_ending_on_the_31st_resumes_on_the_last_day_of_a_shorter_month(subscription):
    subscription.current_period_end = datetime(2027, 1, 31, 12, 0, tzinfo=UTC)

    assert plans.pause_resumes_at(subscription=subscription, cycles=1) == datetime(2027, 2, 28, 11, 59, tzinfo=UTC)


def test_pausing_is_refused_while_the_creator_has_not_allowed_it(subscription, member, gateway):
    with pytest.raises(services.BillingError) as refused:
        plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=1)

    assert refused.value.message == plans.SELF_PAUSE_OFF
    assert calls(gateway, "subscription_pause") == []


@pytest.mark.parametrize("cycles", [0, 4])
def test_a_pause_of_other_than_one_to_three_periods_is_refused(pausing_allowed, subscription, member, gateway, cycles):
    with pytest.raises(services.BillingError) as refused:
        plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=cycles)

    assert refused.value.message == plans.PAUSE_CYCLES_INVALID
    assert calls(gateway, "subscription_pause") == []


def test_a_subscription_set_to_end_cannot_be_paused(pausing_allowed, subscription, member, gateway):
    services.subscription_cancel(subscription=subscription, by=member)

    with pytest.raises(services.BillingError) as refused:
        plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=1)

    assert refused.value.message == plans.SUBSCRIPTION_ENDING_NOT_PAUSABLE
    assert calls(gateway, "subscription_pause") == []


def test_the_customer_resumes_their_pause_even_after_the_creator_stopped_offering_pauses(
    pausing_allowed, subscription, member, gateway
):
    plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=3)
    SiteSettings.objects.filter(pk=1).update(self_pause_enabled=False)

    resumed = plans.subscription_resume_by_customer(subscription=subscription, by=member)
    services.subscription_sync(remote=gateway.subscription_retrieve(subscription_id=resumed.stripe_subscription_id))

    assert not resumed.paused and not resumed.paused_by_customer and resumed.resumes_at is None
    assert OutboundEmail.objects.filter(kind="subscription_resumed").count() == 1


def test_a_pause_made_by_staff_cannot_be_resumed_by_the_customer(subscription, member, gateway):
    staff = User.objects.create_user(email="support@example.com", password="x", is_staff=True)
    services.subscription_pause(subscription=subscription, by=staff, resumes_at=NOW + timedelta(days=40))

    with pytest.raises(services.BillingError) as refused:
        plans.subscription_resume_by_customer(subscription=subscription, by=member)

    assert refused.value.message.startswith("Our team paused this subscription")
    assert calls(gateway, "subscription_resume") == []
    assert Subscription.objects.get(pk=subscription.pk).paused


def test_when_stripe_ends_the_pause_the_customer_no_longer_holds_one(pausing_allowed, subscription, member, gateway):
    plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=1)

    remote = gateway.subscription_update(
        subscription_id=subscription.stripe_subscription_id, paused=False, resumes_at=None
    )
    synced = services.subscription_sync(remote=remote)

    assert not synced.paused and not synced.paused_by_customer


# The pages --------------------------------------------------------------------------------------


def test_the_billing_page_offers_a_pause_only_when_the_creator_allows_it(member_client, subscription):
    pause_url = reverse("billing:subscription_pause", args=[subscription.pk])
    assert pause_url not in member_client.get("/billing/").content.decode()

    SiteSettings.objects.update_or_create(pk=1, defaults={"self_pause_enabled": True})

    assert pause_url in member_client.get("/billing/").content.decode()


def test_the_pause_page_shows_when_charges_resume_for_each_length(pausing_allowed, member_client, subscription):
    page = member_client.get(reverse("billing:subscription_pause", args=[subscription.pk])).content.decode()

    for day in ("Jan. 20, 2027", "Feb. 20, 2027", "March 20, 2027"):
        assert day in page
    assert 'name="cycles" value="3"' in page


def test_pausing_from_the_page_shows_the_resume_date_and_a_resume_button(
    pausing_allowed, member_client, subscription, gateway
):
    url = reverse("billing:subscription_pause", args=[subscription.pk])
    response = member_client.post(url, {"cycles": "2", "attempt": "a" * 32}, follow=True)

    page = response.content.decode()
    assert "Your subscription is paused. It resumes on Feb. 20, 2027" in page
    assert "Resumes on Feb. 20, 2027" in page
    assert reverse("billing:subscription_resume", args=[subscription.pk]) in page
    assert reverse("billing:subscription_pause", args=[subscription.pk]) not in page


def test_a_double_submitted_pause_sends_one_intention(pausing_allowed, member_client, subscription, gateway):
    url = reverse("billing:subscription_pause", args=[subscription.pk])
    member_client.post(url, {"cycles": "1", "attempt": "b" * 32}, follow=True)
    response = member_client.post(url, {"cycles": "1", "attempt": "b" * 32}, follow=True)

    assert len(calls(gateway, "subscription_pause")) == 1
    assert [str(m) for m in response.context["messages"]] == [str(plans.SUBSCRIPTION_ALREADY_PAUSED)]


def test_a_pause_length_not_offered_is_refused_with_the_reason(pausing_allowed, member_client, subscription, gateway):
    url = reverse("billing:subscription_pause", args=[subscription.pk])
    response = member_client.post(url, {"cycles": "6"})

    assert str(plans.PAUSE_CYCLES_INVALID) in response.content.decode()
    assert calls(gateway, "subscription_pause") == []


def test_resuming_from_the_billing_page_says_payments_continue(pausing_allowed, member_client, subscription, gateway):
    plans.subscription_pause_by_customer(subscription=subscription, by=subscription.customer.user, cycles=1)

    response = member_client.post(reverse("billing:subscription_resume", args=[subscription.pk]), follow=True)

    assert "Your subscription is active again" in response.content.decode()
    assert not Subscription.objects.get(pk=subscription.pk).paused


def test_another_customers_subscription_cannot_be_paused(pausing_allowed, client, other_customer, subscription):
    client.force_login(other_customer.user, backend="accounts.backends.PortalAuthenticationBackend")

    response = client.post(reverse("billing:subscription_pause", args=[subscription.pk]), {"cycles": "1"})

    assert response.status_code == 404


# The console ------------------------------------------------------------------------------------


def test_staff_see_in_the_subscription_list_who_paused_it_and_until_when(
    pausing_allowed, support_client, subscription, member
):
    plans.subscription_pause_by_customer(subscription=subscription, by=member, cycles=1)

    page = support_client.get("/admin/billing/subscription/?paused_by_customer__exact=1").content.decode()

    assert "Paused by the customer, until Jan. 20, 2027" in page


def test_the_creator_turns_customer_pauses_on_in_the_site_settings_and_it_is_audited(creator_client, creator):
    SiteSettings.objects.get_or_create(pk=1)
    form = creator_client.get("/admin/portal/sitesettings/1/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value not in (None, False, "") and name != "logo"}

    response = creator_client.post("/admin/portal/sitesettings/1/change/", {**data, "self_pause_enabled": "on"})

    assert response.status_code == 302
    assert SiteSettings.objects.get(pk=1).self_pause_enabled
    entry = AuditEntry.objects.get(action="site_settings.updated")
    assert entry.actor == creator and entry.changes["self_pause_enabled"] == ["False", "True"]


@pytest.fixture
def german(member):
    """The member reads German; the language the middleware switched to is switched back after the test."""
    member.customer.language = "de"
    member.customer.save(update_fields=["language"])
    yield member
    translation.activate(settings.LANGUAGE_CODE)


def test_the_pause_page_speaks_german_to_a_german_customer(pausing_allowed, member_client, german, subscription):
    page = member_client.get(reverse("billing:subscription_pause", args=[subscription.pk])).content.decode()

    assert "Die nächsten 2 Zahlungen aussetzen: Abbuchungen ab 20. Februar 2027 wieder" in page
    assert "Abonnement pausieren" in page
