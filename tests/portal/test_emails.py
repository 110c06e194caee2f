"""Customer emails: every kind rendered with its facts, queued on commit and sent once by the worker,
preferences and one-click unsubscribe for billing notices, retries when the mail server fails."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import Customer
from console.emails import EMAIL_MAX_ATTEMPTS, email_deliver, email_render
from portal.models import EmailKind, EmailStatus, OutboundEmail
from portal.outbox import email_queue
from portal.services import site_settings_update
from purchases.services import purchase_record
from tests.factories import CustomerFactory, OfferFactory, RecordedPurchaseFactory

BUSINESS = "Clay & Code Studio"

# Context the billing app passes for each kind, and facts each rendering must show.
BILLING_KINDS = {
    EmailKind.CARD_UPDATED: (
        {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2031},
        ["Visa", "4242", "04/31", "http://127.0.0.1:8000/billing/"],
    ),
    EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED: (
        {"offer_name": "Studio membership", "ends_at": "2031-03-01T23:30:00+00:00"},
        ["Studio membership", "March 2, 2031"],  # in the customer's time zone (Tokyo)
    ),
    EmailKind.SUBSCRIPTION_CANCELED: ({"offer_name": "Studio membership"}, ["Studio membership", "cancelled"]),
    EmailKind.SUBSCRIPTION_PAUSED: (
        {"offer_name": "Studio membership", "resumes_at": "2031-05-10T12:00:00+00:00"},
        ["Studio membership", "paused", "May 10, 2031"],
    ),
    EmailKind.SUBSCRIPTION_RESUMED: ({"offer_name": "Studio membership"}, ["Studio membership", "active again"]),
    EmailKind.RETENTION_OFFER_APPLIED: (
        {"offer_name": "Studio membership", "offer_text": "Half price for 3 months."},
        ["Studio membership", "Half price for 3 months.", "http://127.0.0.1:8000/billing/"],
    ),
}
ALWAYS_KINDS = {
    EmailKind.PAYMENT_FAILED: (
        {"offer_name": "Studio membership", "amount": 1200, "currency": "gbp"},
        ["Studio membership", "£12.00", "http://127.0.0.1:8000/hub/", "?next=%2Fbilling%2F"],
    ),
    EmailKind.REFUND_ISSUED: (
        {"offer_name": "Glaze Recipes ebook", "amount": 400, "currency": "gbp", "receipt_number": "R-000042"},
        ["Glaze Recipes ebook", "£4.00", "R-000042", "http://127.0.0.1:8000/purchases/receipts/R-000042/"],
    ),
    EmailKind.REFUND_FAILED: (
        {"offer_name": "Glaze Recipes ebook", "amount": 400, "currency": "gbp", "receipt_number": "R-000042"},
        ["Glaze Recipes ebook", "£4.00", "did not go through", "help@example.com"],
    ),
    EmailKind.CARD_UPDATE_LINK: ({}, ["http://127.0.0.1:8000/hub/", "?next=%2Fbilling%2Fcards%2Fnew%2F"]),
    EmailKind.WELCOME: ({}, ["http://127.0.0.1:8000/hub/", "/accounts/login/code/", "/settings/password/"]),
    EmailKind.HUB_LINK: ({}, ["http://127.0.0.1:8000/hub/"]),
    EmailKind.PLAN_CHANGED: (
        {
            "offer_name": "Membership yearly",
            "previous_offer_name": "Membership",
            "amount": 15000,
            "currency": "gbp",
            "interval": "year",
            "next_renewal": "2027-05-10T09:00:00+00:00",
        },
        [
            "Membership yearly",
            "from Membership",
            "£150.00 a year",
            "May 10, 2027",
            "http://127.0.0.1:8000/billing/",
        ],
    ),
    EmailKind.PLAN_CHANGE_SCHEDULED: (
        {
            "offer_name": "Membership lite",
            "previous_offer_name": "Membership",
            "amount": 900,
            "currency": "gbp",
            "interval": "month",
            "changes_at": "2027-05-10T09:00:00+00:00",
        },
        ["Membership lite", "from Membership", "£9.00 a month", "May 10, 2027", "Nothing is charged now"],
    ),
}


@pytest.fixture(autouse=True)
def _business(db):
    site_settings_update(data={"business_name": BUSINESS, "business_email": "help@example.com"})


@pytest.fixture
def tokyo_customer(db):
    return CustomerFactory(full_name="Kiri Tanaka", time_zone="Asia/Tokyo")


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def link_in(text: str, path: str) -> str:
    match = re.search(rf"https?://[^/\s]+({re.escape(path)}[^\s\"<]*)", text)
    assert match, text
    return match.group(1)


def queue_and_send(django_capture_on_commit_callbacks, run_tasks, **kwargs):
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(**kwargs)
    return run_tasks()


# --- rendering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [*BILLING_KINDS, *ALWAYS_KINDS])
def test_every_kind_renders_its_facts_in_subject_text_and_html(tokyo_customer, kind):
    context, facts = {**BILLING_KINDS, **ALWAYS_KINDS}[kind]

    rendered = email_render(customer=tokyo_customer, kind=kind, context=context)

    assert rendered.subject and "\n" not in rendered.subject
    for fact in facts:
        assert fact in rendered.text, (fact, rendered.text)
        assert fact in rendered.html, (fact, rendered.html)
    assert "Hello Kiri Tanaka," in rendered.text
    assert BUSINESS in rendered.text  # plain text is not HTML-escaped
    assert "Clay &amp; Code Studio" in rendered.html
    assert "&amp;amp;" not in rendered.html
    assert rendered.html.lstrip().startswith("<!DOCTYPE html>")
    assert "{{" not in rendered.text + rendered.html and "{%" not in rendered.text + rendered.html


def test_subjects_name_the_event(tokyo_customer):
    subjects = {
        kind: email_render(customer=tokyo_customer, kind=kind, context=context).subject
        for kind, (context, _facts) in {**BILLING_KINDS, **ALWAYS_KINDS}.items()
    }

    assert subjects == {
        EmailKind.CARD_UPDATED: "Your card was updated",
        EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED: "Your Studio membership subscription ends on March 2, 2031",
        EmailKind.SUBSCRIPTION_CANCELED: "Your Studio membership subscription has ended",
        EmailKind.SUBSCRIPTION_PAUSED: "Your Studio membership subscription is paused",
        EmailKind.SUBSCRIPTION_RESUMED: "Your Studio membership subscription has resumed",
        EmailKind.RETENTION_OFFER_APPLIED: "Your offer on Studio membership is applied",
        EmailKind.PAYMENT_FAILED: "Your payment for Studio membership did not go through",
        EmailKind.REFUND_ISSUED: "Your refund of £4.00 for Glaze Recipes ebook",
        EmailKind.REFUND_FAILED: "Your refund of £4.00 for Glaze Recipes ebook did not go through",
        EmailKind.CARD_UPDATE_LINK: "Update the card you pay Clay & Code Studio with",
        EmailKind.WELCOME: "Welcome to Clay & Code Studio",
        EmailKind.HUB_LINK: "Your sign-in link for Clay & Code Studio",
        EmailKind.PLAN_CHANGED: "Your plan is now Membership yearly",
        EmailKind.PLAN_CHANGE_SCHEDULED: "Your plan changes to Membership lite on May 10, 2027",
    }


def test_the_receipt_email_shows_the_receipt_and_a_hub_link(tokyo_customer):
    purchase = RecordedPurchaseFactory(customer=tokyo_customer, offer=OfferFactory(name="Pottery Basics course"))
    receipt = purchase.receipts.get()

    rendered = email_render(customer=tokyo_customer, kind=EmailKind.RECEIPT, context={"receipt_number": receipt.number})

    assert rendered.subject == f"Your receipt {receipt.number} from {BUSINESS}"
    for body in (rendered.text, rendered.html):
        assert "Pottery Basics course" in body
        assert "£49.00" in body
        assert f"http://127.0.0.1:8000/purchases/receipts/{receipt.number}/" in body
        assert "Manage your billing details and view" in body
        assert link_in(body, "/hub/").startswith("/hub/")
    assert "works for 7 days" in rendered.text


def test_the_layout_shows_the_logo_when_the_business_has_one(tokyo_customer):
    site = site_settings_update(data={})
    site.logo.save("logo.png", ContentFile(b"\x89PNG\r\n\x1a\n"), save=True)

    rendered = email_render(customer=tokyo_customer, kind=EmailKind.HUB_LINK)

    assert f'<img src="http://127.0.0.1:8000/media/{site.logo.name}" alt="Clay &amp; Code Studio"' in rendered.html


def test_without_a_name_the_greeting_is_plain(db):
    customer = CustomerFactory(full_name="")

    rendered = email_render(customer=customer, kind=EmailKind.HUB_LINK)

    assert rendered.text.startswith("Hello,\n")


def test_only_billing_notices_carry_one_click_unsubscribe_headers(tokyo_customer):
    for kind, (context, _facts) in BILLING_KINDS.items():
        headers = email_render(customer=tokyo_customer, kind=kind, context=context).headers
        assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click", kind
        assert re.fullmatch(r"<http://127\.0\.0\.1:8000/email/unsubscribe/[^>\s]+/>", headers["List-Unsubscribe"])
    for kind, (context, _facts) in ALWAYS_KINDS.items():
        headers = email_render(customer=tokyo_customer, kind=kind, context=context).headers
        assert "List-Unsubscribe" not in headers, kind
        assert headers["Auto-Submitted"] == "auto-generated"


def test_billing_notices_say_how_to_unsubscribe_in_their_footer(tokyo_customer):
    context, _facts = BILLING_KINDS[EmailKind.CARD_UPDATED]

    rendered = email_render(customer=tokyo_customer, kind=EmailKind.CARD_UPDATED, context=context)

    url = rendered.headers["List-Unsubscribe"].strip("<>")
    assert f"Unsubscribe: {url}" in rendered.text
    assert f'href="{url}"' in rendered.html
    assert "because billing notices are on" in rendered.text


def test_queueing_checks_the_kind_and_its_context(customer):
    with pytest.raises(ValueError, match="Unknown email kind"):
        email_queue(customer=customer, kind="newsletter", key="x:1")
    with pytest.raises(ValueError, match="needs context keys"):
        email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="x:2", context={"offer_name": "A"})
    assert not OutboundEmail.objects.exists()


# --- queued on commit, sent once -----------------------------------------------------------------


def test_a_recorded_purchase_emails_its_receipt_after_commit(customer, django_capture_on_commit_callbacks, run_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        purchase = purchase_record(customer=customer, offer=OfferFactory())
        receipt = purchase.receipts.get()
        assert not DBTaskResult.objects.exists()  # nothing is enqueued before the transaction commits
    assert OutboundEmail.objects.get().status == EmailStatus.QUEUED
    assert DBTaskResult.objects.count() == 1
    assert mail.outbox == []  # queued, not sent by the request

    assert run_tasks() == 1

    [message] = mail.outbox
    assert message.to == [customer.user.email]
    assert message.subject == f"Your receipt {receipt.number} from {BUSINESS}"
    assert message.reply_to == ["help@example.com"]
    assert "/hub/" in message.body and "/hub/" in html_of(message)
    email = OutboundEmail.objects.get()
    assert (email.key, email.kind, email.status, email.to) == (
        f"receipt:{receipt.number}",
        EmailKind.RECEIPT,
        EmailStatus.SENT,
        customer.user.email,
    )
    assert email.sent_at is not None


def test_a_rolled_back_purchase_sends_nothing(customer, django_capture_on_commit_callbacks, run_tasks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        with transaction.atomic():
            purchase_record(customer=customer, offer=OfferFactory())
            raise RuntimeError("the webhook failed after recording")

    assert run_tasks() == 0
    assert not OutboundEmail.objects.exists()
    assert mail.outbox == []


def test_a_corrected_receipt_copy_is_not_emailed(customer, django_capture_on_commit_callbacks, run_tasks):
    from purchases.services import receipt_issue_correction

    site_settings_update(data={"receipt_mode": "frozen"})
    with django_capture_on_commit_callbacks(execute=True):
        receipt = purchase_record(customer=customer, offer=OfferFactory()).receipts.get()
    Customer.objects.filter(pk=customer.pk).update(full_name="New Name")
    customer.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        receipt_issue_correction(receipt=receipt)

    run_tasks()

    assert [m.subject for m in mail.outbox] == [f"Your receipt {receipt.number} from {BUSINESS}"]


def test_the_same_event_twice_sends_one_email(customer, django_capture_on_commit_callbacks, run_tasks):
    context = {"offer_name": "Studio membership", "amount": 1200, "currency": "gbp"}
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="payment_failed:in_1", context=context)
        email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="payment_failed:in_1", context=context)
    with django_capture_on_commit_callbacks(execute=True):  # a webhook retried later
        email_queue(customer=customer, kind=EmailKind.PAYMENT_FAILED, key="payment_failed:in_1", context=context)

    assert run_tasks() == 1
    assert len(mail.outbox) == 1
    assert OutboundEmail.objects.count() == 1


def test_a_second_delivery_of_a_sent_email_sends_nothing(customer, django_capture_on_commit_callbacks, run_tasks):
    queue_and_send(django_capture_on_commit_callbacks, run_tasks, customer=customer, kind="hub_link", key="k:1")
    email = OutboundEmail.objects.get()

    assert email_deliver(email_id=email.pk) == EmailStatus.SENT

    assert len(mail.outbox) == 1


# --- preferences ---------------------------------------------------------------------------------


def test_billing_notices_are_not_sent_to_a_customer_who_turned_them_off(
    customer, django_capture_on_commit_callbacks, run_tasks
):
    Customer.objects.filter(pk=customer.pk).update(notify_billing_notices=False)
    context, _facts = BILLING_KINDS[EmailKind.CARD_UPDATED]
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(customer=customer, kind=EmailKind.CARD_UPDATED, key="card_updated:pm_1", context=context)
        email_queue(
            customer=customer,
            kind=EmailKind.PAYMENT_FAILED,
            key="payment_failed:in_1",
            context={"offer_name": "Studio membership", "amount": 1200, "currency": "gbp"},
        )
        receipt = purchase_record(customer=customer, offer=OfferFactory()).receipts.get()

    assert run_tasks() == 3

    assert sorted(m.subject for m in mail.outbox) == [
        "Your payment for Studio membership did not go through",
        f"Your receipt {receipt.number} from {BUSINESS}",
    ]
    assert OutboundEmail.objects.get(kind=EmailKind.CARD_UPDATED).status == EmailStatus.SKIPPED


def test_the_preference_is_read_when_sending_not_when_queueing(customer, django_capture_on_commit_callbacks, run_tasks):
    context, _facts = BILLING_KINDS[EmailKind.SUBSCRIPTION_CANCELED]
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(customer=customer, kind=EmailKind.SUBSCRIPTION_CANCELED, key="sub:1", context=context)
    Customer.objects.filter(pk=customer.pk).update(notify_billing_notices=False)  # unsubscribed meanwhile

    run_tasks()

    assert mail.outbox == []


def test_the_one_click_header_turns_billing_notices_off(
    client, customer, django_capture_on_commit_callbacks, run_tasks
):
    context, _facts = BILLING_KINDS[EmailKind.SUBSCRIPTION_RESUMED]
    queue_and_send(
        django_capture_on_commit_callbacks,
        run_tasks,
        customer=customer,
        kind=EmailKind.SUBSCRIPTION_RESUMED,
        key="sub:1",
        context=context,
    )
    [message] = mail.outbox
    url = message.extra_headers["List-Unsubscribe"].strip("<>")
    assert message.message()["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # What a mail provider sends (RFC 8058): a POST with this body, no cookies, no CSRF token.
    response = client.post(url, "List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 200
    customer.refresh_from_db()
    assert customer.notify_billing_notices is False
    assert customer.notify_renewal_reminders is True  # only the one category


# --- failures ------------------------------------------------------------------------------------


@pytest.fixture
def mail_server_down(settings):
    """The real SMTP backend, pointed at a port where nothing listens."""
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},
        }
    }


def test_a_failed_send_is_recorded_and_retried_later(
    customer, mail_server_down, django_capture_on_commit_callbacks, run_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key="hub_link:1")
    with django_capture_on_commit_callbacks(execute=True):
        assert run_tasks() == 1

    email = OutboundEmail.objects.get()
    assert (email.status, email.attempts) == (EmailStatus.QUEUED, 1)
    assert "ConnectionRefusedError" in email.last_error
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.run_after > timezone.now() + timedelta(minutes=1)
    assert run_tasks() == 0  # not before its time


def test_after_the_last_attempt_the_email_is_marked_failed(customer, mail_server_down):
    with transaction.atomic():
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key="hub_link:1")
    OutboundEmail.objects.update(attempts=EMAIL_MAX_ATTEMPTS - 1)

    assert email_deliver(email_id=OutboundEmail.objects.get().pk) == EmailStatus.FAILED

    email = OutboundEmail.objects.get()
    assert (email.status, email.attempts) == (EmailStatus.FAILED, EMAIL_MAX_ATTEMPTS)


def test_a_mail_server_down_for_a_weekend_loses_no_email(customer, mail_server_down, time_machine, caplog):
    """The attempts back off to two hours apart and go on for about three days; only then is the email
    marked failed, with one ERROR line that says so."""
    from datetime import UTC, datetime

    time_machine.move_to(datetime(2026, 12, 4, 18, 0, tzinfo=UTC), tick=False)
    with transaction.atomic():
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key="hub_link:1")
    email = OutboundEmail.objects.get()
    waits = []
    while email_deliver(email_id=email.pk) == EmailStatus.QUEUED:
        email.refresh_from_db()
        waits.append(email.next_attempt_at - timezone.now())
        time_machine.move_to(email.next_attempt_at, tick=False)
    email.refresh_from_db()

    assert waits[:4] == [timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8), timedelta(minutes=16)]
    assert max(waits) == timedelta(hours=2)
    assert timedelta(days=2, hours=18) < sum(waits, timedelta()) < timedelta(days=3, hours=6)
    assert (email.status, email.attempts, email.next_attempt_at) == (EmailStatus.FAILED, EMAIL_MAX_ATTEMPTS, None)
    gave_up = [r for r in caplog.records if r.levelname == "ERROR" and "gave up" in r.getMessage()]
    assert len(gave_up) == 1


def test_the_sweep_leaves_an_email_to_its_next_attempt_and_sends_it_once_that_is_overdue(
    customer, time_machine, run_tasks
):
    from datetime import UTC, datetime

    from console.emails import outbox_requeue

    time_machine.move_to(datetime(2026, 12, 4, 18, 0, tzinfo=UTC), tick=False)
    with transaction.atomic():
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key="hub_link:1")
    OutboundEmail.objects.update(
        attempts=3, next_attempt_at=timezone.now() + timedelta(hours=1), created_at=timezone.now() - timedelta(hours=1)
    )

    assert outbox_requeue(older_than=timedelta(minutes=10)) == 0  # waiting for its own deferred attempt
    time_machine.move_to(timezone.now() + timedelta(hours=1, minutes=11), tick=False)
    assert outbox_requeue(older_than=timedelta(minutes=10)) == 1  # that attempt's task was lost
    run_tasks()

    assert OutboundEmail.objects.get().status == EmailStatus.SENT
    assert len(mail.outbox) == 1


def test_a_failed_email_can_be_sent_again_from_admin(customer, django_capture_on_commit_callbacks, run_tasks):
    from django.test import Client

    from tests.factories import UserFactory

    with transaction.atomic():
        email_queue(customer=customer, kind=EmailKind.HUB_LINK, key="hub_link:1")
    OutboundEmail.objects.update(status=EmailStatus.FAILED, attempts=EMAIL_MAX_ATTEMPTS, last_error="SMTP down")
    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True, password=None))

    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(
            "/admin/portal/outboundemail/",
            {"action": "send_again", "_selected_action": [OutboundEmail.objects.get().pk]},
        )
    assert response.status_code == 302
    run_tasks()

    assert len(mail.outbox) == 1
    assert OutboundEmail.objects.get().status == EmailStatus.SENT


def test_the_demo_seed_emails_the_demo_customer_their_receipts_once(
    settings, django_capture_on_commit_callbacks, run_tasks
):
    import io

    from django.core.management import call_command

    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"  # the demo card and subscription, offline

    def seed():
        with django_capture_on_commit_callbacks(execute=True):
            call_command("seed_demo", password="demo-password-1", stdout=io.StringIO(), stderr=io.StringIO())
        run_tasks()

    seed()
    seed()  # re-running resets the demo users; it records no new sales, so it emails nothing

    receipts = [m for m in mail.outbox if m.subject.startswith("Your receipt R-")]
    assert len(receipts) == OutboundEmail.objects.filter(kind=EmailKind.RECEIPT).count() > 0
    assert {tuple(m.to) for m in receipts} == {("customer@example.com",)}
    assert all("http://127.0.0.1:8000/hub/" in m.body for m in receipts)


def test_a_cancellation_without_an_end_date_still_reads_well(tokyo_customer):
    rendered = email_render(
        customer=tokyo_customer,
        kind=EmailKind.SUBSCRIPTION_CANCEL_SCHEDULED,
        context={"offer_name": "Studio membership", "ends_at": None},
    )

    assert rendered.subject == "Your Studio membership subscription ends at the end of this period"
    assert "ends at the end of the period you paid for" in rendered.text
    assert " on ." not in rendered.text + rendered.html


REFUND = {"offer_name": "Glaze Recipes ebook", "amount": 400, "currency": "gbp", "receipt_number": ""}


@pytest.mark.parametrize(
    ("facts", "says", "never"),
    [
        ({"status": "succeeded"}, "goes back to the card you paid with", "processing"),
        ({"status": "pending"}, "Your bank is processing it", "5 to 10 days"),
        ({"status": "succeeded", "paid_outside_stripe": True}, "You paid us directly", "card"),
    ],
)
def test_a_refund_email_says_what_happened_to_the_money(tokyo_customer, facts, says, never):
    rendered = email_render(customer=tokyo_customer, kind=EmailKind.REFUND_ISSUED, context={**REFUND, **facts})

    for body in (rendered.text, rendered.html):
        assert says in body and never not in body


@pytest.mark.django_db
def test_an_email_sent_again_carries_the_message_id_of_its_first_sending():
    from console.emails import email_message

    first_customer, second_customer = CustomerFactory(), CustomerFactory()
    for customer in (first_customer, second_customer):
        email_queue(customer=customer, kind="welcome", key=f"welcome:{customer.pk}")
    first, second = (OutboundEmail.objects.get(customer=c) for c in (first_customer, second_customer))

    message_id = email_message(email=first).extra_headers["Message-ID"]
    assert email_message(email=first).extra_headers["Message-ID"] == message_id
    assert email_message(email=second).extra_headers["Message-ID"] != message_id
    assert re.fullmatch(r"<portal\.\d+\.[0-9a-f]{16}@[^>@\s]+>", message_id)
