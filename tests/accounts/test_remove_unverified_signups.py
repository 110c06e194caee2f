"""`manage.py remove_unverified_signups`: sign-ups nobody verified go after UNVERIFIED_SIGNUP_MAX_AGE_DAYS;
every account that holds something, or that staff, an import or Stripe made, stays."""

from datetime import timedelta
from io import StringIO

import pytest
from allauth.account.models import EmailAddress
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Customer, User
from accounts.services import customer_create
from tests.factories import CustomerFactory, RecordedPurchaseFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Signed-up-password-3"


def signed_up(email: str, *, days_ago: float) -> User:
    """An account made on the sign-up page, as if `days_ago` days ago, its address never verified."""
    Client().post("/accounts/signup/", {"email": email, "password1": PASSWORD, "password2": PASSWORD})
    user = User.objects.get(email=email)
    User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=days_ago))
    return user


def remove(*args) -> str:
    out = StringIO()
    call_command("remove_unverified_signups", *args, stdout=out)
    return out.getvalue()


def test_an_unverified_sign_up_older_than_the_limit_is_removed_with_its_records(settings):
    settings.UNVERIFIED_SIGNUP_MAX_AGE_DAYS = 7
    old = signed_up("old@example.com", days_ago=8)
    recent = signed_up("recent@example.com", days_ago=6)

    output = remove()

    assert "Removed 1 unverified sign-ups older than 7 days." in output
    assert not User.objects.filter(pk=old.pk).exists()
    assert not Customer.objects.filter(user_id=old.pk).exists()
    assert not EmailAddress.objects.filter(email="old@example.com").exists()
    assert User.objects.filter(pk=recent.pk).exists()
    # The address is free again: its owner can sign up with it.
    Client().post("/accounts/signup/", {"email": "old@example.com", "password1": PASSWORD, "password2": PASSWORD})
    assert User.objects.filter(email="old@example.com").exists()


def test_the_days_option_overrides_the_setting():
    user = signed_up("two-days@example.com", days_ago=2)

    remove("--days", "1")

    assert not User.objects.filter(pk=user.pk).exists()


def test_a_day_count_below_one_is_refused():
    with pytest.raises(CommandError, match="--days must be 1 or more"):
        remove("--days", "0")


def test_accounts_that_hold_something_or_were_made_by_staff_or_stripe_stay(creator):
    def long_ago(user):
        User.objects.filter(pk=user.pk).update(date_joined=timezone.now() - timedelta(days=30))
        return user

    verified = long_ago(CustomerFactory().user)
    added_by_staff = long_ago(customer_create(email="added@example.com", by=creator).user)
    from_stripe = long_ago(User.objects.create_user(email="paid@example.com", password=None))
    with_purchase = long_ago(signed_up("bought@example.com", days_ago=30))
    RecordedPurchaseFactory(customer=with_purchase.customer)
    with_subscription = signed_up("subscribed@example.com", days_ago=30)
    SubscriptionFactory(customer=with_subscription.customer)
    with_stripe_id = signed_up("stripe-id@example.com", days_ago=30)
    Customer.objects.filter(user=with_stripe_id).update(stripe_customer_id="cus_123")
    signed_in_once = signed_up("signed-in@example.com", days_ago=30)
    User.objects.filter(pk=signed_in_once.pk).update(last_login=timezone.now() - timedelta(days=29))
    staff = long_ago(UserFactory(is_staff=True))
    EmailAddress.objects.filter(user=staff).update(verified=False)
    kept = [verified, added_by_staff, from_stripe, with_purchase, with_subscription, with_stripe_id, signed_in_once]

    assert "Removed 0 unverified sign-ups" in remove()

    assert User.objects.filter(pk__in=[user.pk for user in [*kept, staff]]).count() == len(kept) + 1
