"""accounts.services: what each write changes, what it leaves alone, and what it announces."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts import services
from accounts.models import Customer, TaxIdStatus
from accounts.signals import contact_changed
from tests.factories import CustomerFactory


@pytest.fixture
def contact_signals():
    """Every `contact_changed` sent during the test, with the transaction state at sending time."""
    received = []

    def receiver(sender, customer, changed_fields, by, **kwargs):
        received.append(
            {
                "sender": sender,
                "customer": customer,
                "changed_fields": changed_fields,
                "by": by,
                "in_atomic_block": connection.in_atomic_block,
            }
        )

    contact_changed.connect(receiver, weak=False, dispatch_uid="tests.contact_signals")
    yield received
    contact_changed.disconnect(dispatch_uid="tests.contact_signals")


def _updates_of_customer(queries):
    return [q["sql"] for q in queries if q["sql"].startswith('UPDATE "accounts_customer"')]


def _writes(queries):
    return [q["sql"] for q in queries if q["sql"].split(" ", 1)[0] in {"INSERT", "UPDATE", "DELETE"}]


# --- customer_update_contact ---------------------------------------------------------------


def test_update_contact_sends_signal_with_exactly_the_changed_fields(customer, contact_signals):
    customer.refresh_from_db()
    data = {
        "full_name": "Ada Lovelace",
        "city": "London",
        "address_line1": customer.address_line1,  # unchanged
        "country": "GB",  # unchanged, given as a code while the instance holds a Country
    }

    changed = services.customer_update_contact(customer=customer, data=data, by=customer.user)

    assert changed == frozenset({"full_name", "city"})
    assert len(contact_signals) == 1
    sent = contact_signals[0]
    assert sent["sender"] is Customer
    assert sent["customer"] == customer
    assert sent["changed_fields"] == frozenset({"full_name", "city"})
    assert sent["by"] == customer.user
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.full_name, stored.city) == ("Ada Lovelace", "London")


def test_update_contact_passes_by_none_for_system_changes(customer, contact_signals):
    services.customer_update_contact(customer=customer, data={"phone": "+44 20 7946 0000"}, by=None)

    assert [s["by"] for s in contact_signals] == [None]
    assert contact_signals[0]["changed_fields"] == frozenset({"phone"})


def test_update_contact_with_nothing_changed_sends_nothing_and_writes_nothing(customer, contact_signals):
    user = customer.user
    customer.refresh_from_db()
    same = {field: getattr(customer, field) for field in ("full_name", "address_line1", "city", "postal_code")}
    same["country"] = "GB"

    with CaptureQueriesContext(connection) as ctx:
        changed = services.customer_update_contact(customer=customer, data=same, by=user)

    assert changed == frozenset()
    assert contact_signals == []
    assert _writes(ctx.captured_queries) == []


def test_update_contact_ignores_fields_that_are_not_contact_fields(customer, stored_row):
    before = stored_row(customer)

    changed = services.customer_update_contact(
        customer=customer,
        data={"is_staff": True, "stripe_customer_id": "cus_evil", "user_id": 999, "bio": "x"},
        by=customer.user,
    )

    assert changed == frozenset()
    assert stored_row(customer) == before


def test_update_contact_saves_only_the_changed_columns(customer):
    # Another writer changed the bio meanwhile; a contact save must not overwrite it with the stale copy.
    Customer.objects.filter(pk=customer.pk).update(bio="written elsewhere")

    with CaptureQueriesContext(connection) as ctx:
        services.customer_update_contact(customer=customer, data={"city": "Leeds"}, by=None)

    [update] = _updates_of_customer(ctx.captured_queries)
    assert '"city"' in update and '"updated_at"' in update
    assert '"full_name"' not in update and '"bio"' not in update
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.city, stored.bio) == ("Leeds", "written elsewhere")


def test_contact_changed_is_sent_inside_the_saving_transaction(customer, stored_row):
    """A receiver that fails undoes the save: the signal runs before the transaction commits."""
    before = stored_row(customer)

    def failing_receiver(**kwargs):
        raise RuntimeError("payment processor unreachable")

    contact_changed.connect(failing_receiver, weak=False, dispatch_uid="tests.failing")
    try:
        with pytest.raises(RuntimeError):
            services.customer_update_contact(customer=customer, data={"full_name": "Rolled Back"}, by=None)
    finally:
        contact_changed.disconnect(dispatch_uid="tests.failing")

    assert stored_row(customer) == before


@pytest.mark.django_db(transaction=True)
def test_contact_changed_receivers_see_an_open_transaction_and_on_commit_runs_after():
    customer = CustomerFactory(user__password=None)
    events = []

    def receiver(**kwargs):
        events.append(("signal", connection.in_atomic_block))
        transaction.on_commit(lambda: events.append(("on_commit", connection.in_atomic_block)))

    contact_changed.connect(receiver, weak=False, dispatch_uid="tests.on_commit")
    try:
        services.customer_update_contact(customer=customer, data={"city": "Bristol"}, by=None)
    finally:
        contact_changed.disconnect(dispatch_uid="tests.on_commit")

    assert events == [("signal", True), ("on_commit", False)]
    assert Customer.objects.get(pk=customer.pk).city == "Bristol"


def test_setting_a_tax_id_marks_it_format_checked(customer, contact_signals):
    services.customer_update_contact(
        customer=customer, data={"tax_id_type": "eu_vat", "tax_id_value": "DE123456788", "country": "DE"}, by=None
    )

    stored = Customer.objects.get(pk=customer.pk)
    assert stored.tax_id_status == TaxIdStatus.FORMAT_VALID
    # The status is bookkeeping, not a contact detail: it is not announced as a change.
    assert contact_signals[0]["changed_fields"] == frozenset({"tax_id_type", "tax_id_value", "country"})


def test_clearing_the_tax_id_resets_its_status(customer):
    Customer.objects.filter(pk=customer.pk).update(
        tax_id_type="gb_vat", tax_id_value="GB980780684", tax_id_status=TaxIdStatus.VERIFIED
    )
    customer.refresh_from_db()

    services.customer_update_contact(customer=customer, data={"tax_id_type": "", "tax_id_value": ""}, by=None)

    assert Customer.objects.get(pk=customer.pk).tax_id_status == TaxIdStatus.NONE


def test_changing_other_contact_fields_keeps_the_tax_id_status(customer):
    Customer.objects.filter(pk=customer.pk).update(
        tax_id_type="gb_vat", tax_id_value="GB980780684", tax_id_status=TaxIdStatus.VERIFIED
    )
    customer.refresh_from_db()

    services.customer_update_contact(customer=customer, data={"city": "York"}, by=None)

    assert Customer.objects.get(pk=customer.pk).tax_id_status == TaxIdStatus.VERIFIED


def test_sync_email_mirrors_the_users_address_and_announces_it(customer, contact_signals):
    customer.user.email = "renamed@example.com"
    customer.user.save()

    changed = services.customer_sync_email(user=customer.user)

    assert changed == frozenset({"email"})
    assert Customer.objects.get(pk=customer.pk).email == "renamed@example.com"
    assert contact_signals[0]["changed_fields"] == frozenset({"email"})


# --- profile and social --------------------------------------------------------------------


def test_update_profile_saves_only_the_changed_fields(customer):
    customer.refresh_from_db()
    Customer.objects.filter(pk=customer.pk).update(city="changed elsewhere")
    data = {
        "time_zone": customer.time_zone,
        "notify_renewal_reminders": False,
        "notify_card_expiry_reminders": True,
        "notify_billing_notices": True,
    }

    with CaptureQueriesContext(connection) as ctx:
        changed = services.customer_update_profile(customer=customer, data=data)

    assert set(changed) == {"notify_renewal_reminders"}
    [update] = _updates_of_customer(ctx.captured_queries)
    assert '"notify_renewal_reminders"' in update
    assert '"time_zone"' not in update and '"city"' not in update
    stored = Customer.objects.get(pk=customer.pk)
    assert stored.notify_renewal_reminders is False
    assert stored.city == "changed elsewhere"


def test_update_profile_without_changes_writes_nothing(customer):
    customer.refresh_from_db()
    data = {"time_zone": customer.time_zone, "notify_renewal_reminders": customer.notify_renewal_reminders}

    with CaptureQueriesContext(connection) as ctx:
        changed = services.customer_update_profile(customer=customer, data=data)

    assert not changed
    assert _writes(ctx.captured_queries) == []


def test_update_profile_ignores_contact_and_protected_fields(customer, stored_row):
    before = stored_row(customer)

    changed = services.customer_update_profile(
        customer=customer, data={"full_name": "Sneaky", "is_staff": True, "stripe_customer_id": "cus_x"}
    )

    assert not changed
    assert stored_row(customer) == before


def test_update_social_saves_only_the_changed_fields(customer):
    customer.refresh_from_db()
    Customer.objects.filter(pk=customer.pk).update(full_name="Renamed Elsewhere")

    with CaptureQueriesContext(connection) as ctx:
        changed = services.customer_update_social(
            customer=customer, data={"x_username": "someone", "bio": customer.bio, "directory_opt_in": True}
        )

    assert set(changed) == {"x_username", "directory_opt_in"}
    [update] = _updates_of_customer(ctx.captured_queries)
    assert '"x_username"' in update and '"directory_opt_in"' in update
    assert '"bio"' not in update and '"full_name"' not in update
    stored = Customer.objects.get(pk=customer.pk)
    assert (stored.x_username, stored.directory_opt_in, stored.full_name) == ("someone", True, "Renamed Elsewhere")


def test_update_social_without_changes_writes_nothing(customer):
    customer.refresh_from_db()

    with CaptureQueriesContext(connection) as ctx:
        changed = services.customer_update_social(customer=customer, data={"bio": customer.bio, "website_url": ""})

    assert not changed
    assert _writes(ctx.captured_queries) == []


def test_profile_and_social_updates_do_not_announce_contact_changes(customer, contact_signals):
    services.customer_update_profile(customer=customer, data={"notify_renewal_reminders": False})
    services.customer_update_social(customer=customer, data={"bio": "Hello"})

    assert contact_signals == []


# --- get_or_create and activity ------------------------------------------------------------


def test_get_or_create_makes_a_contact_record_from_the_users_email(db):
    from tests.factories import UserFactory

    user = UserFactory(password=None)

    customer = services.customer_get_or_create(user=user)

    assert customer.pk is not None
    assert customer.email == user.email
    assert services.customer_get_or_create(user=user) == customer
    assert Customer.objects.filter(user=user).count() == 1


def test_record_activity_sets_last_activity_at(customer):
    assert Customer.objects.get(pk=customer.pk).last_activity_at is None

    services.customer_record_activity(user_id=customer.user_id)

    assert Customer.objects.get(pk=customer.pk).last_activity_at is not None
