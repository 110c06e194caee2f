"""allauth's own emails (codes, links and security notices) come as text and HTML in the portal's
branded layout, from the business's name; each is sent once, by allauth."""

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache

from portal.services import site_settings_update

NEW_PASSWORD = "a-much-longer-new-password-42"


@pytest.fixture(autouse=True)
def _business(db):
    cache.clear()
    site_settings_update(data={"business_name": "Clay & Code Studio", "business_email": "help@example.com"})


def html_of(message) -> str:
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html"
    return html


def test_the_password_changed_notice_is_branded_html_and_text(client, customer, password, sign_in):
    sign_in(client, customer.email, password)
    mail.outbox.clear()

    client.post("/settings/password/", {"oldpassword": password, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    [notice] = mail.outbox
    assert notice.to == [customer.email]
    assert notice.from_email == "Clay & Code Studio <no-reply@localhost>"
    assert "Your password has been changed." in notice.body
    html = html_of(notice)
    assert "The password of your account was changed." in html
    assert "Clay &amp; Code Studio" in html
    assert 'href="http://127.0.0.1:8000/accounts/password/reset/"' in html
    assert "mailto:help@example.com" in html


def test_the_email_changed_notice_goes_to_the_old_address_once(client_logged_in, customer, password):
    old_address = customer.email
    response = client_logged_in.post("/accounts/email/", {"action_add": "", "email": "moved@example.com"})
    client_logged_in.post(response["Location"], {"password": password})
    [verification] = mail.outbox
    confirm = verification.body.split(settings.PORTAL_SITE_URL, 1)[1].split()[0]
    mail.outbox.clear()

    client_logged_in.post(confirm)

    [notice] = mail.outbox
    assert notice.to == [old_address]
    html = html_of(notice)
    assert f"<strong>{old_address}</strong> to <strong>moved@example.com</strong>" in html
    assert "someone else may have taken over your account" in html


def test_sign_in_codes_come_with_an_html_part_too(client, customer):
    client.post("/accounts/login/code/", {"email": customer.email})

    [message] = mail.outbox
    html = html_of(message)
    code = next(line for line in message.body.splitlines() if len(line) == 9 and line[4] == "-")
    assert code in html
    assert "Clay &amp; Code Studio" in html
