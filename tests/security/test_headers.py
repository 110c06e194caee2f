"""Security headers on every HTML page the URLconf serves (anonymous, customer and creator): a CSP
without inline script, frame-ancestors 'none', nosniff, Referrer-Policy and no-store on account
pages; with the production HTTPS settings, HSTS on every page and secure cookies.

tests/portal/test_security.py checks a named list of pages and runs `check --deploy`; this sweep
takes every page from the URLconf so a new one is covered the day it is added."""

import pytest
from django.test import Client

from tests.portal.test_security import csp_directives

from .conftest import signed_in
from .sweep import own_path, portal_routes, record_figures

pytestmark = pytest.mark.django_db


def portal_html_pages(me, *, secure: bool):
    """(who, path, response) for every GET of every portal URL pattern that answers an HTML page.

    The admin's pages are swept by test_admin_permissions (as the creator), with the same checks."""
    browsers = {
        "anonymous": Client(raise_request_exception=False),
        "customer": signed_in(Client(raise_request_exception=False), me.customer.user),
    }
    for route in portal_routes():
        if route.name == "account_logout":
            continue
        for who, browser in browsers.items():
            path = own_path(route, me, valid_tokens=True)
            response = browser.get(path, secure=secure)  # a 5xx is reported by the page sweeps; its headers count here
            if response.get("Content-Type", "").startswith("text/html"):
                yield who, path, response


def assert_production_headers(who, path, response):
    """Everything every HTML page must carry with the HTTPS settings on."""
    assert_common_headers(who, path, response)
    hsts = response.get("Strict-Transport-Security", "")
    assert hsts == "max-age=31536000; includeSubDomains; preload", (who, path, hsts)
    for cookie in response.cookies.values():
        deleted = cookie.value == "" and str(cookie["max-age"]) == "0"  # an expiry carries nothing
        assert cookie["secure"] or deleted, (who, path, cookie.key)
    if is_account_page(who, path):
        cache_control = {part.strip() for part in response.get("Cache-Control", "").split(",")}
        assert {"no-store", "private"} <= cache_control, (who, path, response.get("Cache-Control"))


def assert_common_headers(who, path, response):
    where = (who, path, response.status_code)
    directives = csp_directives(response)
    for unsafe in ("'unsafe-inline'", "'unsafe-eval'"):
        assert unsafe not in directives.get("script-src", directives["default-src"]), where
    assert directives["frame-ancestors"] == ["'none'"], where
    assert directives["object-src"] == ["'none'"], where
    assert response["X-Content-Type-Options"] == "nosniff", where
    assert response["Referrer-Policy"] == "same-origin", where
    assert response["X-Frame-Options"] == "DENY", where


def is_account_page(who, path) -> bool:
    return who != "anonymous" or path.startswith(("/accounts/", "/hub/", "/email/unsubscribe/"))


def test_every_html_page_carries_the_security_headers_with_the_production_https_settings(world, production_https):
    """One pass over every page with the HTTPS settings production runs: HSTS, CSP and the rest, no-store."""
    me, _victim = world
    counted = {"anonymous": 0, "customer": 0}
    no_store = 0
    for who, path, response in portal_html_pages(me, secure=True):
        assert_production_headers(who, path, response)
        no_store += is_account_page(who, path)
        counted[who] += 1

    assert min(counted.values()) > 0
    plain = Client().get("/accounts/login/")
    assert plain.status_code == 301 and plain["Location"] == "https://testserver/accounts/login/"
    assert Client().get("/healthz").status_code == 200  # load balancers check over plain HTTP
    record_figures("headers", pages=sum(counted.values()), no_store=no_store, hsts=sum(counted.values()), **counted)
