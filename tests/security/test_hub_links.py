"""Finding 12: a hub link is a password-less credential, so it works once, never for staff, and nobody
can have one (or a password reset) mailed to a staff address; staff need two-factor by default."""

import pytest
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.cache import cache
from django.test import Client

from accounts.hub import HUB_LINK_INVALID, HUB_LINK_USED, hub_link_token, hub_link_url
from accounts.services import SIGN_IN_EMAIL_STAFF_REFUSED
from portal.models import EmailKind, OutboundEmail
from tests.factories import DEFAULT_PASSWORD, SubscriptionFactory

from .conftest import production_settings
from .sweep import record_figures

pytestmark = pytest.mark.django_db

CONTINUE = "/hub/continue/"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


def path_of(url: str) -> str:
    return url.removeprefix(settings.PORTAL_SITE_URL)


def signed_in_user_id(client):
    user_id = client.session.get(SESSION_KEY)
    return int(user_id) if user_id is not None and client.get("/settings/contact/").status_code == 200 else None


def use_link(client, link):
    """Open the link and press its confirm button."""
    opened = client.get(link)
    if opened.status_code != 302:
        return opened
    return client.post(CONTINUE)


# --- used once ----------------------------------------------------------------------------------------


def test_a_link_signs_in_once(customer):
    link = path_of(hub_link_url(customer=customer))
    first, second = Client(), Client()

    assert use_link(first, link).status_code == 302
    refused = use_link(second, link)

    assert signed_in_user_id(first) == customer.user.pk
    assert refused.status_code == 400 and refused.context["error"] == str(HUB_LINK_INVALID)
    assert signed_in_user_id(second) is None
    record_figures("hub link", uses=2, signed_in=1)


def test_of_two_confirm_pages_open_on_one_link_only_the_first_press_signs_in(customer):
    link = path_of(hub_link_url(customer=customer))
    first, second = Client(), Client()
    assert first.get(link).status_code == 302 and second.get(link).status_code == 302
    assert first.get(CONTINUE).status_code == 200 and second.get(CONTINUE).status_code == 200

    first.post(CONTINUE)
    refused = second.post(CONTINUE)

    assert signed_in_user_id(first) == customer.user.pk
    assert refused.status_code == 400
    assert refused.context["error"] in (str(HUB_LINK_INVALID), str(HUB_LINK_USED))
    assert signed_in_user_id(second) is None


def test_signing_out_every_other_session_ends_the_links_already_sent(customer):
    link = path_of(hub_link_url(customer=customer))
    laptop, phone = Client(), Client()
    for browser in (laptop, phone):
        assert browser.post("/accounts/login/", {"login": customer.user.email, "password": DEFAULT_PASSWORD})
    assert signed_in_user_id(phone) == customer.user.pk

    laptop.post("/accounts/sessions/")  # "Sign out other sessions"

    assert signed_in_user_id(phone) is None
    refused = use_link(Client(), link)
    assert refused.status_code == 400 and signed_in_user_id(Client()) is None
    record_figures("hub link", after_sign_out_everywhere="refused")


# --- never for staff ----------------------------------------------------------------------------------


def test_a_link_made_for_a_staff_account_signs_no_one_in_and_opens_no_admin(creator, settings):
    settings.PORTAL_STAFF_REQUIRE_2FA = False  # the finding's setting: even then the link is no way in
    token = hub_link_token.make_token(creator.customer)
    browser = Client()

    response = use_link(browser, f"/hub/{token}/")

    assert response.status_code == 400
    assert signed_in_user_id(browser) is None
    assert browser.get("/admin/").status_code == 302
    assert hub_link_url(customer=creator.customer) == f"{settings.PORTAL_SITE_URL}/accounts/login/"


def test_nobody_can_have_a_link_mailed_to_a_staff_address(client, creator, support_user, run_tasks):
    for staff in (creator, support_user):
        assert client.post("/hub/new-link/", {"email": staff.email}).status_code == 200  # the usual answer

    assert not OutboundEmail.objects.filter(kind=EmailKind.HUB_LINK).exists()
    run_tasks()
    assert mail.outbox == []
    record_figures("hub link", requested_for_staff=2, sent=0)


@pytest.mark.parametrize(
    ("path", "kind"),
    [("send-login-email", EmailKind.WELCOME), ("send-password-reset", None)],
    ids=["welcome email", "password reset"],
)
def test_support_cannot_send_the_creator_a_sign_in_or_reset_email(support_client, creator, path, kind):
    response = support_client.post(f"/admin/accounts/customer/{creator.customer.pk}/{path}/", follow=True)

    # The refusal, then the contact page it returns to, which staff accounts are kept out of.
    messages = [str(message) for message in response.context["messages"]]
    assert messages[0] == str(SIGN_IN_EMAIL_STAFF_REFUSED) % {"email": creator.email}
    assert not OutboundEmail.objects.filter(customer=creator.customer).exists()
    assert mail.outbox == []
    record_figures("staff recipients", view=path, sent=0)


def test_support_cannot_send_a_card_update_link_to_a_staff_account(support_client, creator):
    subscription = SubscriptionFactory(customer=creator.customer)

    response = support_client.post(f"/admin/billing/subscription/{subscription.pk}/card_link/", follow=True)

    messages = [str(message) for message in response.context["messages"]]
    assert str(SIGN_IN_EMAIL_STAFF_REFUSED) % {"email": creator.email} in messages
    assert not OutboundEmail.objects.filter(kind=EmailKind.CARD_UPDATE_LINK).exists()


def test_the_bulk_sign_in_emails_skip_staff_too(support_client, creator, customer):
    changelist = "/admin/accounts/customer/"
    for action in ("send_login_email", "send_password_reset"):
        support_client.post(
            changelist, {"action": action, "_selected_action": [creator.customer.pk, customer.pk]}, follow=True
        )

    recipients = {email.customer_id for email in OutboundEmail.objects.all()}
    assert recipients == {customer.pk}
    assert all(creator.email not in message.to for message in mail.outbox)


def test_staff_two_factor_is_required_by_default_in_production(tmp_path):
    values = production_settings(tmp_path, ["PORTAL_STAFF_REQUIRE_2FA"])

    assert values["PORTAL_STAFF_REQUIRE_2FA"] is True


def test_a_staff_member_without_two_factor_is_sent_to_set_it_up_before_any_admin_page(client, db):
    from tests.factories import UserFactory

    staff = UserFactory(is_staff=True, is_superuser=True, totp=False)
    client.post("/accounts/login/", {"login": staff.email, "password": DEFAULT_PASSWORD})

    response = client.get("/admin/accounts/customer/")

    assert response.status_code == 302 and response["Location"] == "/accounts/2fa/totp/activate/"
