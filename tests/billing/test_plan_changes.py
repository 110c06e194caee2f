"""The customer's change of plan (billing.plans) against the in-memory fake gateway, and its pages."""

from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import translation

from billing import plans, services
from billing.gateways.base import CardDeclined
from billing.models import Subscription
from console.emails import email_render
from portal.models import AuditEntry, OutboundEmail, SiteSettings
from tests.billing.conftest import calls
from tests.factories import OfferFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
PERIOD_END = datetime(2026, 12, 18, 9, 0, tzinfo=UTC)  # half of the fake's 30-day period left


@pytest.fixture(autouse=True)
def _fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


@pytest.fixture
def plan_changes_allowed(db):
    SiteSettings.objects.update_or_create(pk=1, defaults={"plan_changes_enabled": True})


@pytest.fixture
def yearly(subscription_offer, gateway):
    """The yearly offer in the monthly membership's switch group (£150 a year)."""
    subscription_offer.switch_group = "membership"
    subscription_offer.save(update_fields=["switch_group"])
    gateway.prices["price_member"] = (1500, "month")
    gateway.prices["price_member_yearly"] = (15000, "year")
    return OfferFactory(
        name="Membership yearly",
        kind="subscription",
        interval="year",
        price_amount=15000,
        stripe_price_id="price_member_yearly",
        switch_group="membership",
    )


@pytest.fixture
def subscription(yearly, live_subscription, gateway) -> Subscription:
    remote = gateway.subscription_update(
        subscription_id=live_subscription.stripe_subscription_id, current_period_end=PERIOD_END
    )
    return services.subscription_sync(remote=remote)


# Which switches -----------------------------------------------------------------------------------


def test_a_subscription_may_switch_to_the_other_offers_of_its_group_in_its_currency_only(subscription, yearly):
    OfferFactory(
        kind="subscription", interval="year", stripe_price_id="price_eur", switch_group="membership", currency="eur"
    )
    OfferFactory(kind="subscription", interval="year", stripe_price_id="price_other", switch_group="other")
    OfferFactory(
        kind="subscription", interval="year", stripe_price_id="price_off", switch_group="membership", is_active=False
    )

    assert plans.subscription_plan_switches(subscription=subscription) == [yearly]


def test_an_offer_without_a_group_or_a_subscription_set_to_end_has_no_switches(subscription, yearly):
    subscription.cancel_at_period_end = True
    assert plans.subscription_plan_switches(subscription=subscription) == []
    subscription.cancel_at_period_end = False
    subscription.offer.switch_group = ""
    assert plans.subscription_plan_switches(subscription=subscription) == []


# Preview and change ---------------------------------------------------------------------------------


def test_the_preview_charges_the_prorated_difference_and_changes_nothing(
    plan_changes_allowed, subscription, yearly, gateway
):
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)

    assert preview.amount_due == 15000 - 750  # a full year, less the unused half month
    assert preview.next_renewal == datetime(2027, 12, 3, 9, 0, tzinfo=UTC)
    assert calls(gateway, "subscription_price_change_preview")[0]["price_id"] == "price_member_yearly"
    assert calls(gateway, "subscription_price_change") == []
    subscription.refresh_from_db()
    assert subscription.stripe_price_id == "price_member"


def test_the_change_prorates_as_of_the_previewed_moment_even_when_confirmed_later(
    plan_changes_allowed, subscription, yearly, member, gateway, time_machine
):
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)
    time_machine.move_to(NOW + timedelta(minutes=5), tick=False)

    changed = plans.subscription_plan_change(subscription=subscription, offer=yearly, token=preview.token, by=member)

    assert calls(gateway, "subscription_price_change")[0]["proration_date"] == NOW
    assert (changed.offer, changed.stripe_price_id, changed.amount, changed.interval) == (
        yearly,
        "price_member_yearly",
        15000,
        "year",
    )


def test_a_moment_the_customer_moved_is_refused(plan_changes_allowed, subscription, yearly, member, gateway):
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)
    data = signing.loads(preview.token, salt="billing.plans.plan_change")
    moved = {**data, "at": data["at"] - 86400}
    forged = signing.dumps(moved, salt="billing.plans.plan_change", key="not the site's secret")
    payload, stamp, signature = preview.token.split(":")
    tampered = ":".join([signing.dumps(moved, salt="billing.plans.plan_change").split(":")[0], stamp, signature])

    for token in (forged, tampered):
        with pytest.raises(services.BillingError) as refused:
            plans.subscription_plan_change(subscription=subscription, offer=yearly, token=token, by=member)
        assert refused.value.message == plans.PLAN_PREVIEW_EXPIRED
    assert calls(gateway, "subscription_price_change") == []


def test_a_preview_older_than_its_max_age_must_be_looked_at_again(
    plan_changes_allowed, subscription, yearly, member, gateway, time_machine
):
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)
    time_machine.move_to(NOW + plans.PLAN_PREVIEW_MAX_AGE + timedelta(seconds=1), tick=False)

    with pytest.raises(services.BillingError, match="expired"):
        plans.subscription_plan_change(subscription=subscription, offer=yearly, token=preview.token, by=member)
    assert calls(gateway, "subscription_price_change") == []


def test_a_change_is_audited_as_the_customers_and_emailed_once_even_when_confirmed_twice(
    plan_changes_allowed, subscription, yearly, member, gateway
):
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)
    plans.subscription_plan_change(
        subscription=subscription, offer=yearly, token=preview.token, by=member, attempt="a" * 32
    )
    with pytest.raises(services.BillingError) as again:
        plans.subscription_plan_change(
            subscription=subscription, offer=yearly, token=preview.token, by=member, attempt="a" * 32
        )
    services.subscription_sync(
        remote=gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id)
    )

    assert again.value.message == plans.PLAN_ALREADY_CHANGED
    entry = AuditEntry.objects.get(action="subscription.plan_changed")
    assert entry.actor == member and entry.actor_kind == "customer"
    assert entry.changes["amount"] == [1500, 15000] and entry.changes["interval"] == ["month", "year"]
    email = OutboundEmail.objects.get(kind="plan_changed")
    assert email.context["offer_name"] == "Membership yearly" and email.context["amount"] == 15000
    assert len(calls(gateway, "subscription_price_change")) == 1


def test_a_declined_card_refuses_the_change_and_keeps_the_plan(
    plan_changes_allowed, subscription, yearly, member, gateway
):
    type(gateway).charge_declines = True  # get_gateway() makes another instance; reset() clears it
    preview = plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)

    with pytest.raises(CardDeclined):
        plans.subscription_plan_change(subscription=subscription, offer=yearly, token=preview.token, by=member)

    subscription.refresh_from_db()
    assert (subscription.offer.stripe_price_id, subscription.amount) == ("price_member", 1500)
    assert not AuditEntry.objects.filter(action="subscription.plan_changed").exists()
    assert not OutboundEmail.objects.filter(kind="plan_changed").exists()


def test_no_change_nor_preview_when_the_creator_does_not_allow_it(subscription, yearly, member, gateway):
    with pytest.raises(services.BillingError) as refused:
        plans.subscription_plan_change_preview(subscription=subscription, offer=yearly)
    assert refused.value.message == plans.PLAN_CHANGES_OFF
    assert gateway.calls == [c for c in gateway.calls if c[0] != "subscription_price_change_preview"]


# The pages ---------------------------------------------------------------------------------------------


def test_the_billing_page_links_a_change_of_plan_only_when_the_creator_allows_it(member_client, subscription, yearly):
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    assert url not in member_client.get(reverse("billing:index")).content.decode()

    SiteSettings.objects.update_or_create(pk=1, defaults={"plan_changes_enabled": True})

    assert url in member_client.get(reverse("billing:index")).content.decode()


def test_the_customer_previews_then_confirms_a_switch_to_yearly(
    plan_changes_allowed, member_client, subscription, yearly, gateway
):
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    listing = member_client.get(url).content.decode()
    assert "Membership yearly" in listing and "£150.00 / year" in listing

    page = member_client.get(url, {"offer": yearly.pk})
    assert page.context["preview"].amount_due == 14250
    assert "£142.50" in page.content.decode()

    response = member_client.post(
        url, {"offer": yearly.pk, "token": page.context["preview"].token, "attempt": "b" * 32}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("billing:index")
    assert "Your plan is now Membership yearly." in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.offer == yearly and subscription.interval == "year"


def test_a_declined_card_shows_the_reason_and_keeps_the_plan(
    plan_changes_allowed, member_client, subscription, yearly, gateway
):
    type(gateway).charge_declines = True
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    token = member_client.get(url, {"offer": yearly.pk}).context["preview"].token

    response = member_client.post(url, {"offer": yearly.pk, "token": token}, follow=True)

    assert response.redirect_chain[-1][0] == url
    assert "Your card was declined." in response.content.decode()
    subscription.refresh_from_db()
    assert subscription.offer.stripe_price_id == "price_member"


def test_another_customers_subscription_is_not_found(plan_changes_allowed, client, subscription, yearly):
    from tests.factories import CustomerFactory

    stranger = CustomerFactory()
    client.force_login(stranger.user, backend="accounts.backends.PortalAuthenticationBackend")

    assert client.get(reverse("billing:subscription_plan", args=[subscription.pk])).status_code == 404


@pytest.fixture
def german(member):
    """The member reads German; the language the middleware switched to is switched back after the test."""
    member.customer.language = "de"
    member.customer.save(update_fields=["language"])
    yield member
    translation.activate(settings.LANGUAGE_CODE)


def test_the_plan_pages_and_email_speak_german_to_a_german_customer(
    plan_changes_allowed, member_client, german, subscription, yearly
):
    url = reverse("billing:subscription_plan", args=[subscription.pk])
    assert "Tarif wechseln: " in member_client.get(url).content.decode()
    page = member_client.get(url, {"offer": yearly.pk})
    assert "Jetzt abgebucht" in page.content.decode() and "Wechsel bestätigen" in page.content.decode()

    response = member_client.post(url, {"offer": yearly.pk, "token": page.context["preview"].token}, follow=True)

    assert "Ihr Tarif ist jetzt Membership yearly." in response.content.decode()
    rendered = email_render(
        customer=german.customer, kind="plan_changed", context=OutboundEmail.objects.get(kind="plan_changed").context
    )
    assert rendered.subject == "Ihr Tarif ist jetzt Membership yearly"
    assert "Ab jetzt zahlen Sie " in rendered.text and " pro Jahr." in rendered.text
