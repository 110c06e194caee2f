"""What counts as activity (docs/architecture.md): sign-in and page views (tests/accounts/test_middleware.py),
purchases and the customer's own changes to their settings; staff edits do not count."""

from datetime import timedelta

from django.utils import timezone

from accounts.activity import customer_record_activity
from accounts.models import Customer
from accounts.services import customer_update_contact, customer_update_profile
from purchases.services import purchase_record
from tests.factories import OfferFactory, UserFactory


def last_activity(customer):
    return Customer.objects.get(pk=customer.pk).last_activity_at


def test_saving_settings_is_activity(client_logged_in, customer):
    before = timezone.now()

    client_logged_in.post("/settings/profile/", {"time_zone": "Europe/Paris"})

    assert before <= last_activity(customer) <= timezone.now()


def test_the_customers_own_contact_change_is_activity(customer):
    customer_update_contact(customer=customer, data={"full_name": "New Name"}, by=customer.user)

    assert last_activity(customer) is not None


def test_a_staff_edit_is_not_the_customers_activity(customer):
    customer_update_contact(customer=customer, data={"full_name": "New Name"}, by=UserFactory(is_staff=True))

    assert last_activity(customer) is None


def test_saving_nothing_new_is_not_activity(customer):
    customer_update_profile(customer=customer, data={"time_zone": customer.time_zone})

    assert last_activity(customer) is None


def test_a_purchase_is_activity_at_the_time_it_was_made(customer):
    bought = timezone.now() - timedelta(days=2)

    purchase_record(customer=customer, offer=OfferFactory(), purchased_at=bought)

    assert last_activity(customer) == bought


def test_activity_never_moves_back_in_time(customer):
    customer_record_activity(user_id=customer.user_id)
    latest = last_activity(customer)

    purchase_record(customer=customer, offer=OfferFactory(), purchased_at=timezone.now() - timedelta(days=30))
    customer_record_activity(user_id=customer.user_id, at=latest - timedelta(minutes=1))

    assert last_activity(customer) == latest
