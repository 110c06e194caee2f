"""Reminders before a card is charged (billing.services.reminders): which subscriptions and cards are due,
each reminder queued and sent once however often the daily task runs, optional ones honouring the
customer's preference, and a run's queries independent of how many customers it covers."""

import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.services.reminders import reminders_queue
from billing.tasks import reminders_send
from console.emails import email_render
from portal.models import EmailKind, EmailStatus, OutboundEmail
from portal.services import site_settings_update
from tests.factories import CardFactory, CustomerFactory, OfferFactory, SubscriptionFactory
from tests.purchases.test_concurrency import run_concurrently

NOW = datetime(2026, 6, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


def yearly(**fields):
    defaults = {"interval": "year", "amount": 12000, "current_period_end": NOW + timedelta(days=20)}
    return SubscriptionFactory(**{**defaults, **fields})


def monthly(**fields):
    return SubscriptionFactory(**{"interval": "month", "current_period_end": NOW + timedelta(days=2), **fields})


def queued(kind=None) -> list[OutboundEmail]:
    emails = OutboundEmail.objects.order_by("pk")
    return list(emails.filter(kind=kind) if kind else emails)


def monthly_reminders_on():
    site_settings_update(data={"monthly_renewal_reminders_enabled": True})


# --- renewals ------------------------------------------------------------------------------------


def test_a_yearly_plan_gets_its_reminder_with_amount_date_and_plan_30_days_ahead_by_default(db):
    offer = OfferFactory(name="Studio yearly", kind="subscription", interval="year")
    subscription = yearly(offer=offer, currency="eur")
    yearly(current_period_end=NOW + timedelta(days=31))  # not yet

    counts = reminders_queue()

    [email] = queued()
    assert counts == {"renewal_reminder": 1, "trial_ending": 0, "card_expiring": 0}
    assert (email.customer_id, email.kind) == (subscription.customer_id, EmailKind.RENEWAL_REMINDER)
    assert email.key == f"renewal_reminder:{subscription.stripe_subscription_id}:2026-06-30"
    assert email.context == {
        "subscription_id": subscription.pk,
        "offer_name": "Studio yearly",
        "amount": 12000,
        "currency": "eur",
        "interval": "year",
        "interval_count": 1,
        "renews_at": "2026-06-30T09:00:00+00:00",
    }


def test_the_yearly_lead_time_is_the_creators_setting(db):
    site_settings_update(data={"renewal_reminder_days": 15})
    yearly(current_period_end=NOW + timedelta(days=16))
    due = yearly(current_period_end=NOW + timedelta(days=14))

    reminders_queue()

    assert [email.context["subscription_id"] for email in queued()] == [due.pk]


def test_monthly_plans_get_reminders_only_when_the_creator_turns_them_on(db):
    subscription = monthly()
    monthly(current_period_end=NOW + timedelta(days=4))  # outside the 3 days

    reminders_queue()
    assert queued() == []

    monthly_reminders_on()
    reminders_queue()

    [email] = queued()
    assert email.key == f"renewal_reminder:{subscription.stripe_subscription_id}:2026-06-12"


@pytest.mark.parametrize(
    "fields",
    [
        {"cancel_at_period_end": True},
        {"cancel_at": NOW + timedelta(days=1)},  # ends before it would renew
        {"paused": True},
        {"status": "canceled"},
        {"status": "past_due"},
        {"status": "incomplete"},
        {"current_period_end": NOW - timedelta(hours=1)},  # a stale mirror: the date has passed
    ],
    ids=["cancel-at-period-end", "cancel-at", "paused", "canceled", "past-due", "incomplete", "period-passed"],
)
def test_no_renewal_reminder_for_a_subscription_that_will_not_renew_now(db, fields):
    monthly_reminders_on()
    yearly(**fields)
    monthly(**fields)

    reminders_queue()

    assert queued() == []


def test_a_subscription_set_to_end_after_its_renewal_still_gets_the_reminder(db):
    yearly(cancel_at=NOW + timedelta(days=200))

    reminders_queue()

    assert len(queued(EmailKind.RENEWAL_REMINDER)) == 1


def test_payment_plan_instalments_are_not_renewals(db):
    monthly_reminders_on()
    monthly(offer=OfferFactory(kind="payment_plan", interval="month", installments=3))

    reminders_queue()

    assert queued() == []


def test_nothing_is_reminded_while_the_payment_processor_is_detached(db):
    site_settings_update(data={"processor_attached": False})
    yearly()
    SubscriptionFactory(customer=CardFactory(exp_month=7, exp_year=2026).customer)

    assert reminders_queue() == {"renewal_reminder": 0, "trial_ending": 0, "card_expiring": 0}
    assert queued() == []


def test_a_change_scheduled_for_the_renewal_is_what_the_reminder_says_will_be_charged(db):
    """A yearly plan moving to a cheaper monthly one at its renewal: the notice states the charge that will
    really be made (the new plan's price and term), and still counts as the yearly plan's notice."""
    studio = OfferFactory(name="Studio yearly", kind="subscription", interval="year", price_amount=12000)
    lite = OfferFactory(name="Studio lite", kind="subscription", interval="month", price_amount=900, currency="eur")
    ends = NOW + timedelta(days=20)
    subscription = yearly(
        offer=studio,
        scheduled_offer=lite,
        scheduled_price_id="price_lite",
        scheduled_change_at=ends,
    )

    reminders_queue()

    [email] = queued()
    assert email.context == {
        "subscription_id": subscription.pk,
        "offer_name": "Studio yearly",
        "amount": 900,
        "currency": "eur",
        "interval": "year",
        "interval_count": 1,
        "changes_to": "Studio lite",
        "charge_interval": "month",
        "renews_at": "2026-06-30T09:00:00+00:00",
    }
    rendered = email_render(customer=subscription.customer, kind=EmailKind.RENEWAL_REMINDER, context=email.context)
    for body in (rendered.text, rendered.html):
        assert "€9.00" in body and "for the next month" in body
        assert "£120.00" not in body and "€120.00" not in body
    assert "On that date it changes to Studio lite." in rendered.text
    assert "On that date it changes to <strong>Studio lite</strong>." in rendered.html
    assert "List-Unsubscribe" not in rendered.headers  # the yearly plan's notice, as before


def test_a_change_scheduled_after_this_renewal_leaves_the_reminder_at_the_current_plan(db):
    lite = OfferFactory(name="Studio lite", kind="subscription", interval="month", price_amount=900)
    yearly(scheduled_offer=lite, scheduled_price_id="price_lite", scheduled_change_at=NOW + timedelta(days=385))

    reminders_queue()

    [email] = queued()
    assert email.context["amount"] == 12000
    assert "changes_to" not in email.context


def test_a_change_to_a_price_the_portal_does_not_sell_sends_the_customer_to_the_billing_page(db):
    """A schedule made in Stripe's dashboard with a price the portal has no offer for: the reminder does
    not guess an amount."""
    subscription = yearly(scheduled_price_id="price_from_the_dashboard", scheduled_change_at=None)

    reminders_queue()

    [email] = queued()
    assert email.context["amount"] is None and email.context["changes_to"] == ""
    for kind in (EmailKind.RENEWAL_REMINDER, EmailKind.TRIAL_ENDING):
        rendered = email_render(customer=subscription.customer, kind=kind, context=email.context)
        for body in (rendered.text, rendered.html):
            assert "on the plan it is changing to. Its price is shown on your billing page." in body
            assert "£120.00" not in body and "will then charge" not in body and "we will charge" not in body


def test_a_monthly_plan_becoming_a_yearly_one_at_the_renewal_gets_the_yearly_notice(db):
    """The renewal charges for a year: the notice the law asks for, whatever the monthly reminders setting."""
    yearly_offer = OfferFactory(name="Studio yearly", kind="subscription", interval="year", price_amount=12000)
    subscription = monthly(
        current_period_end=NOW + timedelta(days=20),
        scheduled_offer=yearly_offer,
        scheduled_price_id="price_yearly",
        scheduled_change_at=NOW + timedelta(days=20),
    )
    monthly(current_period_end=NOW + timedelta(days=20))  # monthly reminders are off: none for this one

    reminders_queue()

    [email] = queued()
    assert email.key.startswith(f"renewal_reminder:{subscription.stripe_subscription_id}:")
    rendered = email_render(customer=subscription.customer, kind=EmailKind.RENEWAL_REMINDER, context=email.context)
    assert "£120.00 for the next year" in rendered.text
    assert "List-Unsubscribe" not in rendered.headers


# --- trials --------------------------------------------------------------------------------------


def test_a_trial_ending_within_three_days_gets_one_reminder_and_no_renewal_reminder(db):
    monthly_reminders_on()
    trial = monthly(status="trialing", current_period_end=NOW + timedelta(days=3))
    monthly(status="trialing", current_period_end=NOW + timedelta(days=3, minutes=1))  # not yet

    reminders_queue()

    [email] = queued()
    assert email.kind == EmailKind.TRIAL_ENDING
    assert email.key == f"trial_ending:{trial.stripe_subscription_id}:2026-06-13"
    assert email.context["trial_ends_at"] == "2026-06-13T09:00:00+00:00"


def test_a_trial_set_to_end_gets_no_reminder(db):
    monthly(status="trialing", cancel_at_period_end=True)

    reminders_queue()

    assert queued() == []


# --- cards ---------------------------------------------------------------------------------------


def test_the_default_card_expiring_this_month_or_next_is_reminded_when_a_subscription_charges_it(db):
    this_month = CardFactory(exp_month=6, exp_year=2026)
    SubscriptionFactory(customer=this_month.customer)
    next_month = CardFactory(exp_month=7, exp_year=2026)
    SubscriptionFactory(customer=next_month.customer, status="trialing")
    later = CardFactory(exp_month=8, exp_year=2026)
    SubscriptionFactory(customer=later.customer)

    reminders_queue()

    assert [email.key for email in queued()] == [
        f"card_expiring:{this_month.stripe_payment_method_id}:2026-06",
        f"card_expiring:{next_month.stripe_payment_method_id}:2026-07",
    ]
    assert queued()[0].context == {"brand": "visa", "last4": "4242", "exp_month": 6, "exp_year": 2026}


def test_a_card_is_reminded_only_when_it_is_the_one_a_live_subscription_charges(db):
    customer = CustomerFactory()
    default = CardFactory(customer=customer, exp_month=7, exp_year=2026)
    own = CardFactory(customer=customer, exp_month=7, exp_year=2026, is_default=False)
    CardFactory(customer=customer, exp_month=7, exp_year=2026, is_default=False)  # pays nothing
    SubscriptionFactory(customer=customer, default_payment_method_id=own.stripe_payment_method_id)
    # Cards whose subscriptions no longer charge.
    for fields in ({"status": "canceled"}, {"paused": True}, {"cancel_at_period_end": True}):
        SubscriptionFactory(customer=CardFactory(exp_month=7, exp_year=2026).customer, **fields)
    CardFactory(exp_month=7, exp_year=2026)  # no subscription at all

    reminders_queue()

    assert [email.key for email in queued()] == [f"card_expiring:{own.stripe_payment_method_id}:2026-07"]
    assert default.stripe_payment_method_id not in queued()[0].key


# --- once only -----------------------------------------------------------------------------------


def test_rerunning_on_the_same_or_a_later_day_queues_nothing_more(db, time_machine):
    monthly_reminders_on()
    yearly()
    monthly()
    monthly(status="trialing")
    SubscriptionFactory(customer=CardFactory(exp_month=7, exp_year=2026).customer)
    assert sum(reminders_queue().values()) == 4

    assert sum(reminders_queue().values()) == 0
    time_machine.move_to(NOW + timedelta(days=1), tick=False)
    assert sum(reminders_queue().values()) == 0
    assert len(queued()) == 4


def test_the_next_period_gets_its_own_reminder(db, time_machine):
    subscription = yearly()
    reminders_queue()

    subscription.current_period_end += timedelta(days=365)
    subscription.save()
    time_machine.move_to(NOW + timedelta(days=365), tick=False)
    reminders_queue()

    assert [email.context["renews_at"] for email in queued()] == [
        "2026-06-30T09:00:00+00:00",
        "2027-06-30T09:00:00+00:00",
    ]


def test_the_daily_task_sends_each_reminder_once_however_often_it_runs(
    db, django_capture_on_commit_callbacks, run_tasks
):
    monthly_reminders_on()
    yearly()
    monthly()
    monthly(status="trialing")
    SubscriptionFactory(customer=CardFactory(exp_month=7, exp_year=2026).customer)

    for _run in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            reminders_send.enqueue()
            reminders_send.enqueue()  # an overlapping run
        with django_capture_on_commit_callbacks(execute=True):
            run_tasks()  # the reminder runs, which queue the emails
        run_tasks()  # the emails

    assert len(mail.outbox) == 4
    assert {email.status for email in queued()} == {EmailStatus.SENT}


def test_the_command_hands_the_run_to_the_worker_or_runs_it_with_now(db, capsys, run_tasks):
    yearly()

    call_command("send_reminders")
    assert "queued for the task worker" in capsys.readouterr().out
    assert queued() == []
    assert run_tasks() == 1
    assert len(queued()) == 1

    call_command("send_reminders", "--now")
    assert "Reminders queued: 0 renewal_reminder, 0 trial_ending, 0 card_expiring." in capsys.readouterr().out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite serialises writers: no race to run")
@pytest.mark.django_db(transaction=True)
def test_two_runs_racing_to_the_same_reminders_queue_and_send_each_once(run_tasks):
    """The second run checks for the keys while the first has inserted them but not committed: its own
    insert waits on the first, fails on the unique key, and its one-by-one retry queues nothing."""
    monthly_reminders_on()
    for _ in range(3):
        yearly()
        monthly()
    inserted = threading.Event()
    counts = {}

    def run(index):
        if index == 0:
            with transaction.atomic():
                counts[index] = reminders_queue()
                inserted.set()
                _wait_for_a_blocked_insert()
        else:
            assert inserted.wait(timeout=30)
            counts[index] = reminders_queue()

    errors = run_concurrently(run, threads=2)

    assert errors == []
    assert counts == {0: {"renewal_reminder": 6, "trial_ending": 0, "card_expiring": 0}, 1: dict.fromkeys(counts[0], 0)}
    assert len(queued()) == 6
    assert run_tasks() == 6  # one sending task per email: the losing run announced none
    assert len(mail.outbox) == 6


def _wait_for_a_blocked_insert() -> None:
    deadline = time.monotonic() + 30
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")  # live, unlike pg_stat_activity
            if cursor.fetchone()[0]:
                return
            threading.Event().wait(0.01)  # poll the server, not a guess at how long the other run takes
    raise AssertionError("the second run never waited on the first one's rows")


# --- preferences ---------------------------------------------------------------------------------


def test_optional_reminders_are_skipped_for_a_customer_who_turned_them_off(
    db, django_capture_on_commit_callbacks, run_tasks
):
    monthly_reminders_on()
    customer = CustomerFactory(notify_renewal_reminders=False, notify_card_expiry_reminders=False)
    CardFactory(customer=customer, exp_month=7, exp_year=2026)
    monthly(customer=customer)
    yearly(customer=customer)
    monthly(customer=customer, status="trialing")

    with django_capture_on_commit_callbacks(execute=True):
        reminders_queue()
    run_tasks()

    statuses = {email.kind + ":" + email.context.get("interval", ""): email.status for email in queued()}
    assert statuses == {
        "renewal_reminder:month": EmailStatus.SKIPPED,
        "card_expiring:": EmailStatus.SKIPPED,
        "renewal_reminder:year": EmailStatus.SENT,  # the notice the law asks for
        "trial_ending:month": EmailStatus.SENT,
    }
    assert len(mail.outbox) == 2


# --- cost ----------------------------------------------------------------------------------------


def _due_customers(count: int) -> None:
    """Customers due one reminder of each kind (a renewal each for a yearly and a monthly plan)."""
    offer = OfferFactory(kind="subscription", interval="month")
    for _ in range(count):
        customer = CustomerFactory(user__password=None)
        CardFactory(customer=customer, exp_month=7, exp_year=2026)
        yearly(customer=customer, offer=OfferFactory(kind="subscription", interval="year"))
        monthly(customer=customer, offer=offer)
        monthly(customer=customer, offer=offer, status="trialing")
        SubscriptionFactory(customer=customer, current_period_end=NOW + timedelta(days=20))  # not due


def test_a_run_costs_the_same_queries_for_3_or_40_customers_due(db):
    monthly_reminders_on()
    reminders_queue()  # the site settings cached, as on every run but the first after a change
    _due_customers(3)
    with CaptureQueriesContext(connection) as few:
        assert sum(reminders_queue().values()) == 3 * 4
    _due_customers(40)
    with CaptureQueriesContext(connection) as many:
        assert sum(reminders_queue().values()) == 40 * 4

    assert len(many.captured_queries) == len(few.captured_queries)
    with CaptureQueriesContext(connection) as rerun:
        assert sum(reminders_queue().values()) == 0
    assert len(rerun.captured_queries) <= len(few.captured_queries)


def test_a_run_reads_in_batches_of_the_given_size(db):
    yearly_count = 7
    for _ in range(yearly_count):
        yearly()

    with CaptureQueriesContext(connection) as ctx:
        reminders_queue(batch_size=3)

    assert len(queued()) == yearly_count
    inserts = [q["sql"] for q in ctx.captured_queries if q["sql"].startswith('INSERT INTO "portal_outboundemail"')]
    assert len(inserts) == 3  # 3 + 3 + 1


# --- the emails ----------------------------------------------------------------------------------


def reminder_context(subscription, **changes) -> dict:
    return {
        "subscription_id": subscription.pk,
        "offer_name": "Studio",
        "amount": 12000,
        "currency": "gbp",
        "interval": "year",
        "interval_count": 1,
        "renews_at": "2026-06-30T22:30:00+00:00",
        "trial_ends_at": "2026-06-30T22:30:00+00:00",
        **changes,
    }


CARD = {"brand": "visa", "last4": "4242", "exp_month": 7, "exp_year": 2026}


@pytest.fixture
def berlin_customer(db):
    return CustomerFactory(full_name="Ada Lovelace", time_zone="Europe/Berlin")


def test_the_yearly_renewal_reminder_shows_plan_amount_date_and_the_ways_to_manage_or_cancel(berlin_customer):
    subscription = yearly(customer=berlin_customer)

    rendered = email_render(
        customer=berlin_customer, kind=EmailKind.RENEWAL_REMINDER, context=reminder_context(subscription)
    )

    assert rendered.subject == "Your Studio subscription renews on July 1, 2026"  # in Berlin, it is July 1st
    for body in (rendered.text, rendered.html):
        assert "renews automatically on" in body and "July 1, 2026" in body
        assert "£120.00" in body and "for the next year" in body
        assert "http://127.0.0.1:8000/hub/" in body and "?next=%2Fbilling%2F" in body
        assert f"http://127.0.0.1:8000/billing/subscriptions/{subscription.pk}/cancel/" in body
    # The notice the law asks for: no preference turns it off, so it offers no unsubscribing.
    assert "List-Unsubscribe" not in rendered.headers
    assert "Unsubscribe" not in rendered.text


def test_a_monthly_renewal_reminder_can_be_unsubscribed_from(berlin_customer):
    subscription = monthly(customer=berlin_customer)
    context = reminder_context(subscription, interval="month", amount=1200)

    rendered = email_render(customer=berlin_customer, kind=EmailKind.RENEWAL_REMINDER, context=context)

    assert "£12.00 for the next month" in rendered.text
    assert rendered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "because renewal reminders for monthly plans are on" in rendered.text
    [url] = re.findall(r"http://127\.0\.0\.1:8000(/email/unsubscribe/[^\s]+)", rendered.text)
    assert url in rendered.headers["List-Unsubscribe"]


def test_when_customers_may_not_cancel_online_the_reminder_gives_the_creators_instructions(berlin_customer):
    site_settings_update(data={"self_cancel_enabled": False, "self_cancel_instructions": "Write to us to cancel."})
    subscription = yearly(customer=berlin_customer)

    rendered = email_render(
        customer=berlin_customer, kind=EmailKind.RENEWAL_REMINDER, context=reminder_context(subscription)
    )

    for body in (rendered.text, rendered.html):
        assert "Write to us to cancel." in body
        assert "/cancel/" not in body


def test_the_trial_reminder_says_when_the_first_charge_comes_and_how_much(berlin_customer):
    subscription = monthly(customer=berlin_customer, status="trialing")
    context = reminder_context(subscription, interval="month", amount=1500, offer_name="")

    rendered = email_render(customer=berlin_customer, kind=EmailKind.TRIAL_ENDING, context=context)

    assert rendered.subject == "Your Customer Portal trial ends on July 1, 2026"  # no offer: the business's name
    for body in (rendered.text, rendered.html):
        assert "trial ends on" in body and "July 1, 2026" in body
        assert "£15.00" in body and "again every month until you cancel" in body
        assert f"/billing/subscriptions/{subscription.pk}/cancel/" in body
    assert "List-Unsubscribe" not in rendered.headers


def test_the_card_reminder_names_the_card_and_month_and_links_to_the_card_form(berlin_customer):
    rendered = email_render(customer=berlin_customer, kind=EmailKind.CARD_EXPIRING, context=CARD)

    assert rendered.subject == "Your Visa card ending in 4242 expires soon"
    assert "ending in 4242 expires at the end of July 2026." in rendered.text
    assert "expires at the end of <strong>July 2026</strong>." in rendered.html
    for body in (rendered.text, rendered.html):
        assert "?next=%2Fbilling%2Fcards%2Fnew%2F" in body
    assert "because card expiry reminders are on" in rendered.text
    assert rendered.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_the_reminders_read_in_german_with_sie(db):
    customer = CustomerFactory(full_name="Ada Lovelace", time_zone="Europe/Berlin", language="de")
    subscription = yearly(customer=customer)

    renewal = email_render(customer=customer, kind=EmailKind.RENEWAL_REMINDER, context=reminder_context(subscription))
    trial = email_render(
        customer=customer, kind=EmailKind.TRIAL_ENDING, context=reminder_context(subscription, interval="month")
    )
    card = email_render(customer=customer, kind=EmailKind.CARD_EXPIRING, context=CARD)
    changing = email_render(
        customer=customer,
        kind=EmailKind.RENEWAL_REMINDER,
        context=reminder_context(subscription, changes_to="Studio lite", charge_interval="month", amount=900),
    )
    unknown = email_render(
        customer=customer, kind=EmailKind.RENEWAL_REMINDER, context=reminder_context(subscription, amount=None)
    )

    unnamed = email_render(
        customer=customer,
        kind=EmailKind.RENEWAL_REMINDER,
        context=reminder_context(subscription, changes_to="", charge_interval="month", amount=900),
    )
    assert "An diesem Tag wechselt es zu einem anderen Tarif." in unnamed.text
    assert "Wir buchen dann 9,00\N{NO-BREAK SPACE}£ für den nächsten Monat" in changing.text
    assert "An diesem Tag wechselt es zu Studio lite." in changing.text
    assert "im Tarif, zu dem es wechselt. Dessen Preis sehen Sie auf Ihrer Abrechnungsseite." in unknown.text
    assert renewal.subject == "Ihr Abonnement Studio verlängert sich am 1. Juli 2026"
    assert "Wir buchen dann 120,00\N{NO-BREAK SPACE}£ für das nächste Jahr von der hinterlegten Karte" in renewal.text
    assert "Abonnement verwalten (dieser Link meldet Sie an):" in renewal.text
    assert "Zum Kündigen öffnen Sie" in renewal.html
    assert trial.subject == "Ihr Testzeitraum für Studio endet am 1. Juli 2026"
    assert "und danach jeden Monat erneut, bis Sie kündigen" in trial.text
    assert card.subject == "Ihre Visa-Karte mit der Endung 4242 läuft bald ab"
    assert "läuft Ende Juli 2026 ab" in card.text
    assert "„Erinnerungen an ablaufende Karten“ eingeschaltet" in card.text
    for rendered in (renewal, trial, card, changing, unknown):
        text = rendered.text.replace("/cancel/", "")  # "cancel" may only appear in the link
        for english in ("renews", "trial", "expires", "Manage your", "cancel"):
            assert english not in text, english


def test_the_one_click_link_in_a_card_reminder_turns_only_card_reminders_off(berlin_customer, client):
    rendered = email_render(customer=berlin_customer, kind=EmailKind.CARD_EXPIRING, context=CARD)
    url = rendered.headers["List-Unsubscribe"].strip("<>")

    # What a mail provider sends (RFC 8058): a POST with this body, no cookies, no CSRF token.
    response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    assert "We will not email you card expiry reminders any more." in response.content.decode()
    berlin_customer.refresh_from_db()
    assert berlin_customer.notify_card_expiry_reminders is False
    assert (berlin_customer.notify_renewal_reminders, berlin_customer.notify_billing_notices) == (True, True)
