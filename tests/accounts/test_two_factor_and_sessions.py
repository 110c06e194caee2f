"""Two-factor authentication (TOTP and recovery codes) and the signed-in sessions list, through allauth."""

from allauth.mfa.models import Authenticator
from django.test import Client

from tests.factories import totp_code


def current_code(secret: str) -> str:
    return totp_code(secret, seconds_needed=2)


def is_signed_in(client) -> bool:
    return client.get("/settings/contact/").status_code == 200


def activate_totp(client, password) -> str:
    """Turn TOTP on as a customer would: confirm the password (allauth asks again), scan, type the code."""
    assert client.get("/accounts/2fa/totp/activate/")["Location"].startswith("/accounts/reauthenticate/")
    client.post("/accounts/reauthenticate/", {"password": password})
    page = client.get("/accounts/2fa/totp/activate/")
    assert page.status_code == 200, page.status_code
    secret = page.context["form"].secret
    response = client.post("/accounts/2fa/totp/activate/", {"code": current_code(secret)})
    assert response.status_code == 302
    return secret


def test_a_customer_turns_on_totp_and_gets_recovery_codes(client, customer, password, sign_in):
    sign_in(client, customer.email, password)

    activate_totp(client, password)

    types = set(Authenticator.objects.filter(user=customer.user).values_list("type", flat=True))
    assert types == {Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES}
    codes_page = client.get("/accounts/2fa/recovery-codes/").content.decode()
    assert "Recovery Codes" in codes_page


def test_a_wrong_code_does_not_turn_on_totp(client, customer, password, sign_in):
    sign_in(client, customer.email, password)
    client.post("/accounts/reauthenticate/", {"password": password})
    client.get("/accounts/2fa/totp/activate/")

    response = client.post("/accounts/2fa/totp/activate/", {"code": "000000"})

    assert response.status_code == 200
    assert response.context["form"].errors["code"]
    assert not Authenticator.objects.filter(user=customer.user).exists()


def test_with_totp_on_the_password_alone_does_not_sign_in(client, customer, password, sign_in):
    sign_in(client, customer.email, password)
    secret = activate_totp(client, password)
    browser = Client()

    response = browser.post("/accounts/login/", {"login": customer.email, "password": password})

    assert response["Location"] == "/accounts/2fa/authenticate/"
    assert not is_signed_in(browser)
    browser.post("/accounts/2fa/authenticate/", {"code": "000000"})
    assert not is_signed_in(browser)
    browser.post("/accounts/2fa/authenticate/", {"code": current_code(secret)})
    assert is_signed_in(browser)


def test_a_recovery_code_signs_in_once(client, customer, password, sign_in):
    sign_in(client, customer.email, password)
    activate_totp(client, password)
    code = Authenticator.objects.get(user=customer.user, type=Authenticator.Type.RECOVERY_CODES).wrap()
    recovery_code = code.get_unused_codes()[0]

    first, second = Client(), Client()
    for browser in (first, second):
        browser.post("/accounts/login/", {"login": customer.email, "password": password})
        browser.post("/accounts/2fa/authenticate/", {"code": recovery_code})

    assert is_signed_in(first)
    assert not is_signed_in(second)


def test_the_sessions_page_lists_each_device_and_signs_out_the_others(client, customer, password, sign_in):
    laptop, phone = Client(HTTP_USER_AGENT="Laptop browser"), Client(HTTP_USER_AGENT="Phone browser")
    sign_in(laptop, customer.email, password)
    sign_in(phone, customer.email, password)

    page = laptop.get("/accounts/sessions/").content.decode()
    assert "Laptop browser" in page and "Phone browser" in page

    response = laptop.post("/accounts/sessions/", {"action": "logout"})

    assert response.status_code == 302
    assert is_signed_in(laptop)
    assert not is_signed_in(phone)
