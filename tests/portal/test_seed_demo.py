"""seed_demo: the three demo users, ready to sign in, however often the command runs."""

import io
import logging
import sys

import pytest
from allauth.account.models import EmailAddress
from django.core.management import call_command
from django.test import Client

from accounts.models import Customer, TaxIdStatus, User
from accounts.signals import contact_changed
from tests.servers import free_port, loopback_server

PASSWORD = "pw-demo-1234"
DEMO = {
    "creator@example.com": {"is_staff": True, "is_superuser": True},
    "support@example.com": {"is_staff": True, "is_superuser": False},
    "customer@example.com": {"is_staff": False, "is_superuser": False},
}


def seed():
    call_command("seed_demo", password=PASSWORD, stdout=io.StringIO())


def test_seed_creates_the_three_users_with_verified_primary_emails(db):
    seed()

    users = {u.email: u for u in User.objects.all()}
    assert set(users) == set(DEMO)
    for email, flags in DEMO.items():
        user = users[email]
        assert {"is_staff": user.is_staff, "is_superuser": user.is_superuser} == flags, email
        assert user.is_active and user.check_password(PASSWORD)
        assert list(EmailAddress.objects.filter(user=user).values_list("email", "verified", "primary")) == [
            (email, True, True)
        ]


def test_seed_fills_in_the_demo_customers_contact_and_social_profile(db):
    seed()

    customer = Customer.objects.get(user__email="customer@example.com")
    assert customer.full_name == "Dana Demo"
    assert customer.email == "customer@example.com"
    assert customer.country.code == "GB"
    assert (customer.tax_id_type, customer.tax_id_status) == ("gb_vat", TaxIdStatus.FORMAT_VALID)
    assert customer.directory_opt_in is True
    assert customer.website_url.startswith("https://")


def test_seed_is_idempotent(db):
    seed()
    first = {
        "users": list(User.objects.order_by("email").values_list("pk", "email")),
        "emails": list(EmailAddress.objects.order_by("email").values_list("pk", "email", "verified", "primary")),
        "customers": list(Customer.objects.order_by("pk").values_list("pk", "user_id", "full_name")),
    }
    announced = []

    def receiver(changed_fields, **kwargs):
        announced.append(changed_fields)

    contact_changed.connect(receiver, weak=False, dispatch_uid="tests.seed_demo")
    try:
        seed()
    finally:
        contact_changed.disconnect(dispatch_uid="tests.seed_demo")

    assert list(User.objects.order_by("email").values_list("pk", "email")) == first["users"]
    assert (
        list(EmailAddress.objects.order_by("email").values_list("pk", "email", "verified", "primary"))
        == (first["emails"])
    )
    assert list(Customer.objects.order_by("pk").values_list("pk", "user_id", "full_name")) == first["customers"]
    assert announced == []  # the second run changed no contact detail


def test_the_demo_customer_signs_in_through_the_login_form(db, sign_in):
    seed()
    client = Client()

    response = sign_in(client, "customer@example.com", PASSWORD)

    assert response["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Dana Demo" in home.content.decode()


def test_seed_resets_a_changed_demo_password(db, sign_in):
    seed()
    user = User.objects.get(email="customer@example.com")
    user.set_password("something-else-entirely")
    user.save()

    seed()

    assert sign_in(Client(), "customer@example.com", PASSWORD)


def test_seed_refuses_a_too_short_password(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("seed_demo", password="abc")
    assert not User.objects.exists()


@pytest.mark.django_db
def test_seed_demo_remakes_the_support_group_when_a_flush_removed_it():
    from django.apps import apps
    from django.contrib.auth.models import Group

    from accounts.models import SUPPORT_GROUP

    with_models = [app.label for app in apps.get_app_configs() if app.models_module is not None]
    Group.objects.filter(name=SUPPORT_GROUP).delete()
    call_command("seed_demo", password=PASSWORD, stdout=io.StringIO())
    support = User.objects.get(email="support@example.com")
    assert support.has_perm("purchases.add_refund") and not support.has_perm("purchases.change_offer")
    # The app registry is left as it was: later flushes recreate content types and permissions from it.
    assert [app.label for app in apps.get_app_configs() if app.models_module is not None] == with_models


def test_seeding_against_localstripe_prints_and_logs_no_warning(db, settings, tmp_path, caplog):
    """What the demo does on purpose (its plan looked up before it exists, a UK VAT number) is no warning."""
    port = free_port()
    command = [sys.executable, "-m", "portal.localstripe", "--port", str(port), "--state", str(tmp_path / "ls.pickle")]
    with loopback_server(command, port=port, name="localstripe") as url:
        settings.PAYMENT_GATEWAY = "billing.gateways.stripe.StripeGateway"
        settings.STRIPE_API_BASE = url
        settings.STRIPE_SECRET_KEY = "sk_test_localstripe"
        out, err = io.StringIO(), io.StringIO()

        with caplog.at_level(logging.WARNING):
            call_command("seed_demo", password=PASSWORD, stdout=out, stderr=err)

    assert err.getvalue() == ""
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert "(active)" in out.getvalue()
    customer = Customer.objects.get(user__email="customer@example.com")
    assert customer.stripe_customer_id and customer.subscriptions.get().status == "active"
