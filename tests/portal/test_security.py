"""Security of the portal as a whole: CSRF on every state-changing endpoint, sign-in required for
every personal page, security headers, private caching, and Django's deployment checks."""

import os
import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Customer

BACKEND = "accounts.backends.PortalAuthenticationBackend"
SETTINGS_PAGES = ["/settings/contact/", "/settings/profile/", "/settings/social/", "/settings/password/", "/directory/"]
SIGNED_IN_PAGES = [
    "/",
    *SETTINGS_PAGES,
    "/accounts/email/",
    "/accounts/2fa/",
    "/accounts/sessions/",
    "/accounts/logout/",
]
ANONYMOUS_PAGES = ["/accounts/login/", "/accounts/signup/", "/accounts/login/code/", "/accounts/password/reset/"]


@pytest.fixture
def csrf_client(customer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(customer.user, backend=BACKEND)
    return client


# --- CSRF ----------------------------------------------------------------------------------

CSRF_POSTS = {
    "/settings/contact/": {
        "full_name": "Forged Name",
        "country": "FR",
        "phone": "",
        "tax_id_type": "",
        "tax_id_value": "",
        "address_line1": "",
        "address_line2": "",
        "city": "",
        "region": "",
        "postal_code": "",
    },
    "/settings/profile/": {"time_zone": "Asia/Tokyo", "notify_card_expiry_reminders": "on"},
    "/settings/social/": {"bio": "Forged", "website_url": "https://evil.example", "directory_opt_in": "on"},
    "/settings/password/": {
        "oldpassword": "correct-horse-battery-staple",
        "password1": "forged-password-123",
        "password2": "forged-password-123",
    },
    "/settings/profile/avatar/": {},
    "/settings/profile/avatar/remove/": {},
    "/accounts/email/": {"action_add": "", "email": "attacker@example.com"},
    "/accounts/logout/": {},
}


@pytest.mark.parametrize(("url", "data"), CSRF_POSTS.items(), ids=CSRF_POSTS.keys())
def test_a_post_without_a_csrf_token_is_refused_and_changes_nothing(
    csrf_client, customer, stored_row, password, url, data
):
    before = stored_row(customer)

    response = csrf_client.post(url, data)

    assert response.status_code == 403
    assert stored_row(customer) == before
    customer.user.refresh_from_db()
    assert customer.user.check_password(password)
    assert customer.user.email == before["email"]
    assert csrf_client.get("/").status_code == 200  # still signed in, logout included


def test_a_post_with_a_wrong_csrf_token_is_refused(csrf_client, customer, stored_row):
    csrf_client.get("/settings/social/")  # sets the CSRF cookie (and records activity)
    before = stored_row(customer)

    response = csrf_client.post("/settings/social/", {"bio": "Forged", "csrfmiddlewaretoken": "x" * 64})

    assert response.status_code == 403
    assert stored_row(customer) == before


def test_a_post_with_the_csrf_token_goes_through(csrf_client):
    """The positive control: the same client with the page's token can sign out."""
    csrf_client.get("/")
    token = csrf_client.cookies[settings.CSRF_COOKIE_NAME].value

    response = csrf_client.post("/accounts/logout/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 302
    assert csrf_client.get("/").status_code == 302


def test_every_form_on_the_settings_pages_carries_a_csrf_token(client_logged_in, customer):
    Customer.objects.filter(pk=customer.pk).update(avatar="avatars/" + "a" * 32 + ".webp")  # shows "remove"
    for url in ["/", *SETTINGS_PAGES]:
        body = client_logged_in.get(url).content.decode()
        for form in re.findall(r"<form\b.*?</form>", body, flags=re.S):
            if re.search(r'method="post"', form, flags=re.I):
                assert 'name="csrfmiddlewaretoken"' in form, (url, form[:200])


# --- sign-in required ----------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/", *SETTINGS_PAGES, "/accounts/email/", "/accounts/sessions/"])
def test_anonymous_visitors_are_sent_to_sign_in(client, db, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


@pytest.mark.parametrize("url", ["/settings/profile/avatar/", "/settings/profile/avatar/remove/"])
def test_anonymous_posts_to_avatar_endpoints_are_sent_to_sign_in(client, db, url):
    response = client.post(url)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_anonymous_post_to_a_settings_form_changes_nothing(client, customer, stored_row):
    before = stored_row(customer)

    response = client.post("/settings/contact/", {**CSRF_POSTS["/settings/contact/"], "id": customer.pk})

    assert response.status_code == 302
    assert stored_row(customer) == before


def test_an_inactive_users_session_no_longer_opens_pages(client_logged_in, customer):
    customer.user.is_active = False
    customer.user.save()

    assert client_logged_in.get("/settings/contact/").status_code == 302


# --- headers -------------------------------------------------------------------------------


def csp_directives(response):
    policy = response["Content-Security-Policy"]
    return {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}


@pytest.fixture(params=["anonymous", "signed in"])
def page_client(request, client, customer):
    if request.param == "signed in":
        client.force_login(customer.user, backend=BACKEND)
        return client, SIGNED_IN_PAGES
    return client, ANONYMOUS_PAGES


def test_html_pages_carry_the_security_headers(page_client):
    client, pages = page_client
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert response["Content-Type"].startswith("text/html")
        directives = csp_directives(response)
        assert "'unsafe-inline'" not in directives["script-src"], url
        assert "'unsafe-eval'" not in directives["script-src"], url
        assert "'unsafe-inline'" not in directives["style-src"], url
        assert directives["frame-ancestors"] == ["'none'"], url
        assert directives["object-src"] == ["'none'"], url
        assert directives["default-src"] == ["'self'"], url
        assert response["X-Content-Type-Options"] == "nosniff", url
        assert response["Referrer-Policy"] == "same-origin", url
        assert response["X-Frame-Options"] == "DENY", url
        assert response["Cross-Origin-Opener-Policy"] == "same-origin", url


def test_pages_have_no_inline_script_style_or_event_handler_the_policy_would_block(page_client):
    client, pages = page_client
    for url in pages:
        body = client.get(url).content.decode()
        for tag in re.findall(r"<script\b[^>]*>", body):
            assert "src=" in tag, (url, tag)
        assert not re.search(r"<style\b", body), url
        assert not re.search(r"\sstyle=", body), url
        assert not re.search(r"\son[a-z]+=", body), url
        assert "javascript:" not in body, url


def test_signed_in_pages_are_never_stored_by_caches(client_logged_in):
    for url in SIGNED_IN_PAGES:
        response = client_logged_in.get(url)
        cache_control = [part.strip() for part in response["Cache-Control"].split(",")]
        assert "no-store" in cache_control, url
        assert "private" in cache_control, url


def test_sign_in_pages_are_not_stored_either(client, db):
    for url in ANONYMOUS_PAGES:
        assert "no-store" in client.get(url)["Cache-Control"], url


def test_session_and_csrf_cookies_are_http_only_and_same_site(client, customer, password, sign_in):
    client.get("/accounts/login/")
    sign_in(client, customer.email, password)

    session_cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    csrf_cookie = client.cookies[settings.CSRF_COOKIE_NAME]
    assert session_cookie["httponly"] is True
    assert session_cookie["samesite"] == "Lax"
    assert csrf_cookie["httponly"] is True


def test_https_settings_are_on_by_default(tmp_path):
    """Without DJANGO_HTTPS the settings module chooses secure cookies, HSTS and the SSL redirect."""
    env = production_env(tmp_path)
    env.pop("DJANGO_HTTPS")
    code = (
        "from django.conf import settings as s;"
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS > 0,"
        " s.DEBUG)"
    )
    result = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=settings.BASE_DIR,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "True", "True", "False"]


# --- deployment checks ---------------------------------------------------------------------


def production_env(var_dir=None):
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "EMAIL_URL", "STATIC_MANIFEST", "PYTEST", "ACCOUNT_"))
    }
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "1",
            "DJANGO_SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
            "DJANGO_ALLOWED_HOSTS": "portal.example.com",
        }
    )
    if var_dir is not None:
        # Django's model checks open the database; without DATABASE_URL that is var/portal.sqlite3,
        # and var/ does not exist in a fresh checkout.
        env["PORTAL_VAR_DIR"] = str(var_dir)
    return env


def test_manage_py_check_deploy_reports_no_issues_in_production_settings(tmp_path):
    manage = Path(settings.BASE_DIR) / "manage.py"

    result = subprocess.run(
        [sys.executable, str(manage), "check", "--deploy", "--fail-level", "WARNING"],
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=settings.BASE_DIR,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "no issues" in output, output


@pytest.mark.django_db
def test_a_nul_in_the_address_is_refused_with_the_400_page(client_logged_in):
    for path in ["/directory/?q=a%00b", "/purchases/receipts/R-000001%00/", "/admin/?q=%00"]:
        response = client_logged_in.get(path)

        assert response.status_code == 400, path
        assert "We could not read that request" in response.content.decode()
