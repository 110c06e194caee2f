"""Finding 14: allauth's email links lead to PORTAL_SITE_URL whatever Host a request names, and a NUL in
an address answers 400 with one log line, not a traceback each time."""

import logging
import re

import pytest
from django.conf import settings
from django.core import mail
from django.core.cache import cache
from django.test import Client

from tests.factories import CustomerFactory

from .sweep import record_figures

pytestmark = pytest.mark.django_db

FORGED_HOST = "portal.evil.example"
NEW_PASSWORD = "brand-new-Secret-4711"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(db):
    cache.clear()


@pytest.fixture
def any_host(settings):
    """A deployment whose ALLOWED_HOSTS lets a forged Host through (a wildcard, or a second name)."""
    settings.ALLOWED_HOSTS = ["*"]


def links(message) -> list[str]:
    return re.findall(r"https?://[^\s\"<>]+", message.body)


def from_the_forged_host(path, data):
    client = Client(HTTP_HOST=FORGED_HOST)
    mail.outbox.clear()
    client.post(path, data)
    assert mail.outbox, f"{path} sent no email"
    return mail.outbox


EMAILS = {
    "password reset": lambda customer: ("/accounts/password/reset/", {"email": customer.email}),
    "sign-up verification": lambda customer: (
        "/accounts/signup/",
        {"email": "newcomer@example.com", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    ),
    "unknown account": lambda customer: ("/accounts/password/reset/", {"email": "nobody@example.com"}),
    "account already exists": lambda customer: (
        "/accounts/signup/",
        {"email": customer.email, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    ),
}


@pytest.mark.parametrize("email", EMAILS, ids=EMAILS.keys())
def test_allauths_email_links_lead_to_the_portals_own_address(any_host, email):
    customer = CustomerFactory()
    path, data = EMAILS[email](customer)

    [message] = from_the_forged_host(path, data)

    found = links(message)
    assert found, message.body
    assert FORGED_HOST not in message.body
    assert all(link.startswith(settings.PORTAL_SITE_URL + "/") for link in found), found
    record_figures("email links", email=email, links=len(found), forged_host_links=0)


class Captured(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_records():
    handler = Captured()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.mark.parametrize("path", ["/directory/?q=a%00b", "/accounts/login/?next=%00", "/purchases/receipts/R-1%00/"])
def test_a_nul_in_the_address_answers_400_with_one_log_line_and_no_traceback(client_logged_in, log_records, path):
    response = client_logged_in.get(path)

    assert response.status_code == 400
    assert "We could not read that request" in response.content.decode()
    request_records = [record for record in log_records if record.name.startswith("django.")]
    assert len(request_records) == 1, [record.getMessage() for record in request_records]
    [record] = request_records
    assert record.exc_info is None, "a traceback is logged for every NUL anyone sends"
    assert "\x00" not in record.getMessage()
    record_figures("nul", path=path, log_lines=1, tracebacks=0)
