"""CSRF: the only exempt views are the Stripe webhook and the RFC 8058 one-click unsubscribe, found by
scanning every view; every other URL refuses a POST without a token and changes nothing."""

import ast
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from .conftest import signed_in
from .sweep import all_routes, own_path, record_figures

pytestmark = pytest.mark.django_db

# Each is authenticated by a signature instead: Stripe's on the raw body, ours on the token.
CSRF_EXEMPT = {"stripe/webhook/", "email/unsubscribe/<str:token>/"}
CSRF_EXEMPT_VIEWS = {"billing.views.stripe_webhook", "accounts.views.unsubscribe"}
OUR_APPS = ("accounts", "billing", "purchases", "portal")


def test_the_only_csrf_exempt_urls_are_the_webhook_and_the_one_click_unsubscribe():
    exempt = {route.pattern for route in all_routes() if route.csrf_exempt}

    assert exempt == CSRF_EXEMPT
    assert "django.middleware.csrf.CsrfViewMiddleware" in settings.MIDDLEWARE


def _decorator_names(node) -> set[str]:
    names = set()
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        names.add(target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", ""))
    return names


def test_no_other_view_in_our_code_is_csrf_exempt():
    """The source as well as the URLconf: a view not yet routed, or exempted by a call, is caught too."""
    found = set()
    calls = []
    for app in OUR_APPS:
        for source in Path(settings.BASE_DIR, app).rglob("*.py"):
            tree = ast.parse(source.read_text())
            module = ".".join(source.relative_to(settings.BASE_DIR).with_suffix("").parts)
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.ClassDef) and "csrf_exempt" in _decorator_names(node):
                    found.add(f"{module}.{node.name}")
                if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) in {
                    "csrf_exempt"
                }:
                    calls.append(f"{module}:{node.lineno}")

    assert found == CSRF_EXEMPT_VIEWS
    assert calls == []


def test_every_post_without_a_csrf_token_is_refused_and_changes_nothing(world, creator, guarded_rows):
    me, _victim = world
    customer_browser = signed_in(Client(enforce_csrf_checks=True), me.customer.user)
    creator_browser = signed_in(Client(enforce_csrf_checks=True), creator)
    customer_browser.get("/")  # records the visit first, so only a forged POST could change a row
    creator_browser.get("/")
    before = guarded_rows()
    refused = exempt = 0
    for route in all_routes():
        browser = creator_browser if route.is_admin else customer_browser
        response = browser.post(own_path(route, me), {"full_name": "Forged", "action": "delete_selected"})
        if route.pattern in CSRF_EXEMPT:
            exempt += 1
            assert response.status_code in (400, 403), route.pattern  # refused by their own signature check
            continue
        assert response.status_code == 403, (route.pattern, response.status_code)
        refused += 1

    assert guarded_rows() == before
    assert customer_browser.get("/").status_code == 200  # still signed in: logout was refused too
    assert creator_browser.get("/admin/").status_code == 200
    record_figures("csrf", patterns=refused + exempt, refused=refused, exempt=exempt)
