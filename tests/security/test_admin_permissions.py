"""The console's permission matrix, generic over admin.site._registry and every admin URL: a plain
customer is sent to sign in for every page and action; Support (the group made by migration) is
refused every change it holds no permission for, offers, products and the site settings included;
the creator opens every page without a server error.

tests/portal/test_roles.py checks named pages and actions one by one; this sweep makes sure a model
or admin page added later is covered too."""

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import Client, RequestFactory
from django.urls import reverse

from accounts.models import SUPPORT_GROUP
from portal.models import SiteSettings
from purchases.models import Offer, Product

from .conftest import signed_in
from .sweep import admin_object_id, admin_routes, fingerprint, record_figures
from .test_headers import assert_production_headers

pytestmark = pytest.mark.django_db

ADMIN_LOGIN = "/admin/login/"
# Support must never change what is sold or how the site works.
CREATOR_ONLY = (Offer, Product, SiteSettings)


def _admin_path(route) -> str:
    values = {name: (admin_object_id(route) if name in {"object_id", "pk", "id"} else "1") for name in route.args}
    return route.path(**values)


def _request_as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def test_the_support_group_exists_made_by_a_migration():
    group = Group.objects.get(name=SUPPORT_GROUP)  # the test database is built by the migrations alone

    assert group.permissions.exists()


def test_a_customer_is_sent_to_sign_in_on_every_admin_url(world, guarded_rows):
    me, _victim = world
    client = signed_in(Client(), me.customer.user)
    client.get("/")
    before = guarded_rows()
    routes = [route for route in admin_routes() if route.name != "admin:logout"]
    requests = 0
    for route in routes:
        for method in ("get", "post"):
            response = getattr(client, method)(_admin_path(route), {"action": "delete_selected", "post": "yes"})
            requests += 1
            if route.name == "admin:login":  # signed in, but not staff: refused outright
                assert response.status_code == 403, method
                continue
            assert response.status_code == 302, (method, route.pattern, response.status_code)
            assert response["Location"].startswith(ADMIN_LOGIN), (method, route.pattern, response["Location"])

    assert guarded_rows() == before
    record_figures("admin customer", patterns=len(routes), requests=requests, opened=0)


def test_a_customer_gets_no_admin_action(world):
    me, _victim = world
    client = signed_in(Client(), me.customer.user)
    tried = 0
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.get_actions(_request_as_superuser()):
            before = fingerprint(model)
            pks = list(model._default_manager.values_list("pk", flat=True)[:50])
            response = client.post(_changelist(model), {"action": name, "_selected_action": pks, "post": "yes"})
            tried += 1
            assert response.status_code == 302 and response["Location"].startswith(ADMIN_LOGIN), (model, name)
            assert fingerprint(model) == before, (model, name)
    record_figures("admin actions customer", actions=tried, performed=0)


def _request_as_superuser():
    from accounts.models import User

    return _request_as(User(is_staff=True, is_superuser=True, is_active=True))


def test_support_is_refused_every_change_it_has_no_permission_for(world, support_user):
    client = signed_in(Client(), support_user)
    refused = 0
    for model in admin.site._registry:
        opts = model._meta
        row = model._default_manager.order_by("pk").first()
        urls = {}
        if not support_user.has_perm(f"{opts.app_label}.add_{opts.model_name}"):
            urls["add"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        if row is not None and not support_user.has_perm(f"{opts.app_label}.change_{opts.model_name}"):
            urls["change"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
        if row is not None and not support_user.has_perm(f"{opts.app_label}.delete_{opts.model_name}"):
            urls["delete"] = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[row.pk])
        for kind, url in urls.items():
            before = fingerprint(model)
            response = client.post(url, {"name": "Changed by support", "price_amount": 1, "post": "yes"})
            assert response.status_code == 403, (opts.label, kind, response.status_code)
            assert fingerprint(model) == before, (opts.label, kind)
            refused += 1
    record_figures("admin support refused", posts=refused, changed=0)


def test_support_is_offered_no_action_it_holds_no_permission_for(world, support_user):
    client = signed_in(Client(), support_user)
    offered = refused = 0
    for model, model_admin in admin.site._registry.items():
        support_actions = set(model_admin.get_actions(_request_as(support_user)))
        for name, action in model_admin.get_actions(_request_as_superuser()).items():
            needed = getattr(action.func, "allowed_permissions", ())
            holds = all(getattr(model_admin, f"has_{perm}_permission")(_request_as(support_user)) for perm in needed)
            if name in support_actions:
                assert holds and name != "delete_selected", (model._meta.label, name)
                offered += 1
                continue
            before = fingerprint(model)
            pks = list(model._default_manager.values_list("pk", flat=True)[:50])
            response = client.post(_changelist(model), {"action": name, "_selected_action": pks, "post": "yes"})
            # 302 "no action selected", 403 no access to the list, 200 the list again with nothing done.
            assert response.status_code in (200, 302, 403), (model._meta.label, name, response.status_code)
            assert fingerprint(model) == before, (model._meta.label, name)
            refused += 1
    record_figures("admin actions support", offered=offered, refused=refused)


def test_support_cannot_change_offers_products_or_the_site_settings(world, support_user):
    client = signed_in(Client(), support_user)
    for model in CREATOR_ONLY:
        model_admin = admin.site._registry[model]
        request = _request_as(support_user)
        row = model._default_manager.order_by("pk").first()
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request, row), model
        assert not model_admin.has_delete_permission(request, row), model
        assert {name for name in model_admin.get_actions(request)} == set(), model
        before = fingerprint(model)
        opts = model._meta
        change = client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk]), {"name": "x"})
        assert change.status_code == 403
        assert fingerprint(model) == before


def test_the_creator_opens_every_admin_page_without_a_server_error_and_with_the_security_headers(
    world, creator_client, production_https
):
    """Every admin URL as the creator, with production's HTTPS settings: no 5xx; on every HTML page
    the same headers test_headers asserts on the portal's pages (no-store included: staff pages)."""
    creator_client.raise_request_exception = False
    pages, html, errors = 0, 0, []
    for route in admin_routes():
        if route.name in {"admin:logout"}:
            continue
        response = creator_client.get(_admin_path(route), secure=True)
        pages += 1
        if response.status_code >= 500:
            errors.append(route.pattern)
        if response.get("Content-Type", "").startswith("text/html"):
            assert_production_headers("creator", route.pattern, response)
            html += 1
    record_figures("admin creator pages", pages=pages, html=html, errors=len(errors))
    assert errors == [], "5xx: " + "; ".join(errors)
