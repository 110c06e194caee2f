"""Finding 9 (pre-account takeover): only the owner of an address gets into the account that bears it.

An attacker signs up with the victim's address and a password of their own; the account stays
unverified. The victim then proves the address in each way the portal offers — the hub link of a
receipt email (Stripe's customer is linked by its email), a fresh hub link asked for at /hub/new-link/,
an emailed sign-in code, the verification link of the attacker's sign-up, a welcome email staff send —
and the attacker tries their password afterwards. The variant: the attacker adds the victim's address
to their own account as a pending address, and the victim asks for a sign-in code.

Every step goes over HTTP with Django's test client, emails rendered and sent by the real task.
"""

import re

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import Customer, User
from billing.gateways.base import CustomerDetails
from portal.models import AuditEntry
from purchases.models import Purchase
from tests.billing.conftest import stripe_event
from tests.factories import DEFAULT_PASSWORD, CustomerFactory, OfferFactory

from .sweep import record_figures

pytestmark = pytest.mark.django_db

VICTIM = "victoria@example.com"
ATTACKER = "mallory@example.com"
ATTACKER_PASSWORD = "Mallory-chose-this-1"
VICTIM_PASSWORD = "Victoria-own-secret-2"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


# --- what each side does, over HTTP ----------------------------------------------------------------


def sign_up(client, email, password):
    response = client.post("/accounts/signup/", {"email": email, "password1": password, "password2": password})
    assert response.status_code == 302, response.content.decode()[:1000]


def signed_in_as(client) -> User | None:
    user_id = client.session.get(SESSION_KEY)
    if user_id is None or client.get("/settings/contact/").status_code != 200:  # a stale session counts as none
        return None
    return User.objects.get(pk=user_id)


def attacker_tries_the_password(email=VICTIM) -> tuple[Client, User | None]:
    """A fresh browser of the attacker's: the sign-in form with the password the attacker chose."""
    browser = Client()
    browser.post("/accounts/login/", {"login": email, "password": ATTACKER_PASSWORD})
    return browser, signed_in_as(browser)


def mails_to(address):
    return [message for message in mail.outbox if address in message.to]


def links_in(messages, path: str) -> list[str]:
    """Paths of the links to `path`… in the emails (the host they name is test_links_and_log_noise's business)."""
    found = []
    for message in messages:
        found += re.findall(rf"https?://[^/\s]+({re.escape(path)}[^\s\"<>]*)", message.body)
    return found


def login_codes_in(messages) -> list[str]:
    return [code for message in messages for code in re.findall(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", message.body, re.M)]


def open_hub_link(browser, path):
    """Open a hub link and press its confirm button, as the victim would."""
    opened = browser.get(path)
    if opened.status_code != 302:
        return opened
    return browser.post(opened["Location"])


def deliver_emails(django_capture_on_commit_callbacks, run_tasks, action):
    """Run `action`, then the email tasks it queued, as the worker would."""
    with django_capture_on_commit_callbacks(execute=True):
        result = action()
    run_tasks()
    return result


@pytest.fixture
def attackers_sign_up(db):
    """The attacker's account: the victim's address, the attacker's password, unverified."""
    sign_up(Client(), VICTIM, ATTACKER_PASSWORD)
    user = User.objects.get(email=VICTIM)
    assert not EmailAddress.objects.filter(user=user, verified=True).exists()
    assert attacker_tries_the_password()[1] is None  # mandatory verification: no way in yet
    mail.outbox.clear()  # the verification email went to the victim; she ignores it
    return user


def assert_only_the_owner_gets_in(attackers_account: User, how: str, *, victim: Client | None = None):
    """The attacker's password opens nothing; once the victim proved the address, it is gone altogether."""
    attacker, signed_in = attacker_tries_the_password()
    assert signed_in is None, f"after the victim proved her address ({how}), the attacker's password opens it"
    assert attacker.get("/purchases/").status_code == 302
    user = User.objects.get(pk=attackers_account.pk)
    if EmailAddress.objects.filter(user=user, verified=True).exists():
        assert not user.check_password(ATTACKER_PASSWORD)
    if victim is not None:
        assert signed_in_as(victim) == user
    record_figures("takeover", path=how, attacker_signed_in=0)


def set_first_password(browser, email, password):
    """Settings › Password for an account without one: allauth first asks for a code sent to the address."""
    page = browser.get("/settings/password/")
    if page.status_code == 302 and page["Location"].startswith("/accounts/reauthenticate/code/"):
        mail.outbox.clear()
        [(recipient, _label)] = browser.get(page["Location"]).context["form"].fields["recipient"].choices
        confirm = browser.post(page["Location"], {"recipient": recipient})
        [code] = login_codes_in(mails_to(email))
        page = browser.post(confirm["Location"], {"code": code}, follow=True)
    assert page.status_code == 200 and 'name="oldpassword"' not in page.content.decode()
    return browser.post("/settings/password/", {"password1": password, "password2": password})


# --- 1. the hub link of a receipt email --------------------------------------------------------------


def test_a_receipt_for_the_victims_stripe_purchase_does_not_let_the_attackers_password_in(
    attackers_sign_up, gateway, post_webhook, run_tasks, django_capture_on_commit_callbacks
):
    """The victim buys through a Stripe checkout with her address; the invoice.paid webhook links Stripe's
    customer to the account with that address and emails the receipt with its hub link."""
    offer = OfferFactory(kind="one_time", price_amount=4900, stripe_price_id="price_course")
    stripe_customer = gateway.customer_create(
        details=CustomerDetails(name="Victoria Victim", email=VICTIM), idempotency_key="checkout"
    )
    invoice = gateway.invoice_create(customer_id=stripe_customer.id, amount=4900, price_id="price_course")

    response = deliver_emails(
        django_capture_on_commit_callbacks,
        run_tasks,
        lambda: post_webhook(stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"})),
    )
    assert response.status_code == 200
    purchase = Purchase.objects.get(stripe_invoice_id=invoice.id)
    assert purchase.customer.user_id == attackers_sign_up.pk and purchase.offer == offer
    # Linking a Stripe customer to an account nobody proved took the attacker's password off it already.
    assert attacker_tries_the_password()[1] is None
    [hub_link] = links_in(mails_to(VICTIM), "/hub/")

    victim = Client()
    assert open_hub_link(victim, hub_link).status_code == 302

    assert_only_the_owner_gets_in(attackers_sign_up, "receipt hub link", victim=victim)
    assert AuditEntry.objects.filter(action="account.unproven_reset", customer=purchase.customer).exists()


# --- 2. a fresh hub link asked for at /hub/new-link/ ---------------------------------------------------


def test_a_fresh_hub_link_is_not_sent_to_an_address_nobody_proved(
    attackers_sign_up, run_tasks, django_capture_on_commit_callbacks
):
    victim = Client()
    response = deliver_emails(
        django_capture_on_commit_callbacks, run_tasks, lambda: victim.post("/hub/new-link/", {"email": VICTIM})
    )
    assert response.status_code == 200  # the same answer as for any address
    links = links_in(mails_to(VICTIM), "/hub/")
    for link in links:  # today's code sent one: the victim uses it
        open_hub_link(victim, link)

    assert_only_the_owner_gets_in(attackers_sign_up, "fresh hub link")
    assert links == []


# --- 3. an emailed sign-in code -----------------------------------------------------------------------


def test_a_sign_in_code_is_not_sent_to_an_address_nobody_proved(attackers_sign_up):
    victim = Client()
    response = victim.post("/accounts/login/code/", {"email": VICTIM})
    assert response.status_code == 302  # enumeration prevention: the same answer as for a real account
    codes = login_codes_in(mails_to(VICTIM))
    for code in codes:  # today's code sent one: the victim signs in with it
        victim.post("/accounts/login/code/confirm/", {"code": code})

    assert_only_the_owner_gets_in(attackers_sign_up, "sign-in code")
    assert signed_in_as(victim) is None
    assert codes == []


# --- 4. the verification link of the attacker's sign-up -----------------------------------------------


def test_the_verification_link_opened_by_the_victim_removes_the_attackers_password(client):
    attacker = Client()
    sign_up(attacker, VICTIM, ATTACKER_PASSWORD)
    [confirm_link] = links_in(mails_to(VICTIM), "/accounts/confirm-email/")

    victim = Client()
    assert victim.post(confirm_link).status_code == 302

    user = User.objects.get(email=VICTIM)
    assert EmailAddress.objects.get(user=user).verified
    assert_only_the_owner_gets_in(user, "verification link")
    # The owner, now the only one who can receive codes for the address, gets in and sets a password.
    victim.post("/accounts/login/code/", {"email": VICTIM})
    [code] = login_codes_in(mails_to(VICTIM))
    assert victim.post("/accounts/login/code/confirm/", {"code": code}).status_code == 302
    assert signed_in_as(victim) == user
    set_first_password(victim, VICTIM, VICTIM_PASSWORD)
    assert User.objects.get(pk=user.pk).check_password(VICTIM_PASSWORD)
    assert Client().post("/accounts/login/", {"login": VICTIM, "password": VICTIM_PASSWORD}).status_code == 302


# --- 5. a welcome email staff send to the account with the victim's address -----------------------------


def test_a_welcome_link_sent_by_support_removes_the_attackers_password(
    attackers_sign_up, support_client, run_tasks, django_capture_on_commit_callbacks
):
    """Support sees a contact with the victim's address and sends the welcome email from its admin page."""
    customer = Customer.objects.get(user=attackers_sign_up)
    deliver_emails(
        django_capture_on_commit_callbacks,
        run_tasks,
        lambda: support_client.post(f"/admin/accounts/customer/{customer.pk}/send-login-email/"),
    )
    [hub_link] = links_in(mails_to(VICTIM), "/hub/")

    victim = Client()
    assert open_hub_link(victim, hub_link).status_code == 302

    assert_only_the_owner_gets_in(attackers_sign_up, "welcome hub link", victim=victim)


# --- 6. the variant: the victim's address pending on the attacker's own account ------------------------


def test_a_pending_address_receives_no_sign_in_code(client):
    mallory = CustomerFactory(user__email=ATTACKER, email=ATTACKER).user
    attacker = Client()
    attacker.post("/accounts/login/", {"login": ATTACKER, "password": DEFAULT_PASSWORD})
    response = attacker.post("/accounts/email/", {"action_add": "", "email": VICTIM})
    attacker.post(response["Location"], {"password": DEFAULT_PASSWORD})  # allauth asks for the password first
    assert EmailAddress.objects.filter(user=mallory, email=VICTIM, verified=False).exists()
    mail.outbox.clear()

    victim = Client()
    victim.post("/accounts/login/code/", {"email": VICTIM})
    codes = login_codes_in(mails_to(VICTIM))
    for code in codes:  # today's code sent one: the victim signs in with it
        victim.post("/accounts/login/code/confirm/", {"code": code})

    assert signed_in_as(victim) is None, "the victim's code opened the attacker's account"
    mallory.refresh_from_db()
    assert mallory.email == ATTACKER
    assert not EmailAddress.objects.filter(user=mallory, email=VICTIM, verified=True).exists()
    assert codes == []
    record_figures("takeover", path="pending address code", attacker_signed_in=0)


# --- sessions ------------------------------------------------------------------------------------------


def test_proving_the_address_signs_out_every_other_session(settings):
    """With verification optional (ACCOUNT_EMAIL_VERIFICATION=optional) the attacker is signed in at once."""
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    attacker = Client()
    sign_up(attacker, VICTIM, ATTACKER_PASSWORD)
    user = signed_in_as(attacker)
    assert user is not None and user.email == VICTIM
    [confirm_link] = links_in(mails_to(VICTIM), "/accounts/confirm-email/")

    Client().post(confirm_link)

    assert signed_in_as(attacker) is None
    assert attacker_tries_the_password()[1] is None
    record_figures("takeover", path="session of the sign-up", attacker_signed_in=0)


def test_a_stripe_customer_linked_to_an_unproven_account_ends_its_sessions_first(
    settings, gateway, post_webhook, run_tasks, django_capture_on_commit_callbacks
):
    settings.ACCOUNT_EMAIL_VERIFICATION = "optional"
    attacker = Client()
    sign_up(attacker, VICTIM, ATTACKER_PASSWORD)
    assert signed_in_as(attacker) is not None
    OfferFactory(kind="one_time", price_amount=4900, stripe_price_id="price_course")
    stripe_customer = gateway.customer_create(
        details=CustomerDetails(name="Victoria", email=VICTIM), idempotency_key="c"
    )
    invoice = gateway.invoice_create(customer_id=stripe_customer.id, amount=4900, price_id="price_course")

    post_webhook(stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"}))

    assert Purchase.objects.filter(stripe_invoice_id=invoice.id).exists()
    assert signed_in_as(attacker) is None, "the attacker's session shows the victim's purchase"
    assert attacker_tries_the_password()[1] is None


def test_a_checkout_with_a_staff_members_address_takes_nothing_from_their_account(
    gateway, post_webhook, run_tasks, django_capture_on_commit_callbacks
):
    """Anyone can pay with anyone's address; a creator made with createsuperuser has no address record."""
    creator = User.objects.create_superuser(email="owner@example.com", password=DEFAULT_PASSWORD)
    OfferFactory(kind="one_time", price_amount=4900, stripe_price_id="price_course")
    stripe_customer = gateway.customer_create(
        details=CustomerDetails(name="Someone", email="owner@example.com"), idempotency_key="checkout"
    )
    invoice = gateway.invoice_create(customer_id=stripe_customer.id, amount=4900, price_id="price_course")

    post_webhook(stripe_event("invoice.paid", {"id": invoice.id, "object": "invoice"}))

    assert Purchase.objects.get(stripe_invoice_id=invoice.id).customer.user == creator
    assert User.objects.get(pk=creator.pk).check_password(DEFAULT_PASSWORD)
