"""RQ on Redis as the task queue (`TASKS_BACKEND=rq`, portal/rq.py): our `@task` functions enqueue on it,
run in RQ's own worker code, and answer in Django's types; a job whose worker died is queued again
by the sweep and its email sent once.

A private redis-server per module (never the shared one); the worker is RQ's SimpleWorker in this
process, so the job runs on the test's database connection. tests/faults/ runs real worker processes.
"""

import shutil
from datetime import timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.management import call_command
from django.tasks import TaskResult, TaskResultStatus, signals
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from console.tasks import email_send
from portal.models import EmailStatus, OutboundEmail
from portal.outbox import email_queue
from tests.factories import CustomerFactory
from tests.servers import redis_server

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed"),
]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis"), persistent=False) as (port, _):
        yield port


@pytest.fixture
def rq_queue(settings, redis_port):
    import django_rq

    settings.TASKS = {"default": {"BACKEND": "portal.rq.RQBackend"}}
    settings.TASKS_ON_RQ = True
    settings.RQ_QUEUES = {"default": {"URL": f"redis://127.0.0.1:{redis_port}/0"}}
    settings.RQ = {"JOB_CLASS": "django_tasks_rq.backend.Job", "QUEUE_CLASS": "portal.rq.SharedConnectionQueue"}
    queue = django_rq.get_queue("default")
    queue.connection.flushdb()
    yield queue
    queue.connection.flushdb()


def rq_worker(queue):
    import django_rq
    from rq import SimpleWorker

    # On a client of its own, as portal.workers gives the real worker (RQ raises its socket timeout).
    return SimpleWorker([queue], connection=django_rq.get_connection("default"), job_class=queue.job_class)


def run_jobs(queue) -> None:
    rq_worker(queue).work(burst=True)


def queued_email(django_capture_on_commit_callbacks) -> OutboundEmail:
    customer = CustomerFactory()
    with django_capture_on_commit_callbacks(execute=True):
        email_queue(customer=customer, kind="welcome", key=f"welcome:{customer.pk}")
    return OutboundEmail.objects.get(customer=customer)


def test_a_task_enqueued_on_rq_runs_in_an_rq_worker_and_answers_in_djangos_types(rq_queue):
    finished = []

    def on_finished(sender, task_result, **kwargs):
        finished.append(task_result)

    signals.task_finished.connect(on_finished)
    try:
        result = email_send.enqueue(424242)
        assert isinstance(result, TaskResult) and result.status == TaskResultStatus.READY
        assert rq_queue.count == 1

        run_jobs(rq_queue)
    finally:
        signals.task_finished.disconnect(on_finished)

    done = email_send.get_result(result.id)
    assert isinstance(done, TaskResult)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == "missing"  # no such email: the task ran and said so
    assert [(r.id, r.status) for r in finished] == [(result.id, TaskResultStatus.SUCCESSFUL)]
    with pytest.raises(TaskResultDoesNotExist):
        email_send.get_result("no-such-result")


def test_enqueueing_shares_one_redis_connection_per_process(rq_queue):
    """django-rq makes a new client for every queue it builds: a TCP connection and handshake for each task
    a request enqueued (portal.rq.SharedConnectionQueue)."""
    email_send.enqueue(1)  # the process's client connects once
    before = connections_received(rq_queue)

    for email_id in range(2, 22):
        email_send.enqueue(email_id)

    assert connections_received(rq_queue) - before == 0
    assert rq_queue.count == 21


def connections_received(queue) -> int:
    return queue.connection.info("stats")["total_connections_received"]


def test_the_worker_keeps_a_redis_client_of_its_own_so_enqueuers_keep_their_socket_timeout(rq_queue, settings):
    import django_rq

    from portal.rq import enqueue_connection
    from portal.workers import rq_worker_get

    settings.RQ_QUEUES = {"default": {"URL": settings.RQ_QUEUES["default"]["URL"] + "?socket_timeout=2"}}
    email_send.enqueue(1)
    enqueuers = enqueue_connection(django_rq.get_connection("default"))

    worker = rq_worker_get("test")  # RQ raises its client's socket timeout above its blocking dequeue's

    assert worker.connection is not enqueuers
    assert worker.connection.connection_pool.connection_kwargs["socket_timeout"] > 2
    assert enqueuers.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert email_send.enqueue(2).status == TaskResultStatus.READY


def test_a_worker_built_on_the_shared_client_does_not_leave_enqueuers_its_long_socket_timeout(rq_queue, settings):
    """django-rq's workers pages in admin build RQ workers on queues of the configured class; RQ raises the
    socket timeout of a worker's client in place."""
    import django_rq
    from rq import Worker

    settings.RQ_QUEUES = {"default": {"URL": settings.RQ_QUEUES["default"]["URL"] + "?socket_timeout=2"}}
    queue = django_rq.get_queue("default")
    Worker([queue], connection=queue.connection)
    assert queue.connection.connection_pool.connection_kwargs["socket_timeout"] > 2  # what RQ did

    assert django_rq.get_queue("default").connection.connection_pool.connection_kwargs["socket_timeout"] == 2
    assert email_send.enqueue(1).status == TaskResultStatus.READY


def test_an_email_queued_on_commit_is_sent_by_the_rq_worker(rq_queue, django_capture_on_commit_callbacks):
    email = queued_email(django_capture_on_commit_callbacks)

    run_jobs(rq_queue)

    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.SENT
    assert len(mail.outbox) == 1


def test_a_failed_send_is_retried_later_through_rqs_scheduler(rq_queue, django_capture_on_commit_callbacks, settings):
    settings.MAILERS = {"default": {"BACKEND": "tests.portal.mailers.FailingBackend"}}
    with django_capture_on_commit_callbacks(execute=True):
        email = queued_email(django_capture_on_commit_callbacks)
        run_jobs(rq_queue)

    row = OutboundEmail.objects.get(pk=email.pk)
    assert (row.status, row.attempts) == (EmailStatus.QUEUED, 1)
    assert rq_queue.scheduled_job_registry.count == 1  # the retry, two minutes on


def test_a_job_whose_worker_died_mid_run_is_queued_again_by_the_sweep_and_its_email_sent_once(
    rq_queue, django_capture_on_commit_callbacks, time_machine
):
    email = queued_email(django_capture_on_commit_callbacks)
    dying = rq_worker(rq_queue)
    job = rq_queue.dequeue_any([rq_queue], timeout=None, connection=rq_queue.connection)[0]
    dying.prepare_execution(job)
    dying.prepare_job_execution(job)  # the job is STARTED in RQ's registry; then the worker was SIGKILLed
    assert rq_queue.started_job_registry.count == 1

    out = StringIO()
    call_command("sweep", stdout=out)
    assert "0 task(s) made ready again" in out.getvalue()  # its registry entry has not lapsed yet

    time_machine.move_to(timezone.now() + timedelta(minutes=10))  # past the job's timeout and grace
    call_command("sweep", stdout=out)
    assert "1 task(s) made ready again" in out.getvalue()
    run_jobs(rq_queue)
    call_command("sweep", stdout=out)
    run_jobs(rq_queue)

    assert OutboundEmail.objects.get(pk=email.pk).status == EmailStatus.SENT
    assert len(mail.outbox) == 1
    assert email_send.get_result(job.id).status == TaskResultStatus.SUCCESSFUL


def test_a_push_whose_job_raised_lands_in_rqs_failed_registry_and_is_pushed_by_the_sweep(
    rq_queue, django_capture_on_commit_callbacks, time_machine, settings, monkeypatch
):
    """RQ never runs a job that raised again; the push recorded with the contact change outlives it."""
    from django.db import DatabaseError

    from accounts.services import customer_update_contact
    from billing.gateways.fake import FakeGateway
    from billing.models import CustomerPush
    from billing.services import stripe_customer_ensure

    settings.PAYMENT_GATEWAY = "billing.gateways.fake.FakeGateway"
    FakeGateway.reset()
    customer = CustomerFactory()
    stripe_customer_ensure(customer=customer)
    update = FakeGateway.customer_update

    def database_gone(self, **kwargs):
        raise DatabaseError("server closed the connection unexpectedly")

    monkeypatch.setattr(FakeGateway, "customer_update", database_gone)
    with django_capture_on_commit_callbacks(execute=True):
        customer_update_contact(customer=customer, data={"full_name": "Ada Lovelace"}, by=customer.user)
    run_jobs(rq_queue)
    assert rq_queue.failed_job_registry.count == 1
    monkeypatch.setattr(FakeGateway, "customer_update", update)

    assert "0 Stripe push(es) queued again" in sweep()
    time_machine.move_to(timezone.now() + timedelta(minutes=11))
    assert "0 task(s) made ready again, 0 email(s) queued again, 1 Stripe push(es) queued again" in sweep()
    run_jobs(rq_queue)

    assert FakeGateway().customers[customer.stripe_customer_id].name == "Ada Lovelace"
    assert not CustomerPush.objects.exists()
    assert "0 Stripe push(es) queued again" in sweep()
    FakeGateway.reset()


def sweep() -> str:
    out = StringIO()
    call_command("sweep", stdout=out)
    return out.getvalue()
