"""Forms ignore fields they do not offer: every POST form found on the portal's pages is submitted
with its own fields plus `is_staff`, `user`, another customer's ids, Stripe ids and the like, and
none of those reach the database."""

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group, Permission
from django.test import Client

from accounts.models import Customer, User
from billing.models import Card, Subscription
from portal.models import SiteSettings
from portal.services import site_settings_update
from purchases.models import Purchase, Receipt

from .conftest import signed_in
from .htmlforms import post_forms
from .sweep import own_path, portal_routes, record_figures

pytestmark = pytest.mark.django_db

# Customer and user fields no customer form may set, whatever it posts.
PROTECTED_CUSTOMER_FIELDS = [
    "user_id",
    "email",
    "stripe_customer_id",
    "tax_id_status",
    "custom_field_values",
    "external_user_id",
    "created_at",
    "avatar",
    "directory_opt_in",
    "full_name",
]
PROTECTED_USER_FIELDS = ["email", "is_staff", "is_superuser", "is_active", "date_joined"]


def extra_fields(victim) -> dict:
    """Fields an attacker adds to a form: privileges, ownership, Stripe ids, bookkeeping."""
    return {
        "is_staff": "on",
        "is_superuser": "on",
        "is_active": "on",
        "groups": str(Group.objects.get(name="Support").pk),
        "user_permissions": str(Permission.objects.get(codename="change_offer").pk),
        "user": str(victim.customer.user.pk),
        "user_id": str(victim.customer.user.pk),
        "customer": str(victim.customer.pk),
        "customer_id": str(victim.customer.pk),
        "id": str(victim.customer.pk),
        "pk": str(victim.customer.pk),
        "email": "forged@example.com",
        "full_name": "Forged Name",
        "stripe_customer_id": victim.customer.stripe_customer_id,
        "stripe_subscription_id": victim.subscription.stripe_subscription_id,
        "stripe_payment_method_id": victim.cards[0].stripe_payment_method_id,
        "payment_method": victim.cards[0].stripe_payment_method_id,
        "stripe_price_id": "price_free",
        "stripe_invoice_id": victim.purchase.stripe_invoice_id,
        "stripe_charge_id": victim.purchase.stripe_charge_id,
        "tax_id_status": "verified",
        "custom_field_values": '{"vip": "yes"}',
        "external_user_id": "forged-crm-id",
        "directory_opt_in": "on",
        "avatar": "avatars/../../../etc/passwd",
        "created_at": "2000-01-01T00:00:00Z",
        "last_activity_at": "2000-01-01T00:00:00Z",
        "amount": "1",
        "status": "canceled",
        "is_default": "on",
        "receipt_mode": "frozen",
        "processor_attached": "",
        "business_name": "Forged Business",
    }


def protected_state(me, victim) -> dict:
    mine = Customer.objects.filter(pk=me.customer.pk).values(*PROTECTED_CUSTOMER_FIELDS).get()
    user = User.objects.filter(pk=me.customer.user.pk).values(*PROTECTED_USER_FIELDS).get()
    user["groups"] = list(me.customer.user.groups.values_list("pk", flat=True))
    user["permissions"] = list(me.customer.user.user_permissions.values_list("pk", flat=True))
    victims = {
        "customer": list(Customer.objects.filter(pk=victim.customer.pk).values()),
        "user": list(User.objects.filter(pk=victim.customer.user.pk).values()),
        "emails": list(EmailAddress.objects.filter(user=victim.customer.user).values()),
        "cards": list(Card.objects.filter(customer=victim.customer).order_by("pk").values()),
        "subscriptions": list(Subscription.objects.filter(customer=victim.customer).values()),
        "purchases": list(Purchase.objects.filter(customer=victim.customer).order_by("pk").values()),
        "receipts": list(Receipt.objects.filter(customer=victim.customer).order_by("pk").values()),
    }
    my_billing = {
        "cards": sorted(Card.objects.filter(customer=me.customer).values_list("stripe_payment_method_id", "last4")),
        "subscription": list(
            Subscription.objects.filter(customer=me.customer).values("stripe_subscription_id", "amount", "status")
        ),
        "purchases": list(Purchase.objects.filter(customer=me.customer).order_by("pk").values("amount", "status")),
    }
    return {
        "mine": mine,
        "user": user,
        "victim": victims,
        "my_billing": my_billing,
        "site": list(SiteSettings.objects.values()),
    }


def discovered_forms(me):
    """Every POST form on every page a customer or a visitor sees (but signing out); a visitor sees the
    hub link's confirm page, the customer is sent on from it."""
    customer = signed_in(Client(), me.customer.user)
    anonymous = Client()
    forms = []
    for route in portal_routes():
        path = own_path(route, me, valid_tokens=True)
        for who, browser in (("customer", customer), ("anonymous", anonymous)):
            response = browser.get(path)
            if response.status_code == 200 and response.get("Content-Type", "").startswith("text/html"):
                forms += [(who, form) for form in post_forms(path, response.content.decode())]
    unique = {}
    for who, form in forms:
        if form.target.startswith("/accounts/logout/"):
            continue
        unique.setdefault((who, form.target, tuple(sorted(form.names))), (who, form))
    return list(unique.values())


def test_every_form_ignores_the_fields_it_does_not_offer(world):
    me, victim = world
    site_settings_update(data={"receipt_mode": "frozen"})  # frozen mode adds the "corrected copy" form
    forms = discovered_forms(me)
    extras = extra_fields(victim)
    before = protected_state(me, victim)
    posted = 0
    for who, form in forms:
        browser = signed_in(Client(), me.customer.user) if who == "customer" else Client()
        data = form.submission()
        data.update({name: value for name, value in extras.items() if name not in form.names})
        response = browser.post(form.target, data)
        assert response.status_code < 500, (who, form.target)
        posted += 1
        after = protected_state(me, victim)
        assert after["user"] == before["user"], (who, form.target)
        assert after["victim"] == before["victim"], (who, form.target)
        assert after["site"] == before["site"], (who, form.target)
        for name in PROTECTED_CUSTOMER_FIELDS:
            if name not in form.names:
                assert after["mine"][name] == before["mine"][name], (who, form.target, name)
        assert set(after["my_billing"]["cards"]) <= set(before["my_billing"]["cards"]), (who, form.target)
        assert after["my_billing"]["subscription"] == before["my_billing"]["subscription"], (who, form.target)
        assert after["my_billing"]["purchases"] == before["my_billing"]["purchases"], (who, form.target)

    assert posted >= 12
    record_figures("mass assignment", forms=posted, extra_fields=len(extras), accepted=0)
