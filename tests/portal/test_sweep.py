"""`manage.py sweep`: work that a dead worker left behind is started again, once."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from console.tasks import email_send
from portal.models import EmailStatus, OutboundEmail
from portal.outbox import email_queue
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def sweep() -> str:
    out = StringIO()
    call_command("sweep", stdout=out)
    return out.getvalue()


def queued_email(customer, *, minutes_ago: int) -> OutboundEmail:
    email_queue(customer=customer, kind="welcome", key=f"welcome:{customer.pk}")
    email = OutboundEmail.objects.get(customer=customer)
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=timezone.now() - timedelta(minutes=minutes_ago))
    return email


def test_an_email_whose_task_was_lost_is_queued_again_and_sent_once(run_tasks):
    """Its task never ran (on_commit lost with the process): the row waits in the outbox as queued."""
    left_behind = queued_email(CustomerFactory(), minutes_ago=20)
    recent = queued_email(CustomerFactory(), minutes_ago=1)

    assert "1 email(s) queued again" in sweep()
    run_tasks()
    run_tasks()

    assert OutboundEmail.objects.get(pk=left_behind.pk).status == EmailStatus.SENT
    assert OutboundEmail.objects.get(pk=recent.pk).status == EmailStatus.QUEUED  # its own task is still due
    assert len(mail.outbox) == 1


def test_a_task_whose_worker_died_mid_run_is_run_again_and_its_email_sent_once(run_tasks):
    email = queued_email(CustomerFactory(), minutes_ago=1)
    result = email_send.enqueue(email.pk)
    row = DBTaskResult.objects.get(id=result.id)
    row.claim("worker-killed-with-sigkill")  # what a worker does before it runs the task, then it died
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=timezone.now() - timedelta(minutes=30))

    assert "1 task(s) made ready again" in sweep()
    run_tasks()

    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.SENT
    assert len(mail.outbox) == 1
    sweep()
    run_tasks()
    assert len(mail.outbox) == 1  # never twice


def test_a_task_that_is_running_now_is_left_alone():
    email = queued_email(CustomerFactory(), minutes_ago=1)
    row = DBTaskResult.objects.get(id=email_send.enqueue(email.pk).id)
    row.claim("a-live-worker")

    assert "0 task(s) made ready again" in sweep()
    assert DBTaskResult.objects.get(pk=row.pk).status == "RUNNING"
