"""The /billing/ pages as a signed-in customer sees them, with the fake gateway behind them."""

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Card, Subscription
from billing.services import card_set_default, subscription_cancel, subscription_cancel_undo, subscription_sync
from portal.models import SiteSettings

pytestmark = pytest.mark.django_db


@pytest.fixture
def billing_client(client, stripe_customer, password):
    client.force_login(stripe_customer.user)
    return client


def test_the_billing_page_lists_cards_and_subscriptions(billing_client, live_subscription, stripe_customer):
    response = billing_client.get("/billing/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Visa •••• 4242" in page and "Default" in page
    assert live_subscription.offer.name in page
    assert "£15.00 / month" in page
    assert reverse("billing:subscription_cancel", args=[live_subscription.pk]) in page
    assert "Update billing" in page  # active subscriptions offer it
    assert "cannot be removed" in page  # the only card of an active subscription says why


def test_the_page_costs_the_same_queries_for_one_or_many_cards_and_subscriptions(
    billing_client, live_subscription, stripe_customer, gateway, django_assert_max_num_queries
):
    billing_client.get("/billing/")  # the first visit also records activity and saves the session
    with django_assert_max_num_queries(8) as one:
        billing_client.get("/billing/")
    for index in range(6):
        card_set_default(customer=stripe_customer, payment_method_id=f"pm_many_{index}", by=None)
        subscription_sync(
            remote=gateway.subscription_create(
                customer_id=stripe_customer.stripe_customer_id, amount=1000 + index, price_id="price_member"
            )
        )
    with django_assert_max_num_queries(len(one.captured_queries)):
        response = billing_client.get("/billing/")
    assert response.content.decode().count("data-subscription=") == 7


def test_a_payment_plan_shows_the_instalments_left_counting_only_its_own_payments(
    billing_client, stripe_customer, gateway
):
    from billing.services import invoice_record_paid
    from tests.factories import OfferFactory

    OfferFactory(
        name="Course in four payments",
        kind="payment_plan",
        installments=4,
        interval="month",
        stripe_price_id="price_plan4",
    )
    remote = gateway.subscription_create(
        customer_id=stripe_customer.stripe_customer_id, amount=5000, price_id="price_plan4"
    )
    subscription_sync(remote=remote)
    for subscription_id in [remote.id, remote.id, remote.id, "sub_someone_else", ""]:
        invoice = gateway.invoice_create(
            customer_id=stripe_customer.stripe_customer_id,
            amount=5000,
            subscription_id=subscription_id,
            price_id="price_plan4",
        )
        invoice_record_paid(invoice=invoice)
        invoice_record_paid(invoice=invoice)  # a replayed delivery adds no payment
    other_plan = OfferFactory(kind="payment_plan", installments=3, interval="month", stripe_price_id="price_plan3")
    subscription_sync(
        remote=gateway.subscription_create(
            customer_id=stripe_customer.stripe_customer_id, amount=3000, price_id="price_plan3"
        )
    )

    page = billing_client.get("/billing/").content.decode()

    assert "1 instalment left" in page  # 4 less the 3 payments of this subscription
    assert "3 instalments left" in page  # none paid on the other plan
    assert other_plan.name in page


def test_rows_kept_as_shown_follow_what_they_show_and_the_customers_language(
    billing_client, live_subscription, stripe_customer
):
    card = Card.objects.get(customer=stripe_customer)
    page = billing_client.get("/billing/").content.decode()
    assert "£15.00 / month" in page and f"Expires {card.exp_month:02d}/{card.exp_year}" in page

    Subscription.objects.filter(pk=live_subscription.pk).update(amount=2500, paused=True)
    Card.objects.filter(pk=card.pk).update(exp_year=card.exp_year + 1)
    page = billing_client.get("/billing/").content.decode()
    assert "£25.00 / month" in page and "Paused" in page
    assert f"Expires {card.exp_month:02d}/{card.exp_year + 1}" in page

    stripe_customer.language = "de"
    stripe_customer.save(update_fields=["language"])
    page = billing_client.get("/billing/").content.decode()
    assert "Pausiert" in page and "Paused" not in page


def _buttons(page: str) -> list[tuple[str, str]]:
    """Each submit button's form and action, as the browser submits it."""
    return re.findall(r'<button type="submit" form="([^"]*)" formaction="([^"]*)"', page)


def _action_form(page: str) -> dict[str, str]:
    form = re.search(r'<form id="billing-action" method="post" hidden>(.*?)</form>', page).group(1)
    return dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form))


def test_every_button_submits_the_one_action_form_which_carries_a_fresh_attempt_each_view(
    client, stripe_customer, live_subscription
):
    spare = card_set_default(customer=stripe_customer, payment_method_id="pm_spare", by=None)
    card_set_default(customer=stripe_customer, payment_method_id="pm_first", by=None)
    subscription_cancel(subscription=live_subscription, by=None)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(stripe_customer.user)

    first, second = (browser.get("/billing/").content.decode() for _ in range(2))

    keep = reverse("billing:subscription_keep", args=[live_subscription.pk])
    expected = {reverse("billing:card_default", args=[spare.pk]), reverse("billing:card_remove", args=[spare.pk]), keep}
    for page in (first, second):
        assert {action for _, action in _buttons(page)} == expected
        assert {form for form, _ in _buttons(page)} == {"billing-action"}
        assert page.count('name="csrfmiddlewaretoken"') == 2  # the action form's and the sign-out form's
    assert _action_form(first)["attempt"] != _action_form(second)["attempt"]  # rendered outside the kept fragments

    response = browser.post(keep, _action_form(second), follow=True)  # what "Keep subscription" sends
    assert "Your subscription continues" in response.content.decode()
    assert not Subscription.objects.get(pk=live_subscription.pk).is_set_to_end


def test_kept_sections_follow_cancellation_pause_plan_and_default_card(
    billing_client, stripe_customer, live_subscription, support_user
):
    from tests.factories import OfferFactory

    cancel_url = reverse("billing:subscription_cancel", args=[live_subscription.pk])
    assert cancel_url in billing_client.get("/billing/").content.decode()

    subscription_cancel(subscription=live_subscription, by=None)
    page = billing_client.get("/billing/").content.decode()
    assert "Keep subscription" in page and "Ends on" in page and cancel_url not in page

    Subscription.objects.filter(pk=live_subscription.pk).update(cancel_requested_by=support_user)
    page = billing_client.get("/billing/").content.decode()
    assert "data-staff-cancellation" in page and "Keep subscription" not in page

    subscription_cancel_undo(subscription=live_subscription, by=support_user)
    page = billing_client.get("/billing/").content.decode()
    assert cancel_url in page and "Ends on" not in page and "data-staff-cancellation" not in page

    Subscription.objects.filter(pk=live_subscription.pk).update(paused=True, paused_by_customer=True)
    page = billing_client.get("/billing/").content.decode()
    assert "Paused" in page and reverse("billing:subscription_resume", args=[live_subscription.pk]) in page

    yearly = OfferFactory(name="Yearly membership", kind="subscription", interval="year")
    Subscription.objects.filter(pk=live_subscription.pk).update(offer=yearly, paused=False, paused_by_customer=False)
    page = billing_client.get("/billing/").content.decode()
    assert "Yearly membership" in page and live_subscription.offer.name not in page

    first = Card.objects.get(customer=stripe_customer)
    assert reverse("billing:card_default", args=[first.pk]) not in page
    card_set_default(customer=stripe_customer, payment_method_id="pm_second", by=None)
    page = billing_client.get("/billing/").content.decode()
    assert reverse("billing:card_default", args=[first.pk]) in page  # the first card is now the spare one
    assert "cannot be removed" in page  # the new default's line


def test_kept_sections_follow_the_customers_time_zone_and_the_site_settings(
    billing_client, stripe_customer, live_subscription, support_user
):
    renews = datetime(2031, 1, 1, 23, 30, tzinfo=UTC)
    Subscription.objects.filter(pk=live_subscription.pk).update(current_period_end=renews)
    assert "Jan. 1, 2031" in billing_client.get("/billing/").content.decode()
    stripe_customer.time_zone = "Pacific/Auckland"
    stripe_customer.save(update_fields=["time_zone"])
    page = billing_client.get("/billing/").content.decode()
    assert "Jan. 2, 2031" in page and "Jan. 1, 2031" not in page

    cancel_url = reverse("billing:subscription_cancel", args=[live_subscription.pk])
    site = SiteSettings.objects.get_or_create(pk=1)[0]
    site.self_cancel_enabled, site.self_cancel_instructions = False, "Write to help@example.com."
    site.save()
    page = billing_client.get("/billing/").content.decode()
    assert "Write to help@example.com." in page and cancel_url not in page
    site.self_cancel_instructions = "Call us on 0123."
    site.save()
    page = billing_client.get("/billing/").content.decode()
    assert "Call us on 0123." in page and "Write to help@example.com." not in page

    Subscription.objects.filter(pk=live_subscription.pk).update(
        cancel_at_period_end=True, cancel_requested_by=support_user
    )
    site.business_email = "first@example.com"
    site.save()
    assert "contact first@example.com" in billing_client.get("/billing/").content.decode()
    site.business_email = "second@example.com"
    site.save()
    page = billing_client.get("/billing/").content.decode()
    assert "contact second@example.com" in page and "first@example.com" not in page


def test_a_past_due_or_cancelled_subscription_does_not_offer_update_billing(billing_client, live_subscription):
    Subscription.objects.filter(pk=live_subscription.pk).update(status="past_due")
    page = billing_client.get("/billing/").content.decode()
    assert "Update billing" not in page and "Past due" in page
    Subscription.objects.filter(pk=live_subscription.pk).update(status="canceled")
    page = billing_client.get("/billing/").content.decode()
    assert "Cancelled" in page and "Update billing" not in page
    assert reverse("billing:subscription_cancel", args=[live_subscription.pk]) not in page


def test_cancel_confirm_page_then_cancel_then_undo(billing_client, live_subscription, gateway):
    url = reverse("billing:subscription_cancel", args=[live_subscription.pk])
    confirm = billing_client.get(url).content.decode()
    assert "You keep access until then" in confirm

    response = billing_client.post(url, follow=True)
    page = response.content.decode()
    assert "Your subscription will end on" in page
    assert "Ends on" in page and "Keep subscription" in page
    assert gateway.subscriptions[live_subscription.stripe_subscription_id].cancel_at_period_end

    response = billing_client.post(reverse("billing:subscription_keep", args=[live_subscription.pk]), follow=True)
    assert "Your subscription continues" in response.content.decode()
    assert not Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end


def test_when_self_cancel_is_off_the_creators_instructions_are_shown(billing_client, live_subscription, gateway):
    SiteSettings.objects.update_or_create(
        pk=1, defaults={"self_cancel_enabled": False, "self_cancel_instructions": "Write to help@example.com."}
    )
    page = billing_client.get("/billing/").content.decode()
    assert "Write to help@example.com." in page
    url = reverse("billing:subscription_cancel", args=[live_subscription.pk])
    assert url not in page
    response = billing_client.post(url, follow=True)
    assert "cannot be cancelled online" in response.content.decode()
    assert not gateway.subscriptions[live_subscription.stripe_subscription_id].cancel_at_period_end


def test_a_detached_processor_hides_billing_and_says_whom_to_contact(billing_client, live_subscription):
    SiteSettings.objects.update_or_create(
        pk=1, defaults={"processor_attached": False, "business_email": "billing@example.com"}
    )
    page = billing_client.get("/billing/").content.decode()
    assert "billing@example.com" in page and "Visa" not in page
    home = billing_client.get("/").content.decode()
    assert 'href="/billing/"' not in home
    assert billing_client.post(reverse("billing:card_setup")).status_code == 409


def test_another_customers_card_or_subscription_is_not_found(client, other_customer, live_subscription):
    client.force_login(other_customer.user)
    card = Card.objects.get()
    for url in [
        reverse("billing:subscription_cancel", args=[live_subscription.pk]),
        reverse("billing:subscription_keep", args=[live_subscription.pk]),
        reverse("billing:card_remove", args=[card.pk]),
        reverse("billing:card_default", args=[card.pk]),
    ]:
        assert client.post(url).status_code == 404
    assert not Subscription.objects.get().cancel_at_period_end
    assert Card.objects.count() == 1


def test_anonymous_visitors_are_sent_to_sign_in(client, db):
    for url in ["/billing/", "/billing/cards/new/"]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_card_setup_returns_a_client_secret_for_stripe_js(billing_client, gateway, stripe_customer):
    response = billing_client.post(reverse("billing:card_setup"))
    assert response.status_code == 200
    secret = response.json()["client_secret"]
    assert secret.startswith("seti_") and "_secret" in secret
    assert billing_client.get(reverse("billing:card_setup")).status_code == 405


def test_the_card_page_loads_stripe_js_from_the_setting(billing_client, settings):
    settings.STRIPE_JS_URL = "http://127.0.0.1:8420/js.stripe.com/v3/"
    page = billing_client.get(reverse("billing:card_new")).content.decode()
    assert '<script src="http://127.0.0.1:8420/js.stripe.com/v3/"></script>' in page
    assert 'name="card' not in page.replace('name="card-', "")  # no card-number field posts to us


def test_posting_a_confirmed_setup_saves_the_card(billing_client, gateway, stripe_customer):
    from billing.services import card_setup_start

    intent = card_setup_start(customer=stripe_customer)
    gateway.setup_intent_confirm(setup_intent_id=intent.id, payment_method_id="pm_new_card")
    response = billing_client.post(reverse("billing:card_new"), {"setup_intent": intent.id}, follow=True)
    assert "is now your default card" in response.content.decode()
    assert Card.objects.get(is_default=True).stripe_payment_method_id == "pm_new_card"


def test_a_decline_on_attach_shows_the_message_and_keeps_the_old_card(billing_client, gateway, stripe_customer):
    from billing.services import card_setup_start

    card_set_default(customer=stripe_customer, payment_method_id="pm_old", by=None)
    intent = card_setup_start(customer=stripe_customer)
    gateway.setup_intent_confirm(setup_intent_id=intent.id, payment_method_id="pm_card_declined")
    response = billing_client.post(reverse("billing:card_new"), {"setup_intent": intent.id})
    assert response.status_code == 400
    assert "Your card was declined." in response.content.decode()
    assert Card.objects.get(is_default=True).stripe_payment_method_id == "pm_old"


def test_a_refused_update_offers_the_hosted_page(billing_client, gateway, stripe_customer):
    from billing.services import card_setup_start

    intent = card_setup_start(customer=stripe_customer)
    gateway.setup_intent_confirm(setup_intent_id=intent.id, payment_method_id="pm_timeout")
    response = billing_client.post(reverse("billing:card_new"), {"setup_intent": intent.id})
    page = response.content.decode()
    assert "not answering right now" in page
    assert reverse("billing:hosted_update") in page
    response = billing_client.post(reverse("billing:hosted_update"))
    assert response.status_code == 302 and response["Location"].startswith("https://billing.example.com/")


def test_removing_a_spare_card(billing_client, gateway, stripe_customer):
    spare = card_set_default(customer=stripe_customer, payment_method_id="pm_spare", by=None)
    card_set_default(customer=stripe_customer, payment_method_id="pm_main", by=None)
    response = billing_client.post(reverse("billing:card_remove", args=[spare.pk]), follow=True)
    assert "was removed" in response.content.decode()
    assert list(Card.objects.values_list("stripe_payment_method_id", flat=True)) == ["pm_main"]


def test_the_home_dialog_offers_the_card_update_only_with_a_live_subscription(billing_client, live_subscription):
    dialog = billing_client.get("/settings/contact/", headers={"HX-Request": "true"}).content.decode()
    assert reverse("billing:card_new") in dialog
    Subscription.objects.filter(pk=live_subscription.pk).update(status="canceled")
    dialog = billing_client.get("/settings/contact/", headers={"HX-Request": "true"}).content.decode()
    assert reverse("billing:card_new") not in dialog


def test_with_the_processor_detached_no_billing_post_reaches_it(billing_client, live_subscription, gateway):
    from billing.services import subscription_cancel

    subscription_cancel(subscription=live_subscription, by=live_subscription.customer.user)
    spare = card_set_default(customer=live_subscription.customer, payment_method_id="pm_spare", by=None)
    card_set_default(customer=live_subscription.customer, payment_method_id="pm_main", by=None)
    SiteSettings.objects.update_or_create(pk=1, defaults={"processor_attached": False})
    before = list(gateway.calls)
    for url in [
        reverse("billing:subscription_keep", args=[live_subscription.pk]),
        reverse("billing:subscription_cancel", args=[live_subscription.pk]),
        reverse("billing:card_remove", args=[spare.pk]),
        reverse("billing:card_default", args=[spare.pk]),
        reverse("billing:hosted_update"),
        reverse("billing:card_setup"),
        reverse("billing:card_new"),
    ]:
        response = billing_client.post(url, {"setup_intent": "seti_x"})
        assert response.status_code == 409, url
    assert gateway.calls == before
    assert Subscription.objects.get(pk=live_subscription.pk).cancel_at_period_end


def test_the_card_form_says_card_details_did_not_arrive_in_the_customers_language(billing_client, stripe_customer):
    """The message is translated when shown, not when the module was imported (in whatever language then)."""
    stripe_customer.language = "de"
    stripe_customer.save(update_fields=["language"])

    response = billing_client.post("/billing/cards/new/", {"setup_intent": ""})

    assert "Ihre Kartendaten sind nicht angekommen." in response.content.decode()
