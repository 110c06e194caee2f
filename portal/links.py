"""Absolute links to the portal, for emails and other places outside a request."""

from urllib.parse import urljoin

from django.conf import settings


def absolute_url(path: str) -> str:
    """The portal's public address (PORTAL_SITE_URL) joined with a path; absolute URLs pass through."""
    return urljoin(settings.PORTAL_SITE_URL + "/", path)
