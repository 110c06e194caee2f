import copy

import pytest
from django.core.checks import Tags, run_checks

from portal.queues import worker_heartbeat_record


@pytest.fixture
def templates_not_installed(settings, tmp_path):
    """No loader finds the portal's templates, as when a wheel was built without its package data."""
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0].update(DIRS=[tmp_path], APP_DIRS=False)
    settings.TEMPLATES = templates


def test_healthz_reports_database_and_templates_ok(client, db):
    worker_heartbeat_record()

    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "database", "templates", "cache", "worker")} == {
        "status": "ok",
        "database": "ok",
        "templates": "ok",
        "cache": "ok",
        "worker": "ok",
    }
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]


def test_healthz_answers_503_when_the_page_templates_are_missing(client, db, templates_not_installed):
    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"], body["templates"]) == ("error", "ok", "missing")


def test_the_system_check_names_each_page_template_it_cannot_load(templates_not_installed):
    errors = [error for error in run_checks(tags=[Tags.templates]) if error.id == "portal.E002"]

    assert [error.msg for error in errors] == [
        "The page template 'base.html' cannot be loaded.",
        "The page template 'portal/home.html' cannot be loaded.",
        "The page template 'accounts/contact.html' cannot be loaded.",
        "The page template 'billing/index.html' cannot be loaded.",
        "The page template 'purchases/index.html' cannot be loaded.",
    ]


def test_the_system_check_reports_the_portals_static_files_when_not_found(settings):
    settings.STATICFILES_FINDERS = ["django.contrib.staticfiles.finders.FileSystemFinder"]

    errors = [error for error in run_checks(tags=[Tags.staticfiles]) if error.id == "portal.E003"]

    assert [error.msg for error in errors] == [
        "The static file 'css/portal.css' is not found.",
        "The static file 'js/portal.js' is not found.",
    ]


def test_the_system_checks_pass_with_the_portal_installed():
    assert [
        error.id for error in run_checks(tags=[Tags.templates, Tags.staticfiles]) if error.id.startswith("portal.")
    ] == []


def test_home_requires_sign_in(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_home_shows_the_customers_details(client_logged_in, customer):
    response = client_logged_in.get("/")
    assert response.status_code == 200
    assert customer.full_name in response.content.decode()
    assert response["Cache-Control"].count("no-store") == 1
