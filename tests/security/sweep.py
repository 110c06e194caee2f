"""Helpers the security sweeps share: every URL pattern found by walking the URLconf, paths built
from them, a fingerprint of the rows that matter, and the figures written to docs/security.md.

Walking the URLconf (rather than listing pages by hand) is what makes a new page part of every
sweep the day it is added.
"""

import json
import os
import re
from dataclasses import dataclass, field

from django.apps import apps
from django.urls import URLPattern, URLResolver, get_resolver

FIGURES_ENV = "PORTAL_SECURITY_FIGURES"

_ROUTE_ARG = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
_REGEX_GROUP = re.compile(r"\(\?P<(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    """One URL pattern: its full pattern text, its name (with namespace), its view and argument names."""

    pattern: str
    name: str
    callback: object = field(compare=False, repr=False)
    args: tuple[str, ...] = ()
    converters: tuple[str, ...] = ()
    is_regex: bool = False

    @property
    def is_admin(self) -> bool:
        return self.pattern.startswith("admin/")

    @property
    def view_path(self) -> str:
        view = getattr(self.callback, "view_class", None) or self.callback
        module = getattr(view, "__module__", "")
        return f"{module}.{getattr(view, '__qualname__', repr(view))}"

    @property
    def csrf_exempt(self) -> bool:
        return bool(getattr(self.callback, "csrf_exempt", False))

    def path(self, **values) -> str:
        """The request path with each argument replaced by values[name] (str() of it)."""
        if not self.is_regex:
            return "/" + _ROUTE_ARG.sub(lambda m: str(values[m.group("name")]), self.pattern)
        text = self.pattern.replace("^", "").replace("$", "")
        for name in self.args:
            start = text.index(f"(?P<{name}>")
            depth, end = 0, start
            for end in range(start, len(text)):  # the group's closing bracket, nested groups included
                depth += {"(": 1, ")": -1}.get(text[end], 0)
                if depth == 0:
                    break
            text = text[:start] + str(values[name]) + text[end + 1 :]
        return "/" + text.replace("\\", "")


def _route(prefix: str, pattern: URLPattern, namespace: str) -> Route:
    text = prefix + str(pattern.pattern)
    name = f"{namespace}:{pattern.name}" if namespace and pattern.name else (pattern.name or "")
    is_regex = "^" in text or "(?P<" in text
    if is_regex:
        args = tuple(m.group("name") for m in _REGEX_GROUP.finditer(text))
        converters = ("regex",) * len(args)
    else:
        found = list(_ROUTE_ARG.finditer(text))
        args = tuple(m.group("name") for m in found)
        converters = tuple(m.group("converter") or "str" for m in found)
    return Route(text, name, pattern.callback, args, converters, is_regex)


def all_routes() -> list[Route]:
    """Every URL pattern the project serves, nested includes flattened."""

    def walk(patterns, prefix="", namespace=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = ":".join(part for part in [namespace, entry.namespace or ""] if part)
                yield from walk(entry.url_patterns, prefix + str(entry.pattern), inner)
            else:
                yield _route(prefix, entry, namespace)

    return list(walk(get_resolver().url_patterns))


def portal_routes() -> list[Route]:
    return [route for route in all_routes() if not route.is_admin]


def admin_routes() -> list[Route]:
    return [route for route in all_routes() if route.is_admin]


def admin_object_id(route) -> str:
    """An existing row of the model an admin URL is about (its app and model are in the path)."""
    parts = route.pattern.split("/")
    try:
        model = apps.get_model(parts[1], parts[2])
    except (LookupError, IndexError):
        return "1"
    row = model._default_manager.order_by("pk").first()
    return str(row.pk) if row else "1"


def own_path(route, me, *, valid_tokens: bool = False) -> str:
    """The route filled with the signed-in customer's own objects (so the view would act, but for CSRF).

    Tokens are broken ones unless valid_tokens (a valid unsubscribe token acts without CSRF, by design)."""
    own = {
        "billing:card_default": me.cards[0].pk,
        "billing:card_remove": me.cards[0].pk,
        "billing:subscription_cancel": me.subscription.pk,
        "billing:subscription_keep": me.subscription.pk,
        "billing:subscription_pause": me.subscription.pk,
        "billing:subscription_resume": me.subscription.pk,
        "billing:subscription_plan": me.subscription.pk,
        "billing:subscription_scheduled_change_cancel": me.subscription.pk,
        "billing:subscription_pay": me.subscription.pk,
    }
    values = {}
    for name, converter in zip(route.args, route.converters, strict=True):
        if route.is_admin:
            values[name] = admin_object_id(route) if name in {"object_id", "pk", "id"} else "1"
        elif name == "number":
            values[name] = me.receipt.number
        elif name == "year":
            values[name] = me.receipt.issued_at.year
        elif name == "path":
            values[name] = "avatars/" + "0" * 32 + ".webp"
        elif valid_tokens and route.name in {"accounts:hub", "accounts:unsubscribe"}:
            values[name] = _valid_token(route.name, me.customer)
        else:
            values[name] = own.get(route.name, 1 if converter == "int" else "x")
    return route.path(**values)


def _valid_token(name: str, customer) -> str:
    from accounts.hub import hub_link_token
    from accounts.preferences import EMAIL_CATEGORIES, unsubscribe_token_make

    if name == "accounts:hub":
        return hub_link_token.make_token(customer)
    return unsubscribe_token_make(customer=customer, category=EMAIL_CATEGORIES["billing_notices"])


def fingerprint(*models) -> dict:
    """Every row of the given models, as plain values: equal before and after means nothing changed."""
    return {model._meta.label: list(model._default_manager.order_by("pk").values()) for model in models}


def record_figures(check: str, **figures) -> None:
    """Append one check's figures as a JSON line when PORTAL_SECURITY_FIGURES names a file.

    docs/security.md is written from these lines; the tests run the same with or without it.
    """
    target = os.environ.get(FIGURES_ENV)
    if not target:
        return
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"check": check, **figures}, sort_keys=True) + "\n")
