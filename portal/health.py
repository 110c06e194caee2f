"""What a node needs to serve pages, for the system checks and /healthz."""

from django.contrib.staticfiles import finders
from django.db import connection
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

# Page templates only the portal ships (allauth's own pages extend base.html through the portal's
# allauth/layouts/): when these are not found, the portal package was installed without its data.
PAGE_TEMPLATES = (
    "base.html",
    "portal/home.html",
    "accounts/contact.html",
    "billing/index.html",
    "purchases/index.html",
)
# The portal's own static files, which collectstatic must find beside Django's and allauth's.
STATIC_FILES = ("css/portal.css", "js/portal.js")


def templates_unloadable() -> list[str]:
    """Name the page templates that cannot be loaded (missing, or failing to compile)."""
    unloadable = []
    for name in PAGE_TEMPLATES:
        try:
            # Cheap after the first call: the template loader keeps compiled templates.
            get_template(name)
        except (TemplateDoesNotExist, TemplateSyntaxError):
            unloadable.append(name)
    return unloadable


def static_files_missing() -> list[str]:
    """Name the portal's static files that the staticfiles finders do not find."""
    return [path for path in STATIC_FILES if not finders.find(path)]


def database_answers() -> bool:
    """Say whether the default database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return False
    return True
