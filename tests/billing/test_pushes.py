"""Contact changes pushed to the processor (billing.services.pushes): recorded with the change, cleared only
when the processor has the current details, retried with backoff, queued again by the sweep whatever
happened to the task, and given up with an ERROR log and a row in admin after three days."""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DatabaseError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.services import customer_update_contact
from billing.gateways.fake import FakeGateway
from billing.models import CustomerPush
from billing.services import stripe_customer_ensure
from billing.services.pushes import PUSH_RETRY_FOR, retry_delay
from billing.tasks import customer_push
from tests.billing.conftest import calls
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def edit(customer, django_capture_on_commit_callbacks, **data) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        customer_update_contact(customer=customer, data=data, by=customer.user)


def sweep() -> str:
    out = StringIO()
    call_command("sweep", stdout=out)
    return out.getvalue()


def remote_name(gateway, customer) -> str:
    return gateway.customers[customer.stripe_customer_id].name


@pytest.fixture
def broken_push(monkeypatch):
    """The processor call raises what no push expects (a bug, a database error) until mended."""
    broken = {"on": True}
    update = FakeGateway.customer_update

    def customer_update(self, **kwargs):
        if broken["on"]:
            raise DatabaseError("server closed the connection unexpectedly")
        return update(self, **kwargs)

    monkeypatch.setattr(FakeGateway, "customer_update", customer_update)
    return broken


def test_a_contact_edit_records_the_push_with_the_change_and_the_push_clears_it(
    stripe_customer, gateway, django_capture_on_commit_callbacks, run_tasks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        customer_update_contact(customer=stripe_customer, data={"full_name": "Ada Lovelace"}, by=stripe_customer.user)
    assert CustomerPush.objects.filter(customer=stripe_customer).count() == 1  # in the edit's transaction
    assert calls(gateway, "customer_update") == []  # nothing reaches the processor before the save commits
    for callback in callbacks:
        callback()

    assert run_tasks() == 1
    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"
    assert not CustomerPush.objects.exists()
    key = calls(gateway, "customer_update")[-1]["idempotency_key"]
    assert key.startswith(f"portal:customer-push:{stripe_customer.pk}:")
    # A task run again (the queue handed it out twice) finds nothing waiting and calls nobody.
    assert customer_push.call(stripe_customer.pk) is False
    assert len(calls(gateway, "customer_update")) == 1


def test_each_change_is_pushed_under_a_key_of_its_own_so_a_change_back_is_never_swallowed(
    stripe_customer, gateway, django_capture_on_commit_callbacks, run_tasks
):
    for name in ["Ada Lovelace", "Ada King", "Ada Lovelace"]:
        edit(stripe_customer, django_capture_on_commit_callbacks, full_name=name)
        run_tasks()
    keys = [c["idempotency_key"] for c in calls(gateway, "customer_update")]
    assert len(set(keys)) == 3
    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"


def test_a_change_made_while_its_push_is_on_the_way_stays_recorded_until_the_processor_has_it(
    stripe_customer, gateway, monkeypatch
):
    """The push read the details, then the customer changed them again before it finished: the push must
    not clear the newer change, which the processor has not seen."""
    customer_update_contact(customer=stripe_customer, data={"full_name": "Ada Lovelace"}, by=None)
    update = FakeGateway.customer_update

    def changed_meanwhile(self, **kwargs):
        monkeypatch.setattr(FakeGateway, "customer_update", update)
        customer_update_contact(customer=stripe_customer, data={"full_name": "Ada King"}, by=None)
        return update(self, **kwargs)

    monkeypatch.setattr(FakeGateway, "customer_update", changed_meanwhile)
    assert customer_push.call(stripe_customer.pk) is True

    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"
    assert CustomerPush.objects.filter(customer=stripe_customer).exists()  # "Ada King" still waits
    assert customer_push.call(stripe_customer.pk) is True
    assert remote_name(gateway, stripe_customer) == "Ada King"
    assert not CustomerPush.objects.exists()


def test_a_push_whose_task_raises_an_unexpected_error_is_pushed_later_by_the_sweep(
    stripe_customer, gateway, django_capture_on_commit_callbacks, run_tasks, broken_push, time_machine
):
    """On the database queue a task that raises is marked failed and never run again by the queue."""
    edit(stripe_customer, django_capture_on_commit_callbacks, full_name="Ada Lovelace")
    with pytest.raises(AssertionError, match="task billing.tasks.customer_push failed"):
        run_tasks()
    assert DBTaskResult.objects.get(task_path="billing.tasks.customer_push").status == "FAILED"
    broken_push["on"] = False  # the database is back, or the bug is fixed and deployed

    assert "0 Stripe push(es) queued again" in sweep()  # not overdue yet
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    assert "1 Stripe push(es) queued again" in sweep()
    assert run_tasks() == 1

    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"
    assert not CustomerPush.objects.exists()
    assert "0 Stripe push(es) queued again" in sweep()


def test_a_push_whose_task_keeps_raising_is_queued_again_with_growing_waits(
    stripe_customer, django_capture_on_commit_callbacks, run_tasks, broken_push, time_machine
):
    time_machine.move_to(timezone.now(), tick=False)
    edit(stripe_customer, django_capture_on_commit_callbacks, full_name="Ada Lovelace")
    with pytest.raises(AssertionError):
        run_tasks()
    requeued_at = []
    for _ in range(60 * 8):  # eight hours of sweeps every minute
        time_machine.move_to(timezone.now() + timedelta(minutes=1))
        if "1 Stripe push(es) queued again" in sweep():
            requeued_at.append(timezone.now())
            with pytest.raises(AssertionError):
                run_tasks()
    waits = [round((b - a).total_seconds() / 60) for a, b in zip(requeued_at, requeued_at[1:], strict=False)]
    assert waits[:5] == [12, 13, 15, 19, 27]  # the backoff (1, 2, 4, 8, 16 min) plus the sweep's 10 min grace
    assert len(requeued_at) < 15


def test_a_refused_push_is_retried_with_backoff_then_gives_up_after_three_days_with_an_error(
    stripe_customer, gateway, django_capture_on_commit_callbacks, run_tasks, time_machine, caplog
):
    time_machine.move_to(timezone.now(), tick=False)
    start = timezone.now()
    edit(stripe_customer, django_capture_on_commit_callbacks, full_name="timeout")  # the fake times out on it
    run_tasks()
    push = CustomerPush.objects.get()
    assert (push.attempts, push.error) == (1, "TemporarilyUnavailable: timeout")
    retry = DBTaskResult.objects.filter(status="READY").get()
    assert retry.args_kwargs["args"] == [stripe_customer.pk]
    assert retry.run_after == push.next_attempt_at == start + retry_delay(1)
    assert (retry_delay(1), retry_delay(2), retry_delay(50)) == (
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(hours=6),
    )

    with caplog.at_level(logging.ERROR, logger="billing.services.pushes"):
        while CustomerPush.objects.get().next_attempt_at is not None:
            time_machine.move_to(CustomerPush.objects.get().next_attempt_at)
            assert run_tasks() == 1  # the retry the task queued for itself; the sweep has nothing to do
    push = CustomerPush.objects.get()
    assert start + PUSH_RETRY_FOR - timedelta(hours=6) < timezone.now() <= start + PUSH_RETRY_FOR
    assert 15 < push.attempts < 25
    assert not DBTaskResult.objects.filter(status="READY").exists()  # no more attempts queued
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].startswith(f"customer {stripe_customer.pk}: push to processor gave up")

    time_machine.move_to(timezone.now() + timedelta(days=1))
    assert "0 Stripe push(es) queued again" in sweep()  # given up: it waits for a person


def test_a_push_that_gave_up_is_shown_in_admin_and_sent_by_push_now(
    stripe_customer, gateway, admin_client, django_capture_on_commit_callbacks
):
    still_trying = CustomerFactory()
    stripe_customer_ensure(customer=still_trying)
    edit(still_trying, django_capture_on_commit_callbacks, full_name="Grace Hopper")
    edit(stripe_customer, django_capture_on_commit_callbacks, full_name="Ada Lovelace")
    CustomerPush.objects.filter(customer=stripe_customer).update(
        next_attempt_at=None, attempts=20, error="TemporarilyUnavailable: timeout"
    )

    gave_up = admin_client.get("/admin/billing/customerpush/", {"retries": "gave_up"}).content.decode()
    assert "Ada Lovelace" in gave_up and "Grace Hopper" not in gave_up
    assert "TemporarilyUnavailable: timeout" in gave_up
    push = CustomerPush.objects.get(customer=stripe_customer)
    page = admin_client.get(f"/admin/billing/customerpush/{push.pk}/change/").content.decode()
    assert "TemporarilyUnavailable: timeout" in page and 'name="error"' not in page  # shown, never edited

    response = admin_client.post(
        "/admin/billing/customerpush/",
        {"action": "push_now", "_selected_action": [push.pk]},
        follow=True,
    )
    assert "1 push sent." in response.content.decode()
    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"
    assert [push.customer for push in CustomerPush.objects.all()] == [still_trying]


def test_a_new_change_starts_a_push_that_gave_up_over(stripe_customer, gateway, django_capture_on_commit_callbacks):
    edit(stripe_customer, django_capture_on_commit_callbacks, full_name="timeout")
    long_ago = timezone.now() - timedelta(days=5)
    CustomerPush.objects.update(next_attempt_at=None, attempts=20, since=long_ago)

    with django_capture_on_commit_callbacks(execute=False):
        customer_update_contact(customer=stripe_customer, data={"full_name": "Ada"}, by=None)

    push = CustomerPush.objects.get()
    assert (push.attempts, push.error, push.next_attempt_at is not None) == (0, "", True)
    assert push.since > long_ago


def test_a_push_task_queued_before_pushes_were_recorded_still_pushes(stripe_customer, gateway):
    from accounts.models import Customer

    Customer.objects.filter(pk=stripe_customer.pk).update(full_name="Ada Lovelace")  # changed, then upgraded

    assert customer_push.call(stripe_customer.pk, "portal:customer-push:old-key", 2) is True
    assert remote_name(gateway, stripe_customer) == "Ada Lovelace"
    assert not CustomerPush.objects.exists()


def test_a_customer_without_a_processor_customer_records_no_push(customer, gateway):
    customer_update_contact(customer=customer, data={"full_name": "Ada"}, by=None)
    assert not CustomerPush.objects.exists()
    assert customer_push.call(customer.pk) is False
    assert gateway.calls == []
