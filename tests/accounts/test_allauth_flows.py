"""The real allauth flows, through the test client: sign-up, sign-in by password and by emailed
code, sign-out, password change and set, email change, password reset and the rate limit."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.models import Customer, User
from tests.factories import CustomerFactory

NEW_PASSWORD = "a-much-longer-new-password-42"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    """Rate-limit counters live in the cache; start each test from zero (rolled back afterwards)."""
    cache.clear()


def signed_in_user_id(client):
    return client.session.get(SESSION_KEY)


def is_signed_in(client):
    return client.get("/").status_code == 200


def link_in(message, path_prefix):
    """The path of the link to path_prefix… in the email: on the portal's address, whatever Host was asked."""
    match = re.search(rf"{re.escape(settings.PORTAL_SITE_URL)}({re.escape(path_prefix)}\S+)", message.body)
    assert match, message.body
    return match.group(1)


def login_code_in(message):
    match = re.search(r"^([A-Z0-9]{4}-[A-Z0-9]{4})$", message.body, flags=re.M)
    assert match, message.body
    return match.group(1)


def mails_to(address):
    return [m for m in mail.outbox if address in m.to]


# --- sign up -------------------------------------------------------------------------------


def test_sign_up_creates_the_customer_and_sends_a_verification_email(client):
    response = client.post(
        "/accounts/signup/",
        {
            "email": "New.Person@Example.com",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/accounts/confirm-email/"
    user = User.objects.get(email__iexact="new.person@example.com")
    assert Customer.objects.get(user=user).email == user.email
    address = EmailAddress.objects.get(user=user)
    assert (address.verified, address.primary) == (False, True)
    [message] = mail.outbox
    assert message.to == [user.email]
    assert "/accounts/confirm-email/" in message.body
    assert not is_signed_in(client)  # verification is mandatory


def test_account_emails_name_the_business_not_the_placeholder_site(client, customer):
    """allauth signs its mails with the Sites framework's name, which is "example.com" until set."""
    from portal.selectors import site_settings_get

    client.post("/accounts/signup/", {"email": "new@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    client.post("/accounts/password/reset/", {"email": customer.email})

    business = site_settings_get().business_name
    assert len(mail.outbox) == 2
    for message in mail.outbox:
        assert "from example.com" not in message.body, message.body
        assert business in message.body, message.body


def test_confirming_the_sign_up_email_verifies_it_and_signs_in(client):
    client.post("/accounts/signup/", {"email": "new@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})
    confirm_url = link_in(mail.outbox[0], "/accounts/confirm-email/")

    assert client.get(confirm_url).status_code == 200  # confirming needs a POST
    assert not EmailAddress.objects.get(email="new@example.com").verified
    response = client.post(confirm_url)

    assert response.status_code == 302
    assert EmailAddress.objects.get(email="new@example.com").verified
    assert is_signed_in(client)


def test_sign_up_with_a_weak_password_creates_nothing(client):
    response = client.post(
        "/accounts/signup/", {"email": "weak@example.com", "password1": "password", "password2": "password"}
    )

    assert response.status_code == 200
    assert response.context["form"].errors["password1"]
    assert not User.objects.filter(email="weak@example.com").exists()
    assert not Customer.objects.filter(email="weak@example.com").exists()
    assert mail.outbox == []


def test_sign_up_with_a_taken_address_creates_no_second_account(client, customer):
    response = client.post(
        "/accounts/signup/", {"email": customer.email.upper(), "password1": NEW_PASSWORD, "password2": NEW_PASSWORD}
    )

    assert response.status_code == 302  # enumeration prevention: looks the same as a new sign-up
    assert User.objects.filter(email__iexact=customer.email).count() == 1
    assert Customer.objects.count() == 1
    assert [m.to for m in mail.outbox] == [[customer.email]]  # the owner is told instead


# --- sign in -------------------------------------------------------------------------------


def test_sign_in_with_password(client, customer, password):
    response = client.post("/accounts/login/", {"login": customer.email, "password": password})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert int(signed_in_user_id(client)) == customer.user.pk
    assert is_signed_in(client)


def test_sign_in_with_a_wrong_password_fails(client, customer):
    response = client.post("/accounts/login/", {"login": customer.email, "password": "not-the-password"})

    assert response.status_code == 200
    assert response.context["form"].errors
    assert signed_in_user_id(client) is None


def test_sign_in_by_emailed_code(client, customer):
    response = client.post("/accounts/login/code/", {"email": customer.email})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/code/confirm/"
    [message] = mails_to(customer.email)
    code = login_code_in(message)
    assert not is_signed_in(client)

    response = client.post("/accounts/login/code/confirm/", {"code": code})

    assert response.status_code == 302
    assert response["Location"] == "/"
    assert int(signed_in_user_id(client)) == customer.user.pk


def test_a_wrong_emailed_code_does_not_sign_in(client, customer):
    client.post("/accounts/login/code/", {"email": customer.email})

    response = client.post("/accounts/login/code/confirm/", {"code": "AAAA-AAAA"})

    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert signed_in_user_id(client) is None


# --- sign out ------------------------------------------------------------------------------


def test_sign_out_by_get_only_asks_for_confirmation(client_logged_in):
    response = client_logged_in.get("/accounts/logout/")

    assert response.status_code == 200
    assert 'method="post"' in response.content.decode()
    assert is_signed_in(client_logged_in)


def test_sign_out_by_post(client_logged_in):
    response = client_logged_in.post("/accounts/logout/")

    assert response.status_code == 302
    assert signed_in_user_id(client_logged_in) is None
    assert client_logged_in.get("/")["Location"].startswith("/accounts/login/")


# --- password change and set ---------------------------------------------------------------


def test_password_change_needs_the_current_password(client_logged_in, customer):
    response = client_logged_in.post(
        "/settings/password/",
        {
            "oldpassword": "wrong-current-password",
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["oldpassword"]
    customer.user.refresh_from_db()
    assert not customer.user.check_password(NEW_PASSWORD)
    assert mail.outbox == []


def test_password_change_keeps_this_session_signs_out_others_and_sends_a_notice(client, customer, password, sign_in):
    other_device = Client()
    sign_in(other_device, customer.email, password)
    sign_in(client, customer.email, password)
    mail.outbox.clear()
    assert is_signed_in(other_device)

    response = client.post(
        "/settings/password/",
        {
            "oldpassword": password,
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/settings/password/"
    customer.user.refresh_from_db()
    assert customer.user.check_password(NEW_PASSWORD)
    assert is_signed_in(client)
    assert not is_signed_in(other_device)
    [notice] = mails_to(customer.email)
    assert "password" in notice.subject.lower()


def test_password_page_offers_change_to_a_customer_with_a_password(client_logged_in):
    body = client_logged_in.get("/settings/password/").content.decode()

    assert "Change password" in body
    assert 'name="oldpassword"' in body


def test_a_customer_without_a_password_can_set_one(client, sign_in):
    customer = CustomerFactory(user__password=None)
    assert not customer.user.has_usable_password()
    client.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")

    # allauth asks to confirm it is them first: without a password, by a code sent to their address.
    asked = client.get("/settings/password/")
    assert asked["Location"] == "/accounts/reauthenticate/code/?next=%2Fsettings%2Fpassword%2F"
    [(recipient, _label)] = client.get(asked["Location"]).context["form"].fields["recipient"].choices
    confirm = client.post(asked["Location"], {"recipient": recipient})
    [message] = mails_to(customer.email)
    client.post(confirm["Location"], {"code": login_code_in(message)})
    mail.outbox.clear()

    page = client.get("/settings/password/")
    assert page.status_code == 200
    body = page.content.decode()
    assert "Set a password" in body and 'name="oldpassword"' not in body

    response = client.post("/settings/password/", {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/settings/password/"
    customer.user.refresh_from_db()
    assert customer.user.check_password(NEW_PASSWORD)
    assert is_signed_in(client)
    assert len(mails_to(customer.email)) == 1
    assert sign_in(Client(), customer.email, NEW_PASSWORD)


# --- email change --------------------------------------------------------------------------


def test_email_change_takes_effect_only_after_the_new_address_is_verified(client_logged_in, customer, password):
    old_address = customer.email

    # Changing the address asks for the password first, then carries on with the suspended request.
    response = client_logged_in.post("/accounts/email/", {"action_add": "", "email": "moved@example.com"})
    assert response.status_code == 302
    assert response["Location"] == "/accounts/reauthenticate/?next=%2Faccounts%2Femail%2F"
    assert mail.outbox == []
    response = client_logged_in.post(response["Location"], {"password": password})
    assert response.status_code == 302

    [verification] = mails_to("moved@example.com")
    customer.refresh_from_db()
    customer.user.refresh_from_db()
    assert customer.user.email == old_address  # nothing changes before verification
    assert customer.email == old_address
    assert mails_to(old_address) == []

    response = client_logged_in.post(link_in(verification, "/accounts/confirm-email/"))

    assert response.status_code == 302
    customer.refresh_from_db()
    customer.user.refresh_from_db()
    assert customer.user.email == "moved@example.com"
    assert customer.email == "moved@example.com"
    assert list(EmailAddress.objects.filter(user=customer.user).values_list("email", "verified", "primary")) == [
        ("moved@example.com", True, True)
    ]
    [notice] = mails_to(old_address)
    assert "moved@example.com" in notice.body


def test_email_change_with_a_wrong_password_changes_nothing(client_logged_in, customer):
    response = client_logged_in.post("/accounts/email/", {"action_add": "", "email": "moved@example.com"})
    response = client_logged_in.post(response["Location"], {"password": "not-my-password"})

    assert response.status_code == 200
    assert response.context["form"].errors["password"]
    assert mail.outbox == []
    assert not EmailAddress.objects.filter(email="moved@example.com").exists()


def test_email_change_requires_recent_authentication(client, customer, password, sign_in):
    """Even right after signing in, the password is asked again before the address changes."""
    sign_in(client, customer.email, password)

    response = client.post("/accounts/email/", {"action_add": "", "email": "moved@example.com"})

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/reauthenticate/")
    assert mails_to("moved@example.com") == []
    assert not EmailAddress.objects.filter(email="moved@example.com").exists()


# --- password reset ------------------------------------------------------------------------


def test_password_reset_sends_a_link_that_sets_a_new_password(client, customer, sign_in):
    response = client.post("/accounts/password/reset/", {"email": customer.email})

    assert response.status_code == 302
    [message] = mails_to(customer.email)
    reset_url = link_in(message, "/accounts/password/reset/key/")
    form_page = client.get(reset_url, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else reset_url

    response = client.post(set_url, {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert response.status_code == 302
    customer.user.refresh_from_db()
    assert customer.user.check_password(NEW_PASSWORD)
    assert sign_in(Client(), customer.email, NEW_PASSWORD)


def test_password_reset_for_an_unknown_address_looks_the_same(client, customer):
    response = client.post("/accounts/password/reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302
    assert response["Location"] == "/accounts/password/reset/done/"
    assert all("/accounts/password/reset/key/" not in m.body for m in mail.outbox)


# --- rate limit ----------------------------------------------------------------------------


def test_after_five_failed_sign_ins_the_address_is_locked_even_for_the_right_password(client, customer, password):
    for _ in range(5):
        response = client.post("/accounts/login/", {"login": customer.email, "password": "wrong-guess-123"})
        assert response.status_code == 200
        assert "Too many failed login attempts" not in response.content.decode()

    response = client.post("/accounts/login/", {"login": customer.email, "password": password})

    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Too many failed login attempts. Try again later."]
    assert signed_in_user_id(client) is None


def test_the_31st_sign_in_attempt_in_a_minute_from_one_address_gets_429(client, customer, password):
    statuses = [
        client.post("/accounts/login/", {"login": f"someone{n}@example.com", "password": "wrong-guess-123"}).status_code
        for n in range(31)
    ]

    assert statuses == [200] * 30 + [429]
    response = Client().post("/accounts/login/", {"login": customer.email, "password": password})
    assert response.status_code == 429  # the limit is per IP address: another client there is refused too
    assert signed_in_user_id(client) is None


REDIS_CACHE = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/15"}
}


def test_with_redis_as_the_cache_failed_sign_ins_are_counted_there(client, customer, password, settings):
    """REDIS_URL moves the rate limits to Redis, shared by every worker and node."""
    settings.CACHES = REDIS_CACHE
    cache.clear()
    try:
        for _ in range(5):
            client.post("/accounts/login/", {"login": customer.email, "password": "wrong-guess-123"})

        response = client.post("/accounts/login/", {"login": customer.email, "password": password})

        assert response.context["form"].non_field_errors() == ["Too many failed login attempts. Try again later."]
        assert any(b"login_failed" in key for key in cache._cache.get_client().keys("*"))
    finally:
        cache.clear()
