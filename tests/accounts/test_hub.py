"""Hub links (/hub/<token>/): opening one keeps its token in the session and moves on to
/hub/continue/, which only asks to confirm; its POST signs in. Expired, tampered and outdated links
fail without saying whether an address has an account, and offer a fresh link."""

import re
from datetime import datetime, timedelta

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils.http import int_to_base36

from accounts.hub import HUB_LINK_EXPIRED, HUB_LINK_INVALID, hub_default_destination, hub_link_token, hub_link_url
from accounts.models import Customer
from accounts.views import HUB_LINK_RATE_LIMITED
from portal.models import EmailKind, OutboundEmail
from tests.factories import CustomerFactory

EXPIRED = str(HUB_LINK_EXPIRED) % {"days": 7}
INVALID = str(HUB_LINK_INVALID)


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


def path_of(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def signed_in_user_id(client):
    return client.session.get(SESSION_KEY)


CONTINUE = "/hub/continue/"


def confirm(client, link, data=None):
    """Open the link (its token goes into the session), then press the confirm page's button."""
    opened = client.get(link)
    if opened.status_code != 302:
        return opened
    return client.post(CONTINUE, data or {})


@pytest.fixture
def link(customer):
    return path_of(hub_link_url(customer=customer))


@pytest.fixture
def days_later(monkeypatch):
    """Move the token generator's clock forward (its _now() seam), as if the link were opened later."""

    def move(days: float):
        moved = datetime.now() + timedelta(days=days)
        monkeypatch.setattr(hub_link_token, "_now", lambda: moved)

    return move


# --- the token -----------------------------------------------------------------------------------


def test_a_token_names_its_customer(customer):
    assert hub_link_token.check_token(hub_link_token.make_token(customer)) == customer


def test_the_link_is_an_absolute_url_on_the_portal(customer):
    assert hub_link_url(customer=customer).startswith("http://127.0.0.1:8000/hub/")


# --- opening and confirming ----------------------------------------------------------------------


def test_opening_the_link_shows_a_confirm_page_and_signs_no_one_in(client, customer, link):
    response = client.get(link, follow=True)

    assert response.redirect_chain == [(CONTINUE, 302)]
    assert response.status_code == 200
    body = response.content.decode()
    assert "Sign in and continue" in body
    assert customer.user.email in body
    assert 'method="post"' in body and 'name="csrfmiddlewaretoken"' in body
    assert signed_in_user_id(client) is None
    assert "no-store" in response["Cache-Control"]
    assert client.get("/").status_code == 302  # still signed out


def test_a_mail_scanner_opening_the_link_many_times_signs_no_one_in(client, link):
    for _ in range(3):
        assert client.get(link, follow=True).status_code == 200
        assert client.head(link, follow=True).status_code == 200

    assert signed_in_user_id(client) is None


def test_confirming_signs_in_and_lands_on_billing(client, customer, link):
    response = confirm(client, link)

    assert response.status_code == 302
    assert response["Location"] == hub_default_destination()
    assert int(signed_in_user_id(client)) == customer.user.pk
    assert Customer.objects.get(pk=customer.pk).last_activity_at is not None


def test_billing_is_where_the_link_lands_once_billing_is_installed():
    from django.urls import reverse

    assert hub_default_destination() == reverse("billing:index") == "/billing/"


def test_the_link_may_name_a_local_page_to_land_on(client, customer):
    link = path_of(hub_link_url(customer=customer, next_path="/purchases/"))
    page = client.get(link, follow=True).content.decode()
    assert 'name="next" value="/purchases/"' in page

    response = client.post(CONTINUE, {"next": "/purchases/"})

    assert response["Location"] == "/purchases/"


def test_the_card_update_link_lands_on_the_card_form(client, customer):
    from console.emails import email_render

    rendered = email_render(customer=customer, kind="card_update_link")
    link = re.search(r"http://127\.0\.0\.1:8000(/hub/\S+)", rendered.text).group(1)

    page = client.get(link, follow=True).content.decode()
    assert 'name="next" value="/billing/cards/new/"' in page
    assert client.post(CONTINUE, {"next": "/billing/cards/new/"})["Location"] == "/billing/cards/new/"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "javascript:alert(1)"])
def test_the_link_never_lands_on_another_site(client, link, target):
    response = confirm(client, f"{link}?next={target}", {"next": target})

    assert response["Location"] == hub_default_destination()


def test_the_token_is_kept_out_of_the_confirm_address_and_is_used_up_by_signing_in(client, customer, link):
    token = link.split("/")[2]
    page = client.get(link, follow=True)
    assert token not in page.request["PATH_INFO"] and token not in page.content.decode()

    assert client.post(CONTINUE).status_code == 302
    client.logout()

    assert_refused(client.post(CONTINUE), INVALID)  # pressing again needs the link again


def test_the_link_itself_takes_no_post(client, link):
    assert client.post(link).status_code == 405
    assert signed_in_user_id(client) is None


def test_the_link_works_once(customer, link):
    browser = Client()
    assert confirm(browser, link).status_code == 302
    assert int(signed_in_user_id(browser)) == customer.user.pk

    again = Client()
    response = again.get(link)

    assert response.status_code == 400
    assert response.context["error"] == INVALID
    assert signed_in_user_id(again) is None


def test_a_fresh_link_works_after_one_was_used(customer, link):
    confirm(Client(), link)
    customer.refresh_from_db()  # as the next email, rendered from the stored row, sees it
    fresh = path_of(hub_link_url(customer=customer))

    browser = Client()
    assert confirm(browser, fresh).status_code == 302
    assert int(signed_in_user_id(browser)) == customer.user.pk


def test_confirming_needs_the_page_csrf_token(customer, link):
    browser = Client(enforce_csrf_checks=True)
    browser.get(link)

    response = browser.post(CONTINUE)

    assert response.status_code == 403
    assert signed_in_user_id(browser) is None


def test_a_customer_already_signed_in_goes_straight_through(client_logged_in, link):
    response = client_logged_in.get(link, follow=True)

    assert response.redirect_chain == [(CONTINUE, 302), (hub_default_destination(), 302)]


def test_someone_else_signed_in_is_warned_and_switched_on_confirm(client, customer, other_customer):
    client.force_login(other_customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    link = path_of(hub_link_url(customer=customer))

    page = client.get(link, follow=True).content.decode()
    assert f"You are signed in as {other_customer.user.email}" in page
    client.post(CONTINUE)

    assert int(signed_in_user_id(client)) == customer.user.pk


def test_the_link_verifies_the_address_it_was_sent_to(client, db):
    customer = CustomerFactory()
    EmailAddress.objects.filter(user=customer.user).update(verified=False)
    link = path_of(hub_link_url(customer=customer))

    response = confirm(client, link)

    assert response["Location"] == hub_default_destination()  # not held up by email verification
    assert EmailAddress.objects.get(user=customer.user).verified


def test_a_customer_added_by_hand_without_an_address_record_can_sign_in(client, db):
    customer = CustomerFactory(user__password=None)
    EmailAddress.objects.filter(user=customer.user).delete()

    confirm(client, path_of(hub_link_url(customer=customer)))

    assert int(signed_in_user_id(client)) == customer.user.pk
    address = EmailAddress.objects.get(user=customer.user)
    assert (address.email, address.verified, address.primary) == (customer.user.email, True, True)


def test_with_two_factor_on_the_link_still_asks_for_the_code(client, customer, password, sign_in):
    from tests.accounts.test_two_factor_and_sessions import activate_totp

    sign_in(client, customer.email, password)
    activate_totp(client, password)
    browser = Client()

    response = confirm(browser, path_of(hub_link_url(customer=customer)))

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert signed_in_user_id(browser) is None


# --- links that fail -----------------------------------------------------------------------------


def assert_refused(response, message: str) -> str:
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "Email me a fresh link" in body
    assert "/accounts/login/code/" in body  # or sign in with an emailed code
    return body


def test_an_expired_link_says_so_and_signs_no_one_in(client, link, days_later):
    days_later(7.01)

    assert_refused(client.get(link), EXPIRED)
    assert_refused(client.get(CONTINUE), INVALID)  # nothing was kept to continue with
    assert signed_in_user_id(client) is None


def test_a_link_that_expires_on_the_confirm_page_signs_no_one_in(client, link, days_later):
    days_later(6.99)
    assert client.get(link, follow=True).status_code == 200
    days_later(7.01)

    assert_refused(client.post(CONTINUE), EXPIRED)
    assert signed_in_user_id(client) is None


def test_a_link_is_still_good_just_before_it_expires(client, customer, link, days_later):
    days_later(6.99)

    assert client.get(link, follow=True).status_code == 200


def test_the_lifetime_is_a_setting(client, link, days_later, settings):
    settings.HUB_LINK_MAX_AGE_DAYS = 30
    days_later(20)

    assert client.get(link, follow=True).status_code == 200


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token, other: token[:-1] + ("0" if token[-1] != "0" else "1"),  # a changed signature
        lambda token, other: token[:-4],  # cut short
        lambda token, other: int_to_base36(other.pk) + "-" + token.split("-", 1)[1],  # another customer's id
        lambda token, other: token.split("-")[0] + "-zzzzzz-" + token.split("-")[2],  # a later time
        lambda token, other: "not-a-token",
        lambda token, other: "a" * 300,
    ],
    ids=["signature", "short", "customer", "timestamp", "garbage", "long"],
)
def test_a_tampered_link_fails_safely(client, customer, other_customer, tamper):
    token = hub_link_token.make_token(customer)

    response = confirm(client, f"/hub/{tamper(token, other_customer)}/")

    assert_refused(response, INVALID)
    assert signed_in_user_id(client) is None


def test_a_link_stops_working_when_the_email_address_changes(client, customer, link):
    customer.user.email = "moved@example.com"
    customer.user.save()

    assert_refused(confirm(client, link), INVALID)
    assert signed_in_user_id(client) is None


def test_a_link_stops_working_when_the_password_changes(client, customer, link):
    customer.user.set_password("a-brand-new-password-9")
    customer.user.save()

    assert_refused(confirm(client, link), INVALID)
    assert signed_in_user_id(client) is None


def test_a_link_stops_working_when_the_account_is_deactivated(client, customer, link):
    customer.user.is_active = False
    customer.user.save()

    assert_refused(confirm(client, link), INVALID)


def without_csrf_token(body: str) -> str:
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", body)


def test_the_link_of_a_deleted_account_looks_like_any_broken_link(client, customer, other_customer):
    broken = client.get(f"/hub/{hub_link_token.make_token(other_customer)[:-1]}x/")
    gone_link = path_of(hub_link_url(customer=customer))
    customer.user.delete()

    gone = client.get(gone_link)

    assert gone.status_code == broken.status_code == 400
    assert without_csrf_token(gone.content.decode()) == without_csrf_token(broken.content.decode())


# --- asking for a fresh link ---------------------------------------------------------------------


def test_a_fresh_link_is_emailed_to_a_known_address(client, customer, django_capture_on_commit_callbacks, run_tasks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/hub/new-link/", {"email": customer.user.email.upper()})
    run_tasks()

    assert response.status_code == 200
    assert "If an account exists for" in response.content.decode()
    [message] = mail.outbox
    assert message.to == [customer.user.email]
    assert OutboundEmail.objects.get().kind == EmailKind.HUB_LINK
    fresh = re.search(r"http://127\.0\.0\.1:8000(/hub/[^\s]+)", message.body).group(1)
    assert confirm(client, fresh).status_code == 302
    assert int(signed_in_user_id(client)) == customer.user.pk


def test_asking_for_an_unknown_address_looks_the_same_and_sends_nothing(
    client, customer, django_capture_on_commit_callbacks, run_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        known = client.post("/hub/new-link/", {"email": customer.user.email})
        unknown = client.post("/hub/new-link/", {"email": "nobody@example.com"})
    run_tasks()

    assert known.status_code == unknown.status_code == 200
    assert known.content.decode().replace(customer.user.email, "ADDRESS") == unknown.content.decode().replace(
        "nobody@example.com", "ADDRESS"
    )
    assert [m.to for m in mail.outbox] == [[customer.user.email]]


def test_asking_again_and_again_is_rate_limited(client, customer, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            assert client.post("/hub/new-link/", {"email": customer.user.email}).status_code == 200
        response = client.post("/hub/new-link/", {"email": customer.user.email})

    assert response.status_code == 429
    assert str(HUB_LINK_RATE_LIMITED) in response.content.decode()
    assert OutboundEmail.objects.count() == 3


def test_an_unknown_address_is_rate_limited_the_same_way(client, db):
    for _ in range(3):
        client.post("/hub/new-link/", {"email": "nobody@example.com"})

    assert client.post("/hub/new-link/", {"email": "nobody@example.com"}).status_code == 429


def test_the_fresh_link_form_needs_an_address(client, db):
    response = client.post("/hub/new-link/", {"email": "not an address"})

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert not OutboundEmail.objects.exists()
