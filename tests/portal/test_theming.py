"""A business's theme (PORTAL_THEME_DIR): its templates and static files come before the portal's; the
brand colour from the site settings reaches the stylesheet."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core.cache import caches
from django.core.exceptions import ValidationError

from portal.colours import BRAND_COLOUR_FORMAT, BRAND_COLOUR_TOO_LIGHT, brand_colour_validate, brand_palette, contrast
from portal.models import SiteSettings
from portal.services import site_settings_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def theme(settings, tmp_path):
    """A theme folder searched before the portal's templates and static files, as PORTAL_THEME_DIR makes it."""
    (tmp_path / "templates").mkdir()
    (tmp_path / "static").mkdir()
    settings.TEMPLATES = [{**settings.TEMPLATES[0], "DIRS": [tmp_path / "templates", *settings.TEMPLATES[0]["DIRS"]]}]
    settings.STATICFILES_DIRS = [tmp_path / "static"]
    caches["fragments"].clear()
    caches["data_fragments"].clear()
    yield tmp_path
    caches["fragments"].clear()
    caches["data_fragments"].clear()


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_theme_folder_comes_first_in_the_settings(tmp_path):
    """portal/settings.py reads PORTAL_THEME_DIR: the theme's folders first, the portal's after."""
    script = (
        "import django, json; from django.conf import settings; django.setup(); "
        "print(json.dumps({'templates': [str(d) for d in settings.TEMPLATES[0]['DIRS']], "
        "'static': [str(d) for d in settings.STATICFILES_DIRS]}))"
    )
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_THEME_DIR": str(tmp_path)}
    found = json.loads(
        subprocess.run(
            [sys.executable, "-c", script],
            env=environ,
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )

    assert found["templates"] == [str(tmp_path / "templates"), str(settings.PORTAL_DIR / "templates")]
    assert found["static"] == [str(tmp_path / "static")]


def test_a_themes_base_template_changes_the_sign_in_page(client, theme):
    write(
        theme / "templates",
        "base.html",
        '<!DOCTYPE html><html lang="en"><title>Clay</title><body class="clay-theme">{% block main %}{% block content %}'
        "{% endblock content %}{% endblock main %}</body></html>",
    )

    html = client.get("/accounts/login/").content.decode()

    assert '<body class="clay-theme">' in html
    assert 'name="login"' in html  # the page's own content, inside the theme's layout
    assert "topbar" not in html


def test_a_themes_input_widget_template_changes_the_sign_in_form(client, theme):
    write(
        theme / "templates",
        "django/forms/widgets/input.html",
        '<input class="clay-input" type="{{ widget.type }}" name="{{ widget.name }}"'
        '{% include "django/forms/widgets/attrs.html" %}>',
    )

    html = client.get("/accounts/login/").content.decode()

    assert re.search(r'<input class="clay-input" type="email" name="login"', html)
    assert re.search(r'<input class="clay-input" type="password" name="password"', html)


def test_a_themes_field_partial_and_option_template_change_the_settings_forms(client_logged_in, theme):
    write(theme / "templates", "partials/form_field.html", '<p class="clay-field">{{ field }}</p>')
    write(
        theme / "templates",
        "django/forms/widgets/select_option.html",
        '<option class="clay-option" value="{{ widget.value }}">{{ widget.label }}</option>',
    )

    html = client_logged_in.get("/settings/profile/").content.decode()

    assert html.count('<p class="clay-field">') >= 6
    assert '<option class="clay-option" value="Europe/Berlin">Europe/Berlin</option>' in html  # the long select too


def test_a_themes_static_file_is_found_before_the_portals(client, theme):
    write(theme / "static", "css/portal.css", "body { background: #f5e6d3; }")

    assert Path(finders.find("css/portal.css")) == theme / "static" / "css" / "portal.css"
    assert b"".join(client.get("/static/css/portal.css").streaming_content) == b"body { background: #f5e6d3; }"


# --- The brand colour --------------------------------------------------------------------------------


def test_without_a_brand_colour_pages_carry_no_style_element_and_no_nonce(client):
    response = client.get("/accounts/login/")

    assert "<style" not in response.content.decode()
    assert "nonce-" not in response["Content-Security-Policy"]


def test_the_brand_colour_reaches_the_stylesheet_through_a_style_element_the_policy_allows(client):
    site_settings_update(data={"brand_colour": "#8B2F1C"})

    response = client.get("/accounts/login/")

    html = response.content.decode()
    style = re.search(r'<style nonce="([^"]+)">(.*?)</style>', html, flags=re.S)
    assert style, html
    assert "--brand: #8b2f1c;" in style.group(2) and "--brand-dark: #d1aca4;" in style.group(2)
    style_src = re.search(r"style-src ([^;]+)", response["Content-Security-Policy"]).group(1)
    assert f"'nonce-{style.group(1)}'" in style_src and "'unsafe-inline'" not in style_src


@pytest.mark.parametrize("value", ["3b5bdb", "#3b5bd", "#3b5bdbb", "#3b5bzz", "red", "#3b5bdb;}", ""])
def test_a_brand_colour_is_six_hex_digits(value):
    with pytest.raises(ValidationError) as refused:
        brand_colour_validate(value)

    assert refused.value.messages == [str(BRAND_COLOUR_FORMAT)]


@pytest.mark.parametrize("light", ["#ffdd00", "#7fa7ff", "#ffffff", "#888888"])
def test_a_brand_colour_too_light_for_white_text_is_refused(light):
    with pytest.raises(ValidationError) as refused:
        brand_colour_validate(light)

    assert refused.value.error_list[0].message == BRAND_COLOUR_TOO_LIGHT


@pytest.mark.parametrize("dark", ["#3b5bdb", "#8b2f1c", "#000000", "#1e5b2f", "#6B21A8"])
def test_a_dark_enough_brand_colour_is_accepted_and_every_pairing_reads_at_aa(dark):
    brand_colour_validate(dark)
    palette = brand_palette(dark)

    assert contrast("#ffffff", palette.accent) >= 4.5
    assert contrast(palette.accent_soft, palette.accent) >= 4.5
    assert contrast("#222a45", palette.accent_dark) >= 4.5


def test_the_creator_sets_the_brand_colour_in_admin_and_a_colour_too_light_is_refused(creator_client):
    SiteSettings.objects.get_or_create(pk=1)
    form = creator_client.get("/admin/portal/sitesettings/1/change/").context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value not in (None, False, "") and name != "logo"}

    refused = creator_client.post("/admin/portal/sitesettings/1/change/", {**data, "brand_colour": "#ffdd00"})
    saved = creator_client.post("/admin/portal/sitesettings/1/change/", {**data, "brand_colour": "#8b2f1c"})

    assert refused.status_code == 200 and "too light for white button text" in refused.content.decode()
    assert saved.status_code == 302
    assert SiteSettings.objects.get(pk=1).brand_colour == "#8b2f1c"
