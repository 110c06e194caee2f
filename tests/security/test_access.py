"""Every URL pattern, found by walking the URLconf: anonymous visitors are sent to sign in or refused,
and a signed-in customer asking for another customer's object (by our id or by Stripe's) gets 404 and
changes nothing."""

import pytest
from django.core import signing
from django.test import Client
from django.utils.http import int_to_base36

from accounts.hub import hub_link_token
from accounts.preferences import UNSUBSCRIBE_SALT
from billing.gateways.fake import FakeGateway

from .conftest import signed_in
from .sweep import all_routes, own_path, portal_routes, record_figures

pytestmark = pytest.mark.django_db

SIGN_IN_PREFIXES = ("/accounts/login/", "/admin/login/")
REFUSED = {400, 403, 404, 405}

# (pattern, method) that answer an anonymous visitor with something other than sign-in or a refusal.
# A new entry here is a decision: the sweep fails until a new public page is added with its reason.
PUBLIC = {
    ("healthz", "get"): "load balancers' health check; says ok, degraded or unavailable per part, and queue figures",
    ("favicon.ico", "get"): "redirect to the static icon",
    ("favicon.ico", "post"): "redirect to the static icon",
    ("hub/new-link/", "get"): "ask for a fresh hub link: answers the same for every address",
    ("accounts/login/", "get"): "sign-in",
    ("accounts/login/", "post"): "sign-in (rate-limited)",
    ("accounts/logout/", "get"): "signing out nobody: a redirect home",
    ("accounts/logout/", "post"): "signing out nobody: a redirect home",
    ("accounts/inactive/", "get"): "allauth's static 'account inactive' page",
    ("accounts/signup/", "get"): "sign-up (ACCOUNT_SIGNUP_OPEN)",
    ("accounts/signup/", "post"): "sign-up (rate-limited)",
    ("accounts/confirm-email/", "get"): "allauth's static 'check your email' page",
    ("accounts/password/reset/", "get"): "password reset request",
    ("accounts/password/reset/", "post"): "password reset request (rate-limited, no enumeration)",
    ("accounts/^confirm-email/(?P<key>[-:\\w]+)/$", "get"): "allauth's confirm page; a wrong key says so",
    ("accounts/password/reset/key/done/", "get"): "allauth's static 'password changed' page",
    ("accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$", "get"): "allauth: a wrong key says so",
    ("accounts/^password/reset/key/(?P<uidb36>[0-9A-Za-z]+)-(?P<key>.+)/$", "post"): "allauth: a wrong key says so",
    ("accounts/password/reset/done/", "get"): "allauth's static 'email sent' page",
    ("accounts/login/code/", "get"): "sign-in by emailed code",
    ("accounts/login/code/", "post"): "sign-in by emailed code (rate-limited)",
    ("admin/logout/", "get"): "signing out nobody: a redirect to the admin, which asks to sign in",
    ("admin/logout/", "post"): "signing out nobody: a redirect to the admin, which asks to sign in",
}

# Portal pages that take an object, by URL name, and which kind of object.
OBJECT_ROUTES = {
    "billing:card_default": "card",
    "billing:card_remove": "card",
    "billing:subscription_cancel": "subscription",
    "billing:subscription_keep": "subscription",
    "billing:subscription_pause": "subscription",
    "billing:subscription_resume": "subscription",
    "billing:subscription_plan": "subscription",
    "billing:subscription_scheduled_change_cancel": "subscription",
    "billing:subscription_pay": "subscription",
    "purchases:receipt": "receipt",
    "purchases:receipt_pdf": "receipt",
    "purchases:receipt_correct": "receipt",
    "purchases:receipt_resend": "receipt",
    "accounts:hub": "hub token",
    "accounts:unsubscribe": "unsubscribe token",
}
# Portal pages whose argument is not an object of one customer, with the reason.
NOT_OBJECT_ROUTES = {
    "account_confirm_email": "allauth's email-confirmation key: a random secret allauth stores and checks",
    "account_reset_password_from_key": "allauth's password-reset key: a random secret allauth checks",
    "purchases:receipts_year_zip": "a year: the archive holds only the signed-in customer's own receipts of it",
    "": "media: avatars under random 128-bit names (public by design, the directory shows them) and the logo",
}


def dummy_path(route) -> str:
    values = {}
    for name, converter in zip(route.args, route.converters, strict=True):
        values[name] = {"int": 1, "path": "1"}.get(converter, "x")
        if route.name == "" and name == "path":
            values[name] = "avatars/" + "0" * 32 + ".webp"
    return route.path(**values)


def anonymous_outcome(response) -> str:
    location = response.get("Location", "")
    if response.status_code in (301, 302) and location.startswith(SIGN_IN_PREFIXES):
        return "sign-in"
    if response.status_code in REFUSED:
        return "refused"
    assert response.status_code < 500, response.status_code
    return "open"


def test_anonymous_visitors_are_sent_to_sign_in_or_refused_on_every_url(client, world, guarded_rows):
    before = guarded_rows()
    routes = all_routes()
    tally = {"sign-in": 0, "refused": 0, "open": 0}
    opened = set()
    for route in routes:
        for method in ("get", "post"):
            result = anonymous_outcome(getattr(client, method)(dummy_path(route)))
            tally[result] += 1
            if result == "open":
                opened.add((route.pattern, method))

    assert opened == set(PUBLIC), "a page answers anonymous visitors: send it to sign-in or list it in PUBLIC"
    assert guarded_rows() == before
    assert client.session.get("_auth_user_id") is None
    record_figures("anonymous", patterns=len(routes), requests=2 * len(routes), **tally)


def test_every_portal_page_that_takes_an_argument_is_in_the_object_sweep():
    with_args = {route.name for route in portal_routes() if route.args}
    assert with_args == set(OBJECT_ROUTES) | set(NOT_OBJECT_ROUTES)


def forged_hub_tokens(me, victim) -> list[str]:
    """The victim's id in my genuine token, and a token for the victim hashed with a guessed secret."""
    mine = hub_link_token.make_token(me.customer)
    _id, timestamp, digest = mine.split("-")
    guessed = hub_link_token._make_token_with_timestamp(
        victim.customer, hub_link_token._num_seconds(hub_link_token._now()), "guessed-secret"
    )
    return [f"{int_to_base36(victim.customer.pk)}-{timestamp}-{digest}", guessed]


def forged_unsubscribe_tokens(me, victim) -> list[str]:
    """The victim's id under my token's signature, and one signed with a guessed key."""
    mine = signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"c": me.customer.pk, "k": "billing_notices"})
    _payload, signature = mine.rsplit(":", 1)
    victims_payload = signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object(
        {"c": victim.customer.pk, "k": "billing_notices"}
    )
    return [
        victims_payload.rsplit(":", 1)[0] + ":" + signature,
        signing.Signer(key="guessed-secret", salt=UNSUBSCRIBE_SALT).sign_object(
            {"c": victim.customer.pk, "k": "billing_notices"}
        ),
    ]


def victim_ids(kind: str, me, victim) -> list:
    """The ids another customer could try: ours (pk, number) and the processor's."""
    if kind == "card":
        return [c.pk for c in victim.cards] + [c.stripe_payment_method_id for c in victim.cards]
    if kind == "subscription":
        return [victim.subscription.pk, victim.subscription.stripe_subscription_id]
    if kind == "receipt":
        others = [receipt.number for receipt in victim.customer.receipts.all()]
        purchase = victim.purchase
        return [*others, victim.receipt.pk, purchase.pk, purchase.stripe_invoice_id, purchase.stripe_charge_id]
    if kind == "hub token":
        return forged_hub_tokens(me, victim)
    if kind == "unsubscribe token":
        return forged_unsubscribe_tokens(me, victim)
    raise AssertionError(kind)


def own_id(kind: str, me):
    return {"card": me.cards[0].pk, "subscription": me.subscription.pk, "receipt": me.receipt.number}.get(kind)


def test_another_customers_objects_are_not_found_by_our_id_or_stripes_and_nothing_changes(client, world, guarded_rows):
    me, victim = world
    signed_in(client, me.customer.user)
    client.get("/")  # records my visit now (at most once per interval), so the snapshot below stays still
    writes_before = len(FakeGateway.calls)
    before = guarded_rows()
    tried = 0
    expected = {"card": 404, "subscription": 404, "receipt": 404, "hub token": 400, "unsubscribe token": 400}
    for route in portal_routes():
        kind = OBJECT_ROUTES.get(route.name)
        if kind is None:
            continue
        [arg] = route.args
        if own_id(kind, me) is not None:  # the control: my own object is found
            assert client.get(route.path(**{arg: own_id(kind, me)})).status_code != 404, route.pattern
        for value in victim_ids(kind, me, victim):
            for method in ("get", "post"):
                response = getattr(client, method)(route.path(**{arg: value}))
                tried += 1
                allowed = {expected[kind], 405}  # 405: a page that takes only the other method
                assert response.status_code in allowed, (method, route.pattern, value, response.status_code)
    # The card form takes a Stripe SetupIntent id in its body: the victim's is refused too.
    intent = FakeGateway().setup_intent_create(customer_id=victim.customer.stripe_customer_id, idempotency_key="k")
    FakeGateway().setup_intent_confirm(setup_intent_id=intent.id, payment_method_id="pm_victims_new")
    response = client.post("/billing/cards/new/", {"setup_intent": intent.id})
    tried += 1
    assert response.status_code == 400

    assert guarded_rows() == before
    assert int(client.session["_auth_user_id"]) == me.customer.user.pk  # no forged link signed me in as them
    assert [call for call, _ in FakeGateway.calls[writes_before:] if call != "setup_intent_create"] == []
    record_figures("objects", routes=len(OBJECT_ROUTES), requests=tried, changed=0)


def test_no_page_shows_another_customers_details(client, world):
    """Every page a customer opens, their own object pages included, shows nothing of another customer."""
    me, victim = world
    signed_in(client, me.customer.user)
    pages = 0
    for route in portal_routes():
        response = client.get(own_path(route, me, valid_tokens=True))
        if response.status_code != 200 or not response.get("Content-Type", "").startswith("text/html"):
            continue
        pages += 1
        body = response.content.decode()
        for marker in victim.markers:
            assert marker not in body, (route.pattern, marker)
    assert pages >= 15
    assert me.customer.full_name in client.get("/settings/contact/").content.decode()  # the markers would show
    record_figures("no leaks", pages=pages, markers=len(victim.markers))


def test_an_inactive_customers_session_opens_no_page(world):
    me, _victim = world
    client = signed_in(Client(), me.customer.user)
    me.customer.user.is_active = False
    me.customer.user.save(update_fields=["is_active"])
    for route in portal_routes():
        if route.args or route.pattern in {pattern for pattern, _ in PUBLIC}:
            continue
        response = client.get(route.path())
        assert anonymous_outcome(response) in {"sign-in", "refused"}, route.pattern
