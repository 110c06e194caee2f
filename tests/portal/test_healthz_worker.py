"""/healthz beyond the database: the cache (a frozen Redis answers within a second), the task worker's
heartbeat and the age of the oldest queued task; what fails the node (503) and what only degrades it."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.core.cache import caches
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from console.tasks import email_send
from portal.queues import HEARTBEAT_KEY, queue_stats, worker_heartbeat_record
from portal.tasks import worker_heartbeat
from tests.portal.test_cache import frozen_redis, redis_cache  # noqa: F401 - frozen_redis is a fixture

pytestmark = pytest.mark.django_db

NOW = timezone.datetime(2026, 12, 3, 12, 0, tzinfo=timezone.UTC)


def heartbeat_tasks() -> int:
    return DBTaskResult.objects.filter(task_path=worker_heartbeat.module_path).count()


def test_without_a_heartbeat_the_worker_is_stale_the_node_degraded_but_in_service(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["worker"], body["worker_heartbeat_age_seconds"]) == ("degraded", "stale", None)


def test_healthz_asks_a_worker_for_one_heartbeat_and_the_worker_running_it_makes_it_ok(client, run_tasks):
    client.get("/healthz")
    client.get("/healthz")
    assert heartbeat_tasks() == 1  # one waiting heartbeat, however often the balancer asks

    assert run_tasks() == 1
    body = client.get("/healthz").json()

    assert (body["status"], body["worker"]) == ("ok", "ok")
    assert 0 <= body["worker_heartbeat_age_seconds"] < 5
    assert (body["queue_depth"], body["queue_oldest_age_seconds"]) == (0, None)


def test_a_heartbeat_older_than_the_stale_limit_makes_the_worker_stale_with_its_age(client, settings):
    settings.WORKER_STALE_SECONDS = 300
    with time_machine.travel(NOW, tick=False):
        worker_heartbeat_record()
    with time_machine.travel(NOW + timedelta(seconds=301), tick=False):
        body = client.get("/healthz").json()

    assert (body["status"], body["worker"], body["worker_heartbeat_age_seconds"]) == ("degraded", "stale", 301.0)


def test_a_recent_heartbeat_asks_for_no_new_one(client, settings):
    settings.WORKER_HEARTBEAT_SECONDS = 60
    with time_machine.travel(NOW, tick=False):
        worker_heartbeat_record()
    with time_machine.travel(NOW + timedelta(seconds=59), tick=False):
        client.get("/healthz")
    assert heartbeat_tasks() == 0
    with time_machine.travel(NOW + timedelta(seconds=61), tick=False):
        body = client.get("/healthz").json()

    assert body["worker"] == "ok"  # still within the stale limit while the asked-for heartbeat waits
    assert heartbeat_tasks() == 1


def test_any_task_a_worker_runs_counts_as_a_heartbeat(client, run_tasks, django_capture_on_commit_callbacks):
    from portal import receivers

    receivers._last_heartbeat = 0.0  # another test's worker may have beaten within the throttle
    email_send.enqueue(0)  # no such email: the task finds nothing to send

    assert run_tasks() == 1
    body = client.get("/healthz").json()
    assert body["worker"] == "ok"


def test_the_queue_reports_how_many_tasks_wait_and_the_longest_wait_counting_a_retry_from_its_due_time():
    with time_machine.travel(NOW, tick=False):
        waiting = email_send.enqueue(1)
        retry = email_send.using(run_after=NOW - timedelta(minutes=2)).enqueue(2)
        email_send.using(run_after=NOW + timedelta(minutes=10)).enqueue(3)  # not due: not waiting yet
        DBTaskResult.objects.filter(id=waiting.id).update(enqueued_at=NOW - timedelta(seconds=90))
        DBTaskResult.objects.filter(id=retry.id).update(enqueued_at=NOW - timedelta(hours=1))

        stats = queue_stats()

    assert (stats.depth, stats.oldest_age_seconds) == (2, 120.0)


def test_healthz_reports_the_queue_depth_and_oldest_age(client):
    with time_machine.travel(NOW, tick=False):
        queued = email_send.enqueue(1)
        DBTaskResult.objects.filter(id=queued.id).update(enqueued_at=NOW - timedelta(minutes=5))
        body = client.get("/healthz").json()

    assert body["queue_depth"] == 1  # the heartbeat this check asked for is enqueued after the reading
    assert body["queue_oldest_age_seconds"] == 300.0


def test_a_backend_without_statistics_reports_none(client, settings):
    settings.TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

    assert queue_stats() is None


def test_with_redis_frozen_healthz_waits_one_socket_timeout_then_not_at_all_and_queues_no_heartbeats(
    client,
    settings,
    frozen_redis,  # noqa: F811
):
    """One socket timeout (0.3 s here, REDIS_SOCKET_TIMEOUT 0.5 s by default) for the first check, none for the
    next: the bounds leave room for a loaded machine; docs/operations.md has the figures measured unloaded."""
    location, connections = frozen_redis
    settings.CACHES = redis_cache(location)
    caches["default"]._cache  # noqa: B018 - the client made (redis-py imported) as at a node's first request

    started = time.monotonic()
    first = client.get("/healthz")
    took = time.monotonic() - started
    started = time.monotonic()
    second = client.get("/healthz")
    second_took = time.monotonic() - started

    assert first.status_code == 200 and second.status_code == 200
    body = first.json()
    assert (body["status"], body["database"], body["cache"], body["worker"]) == (
        "degraded",
        "ok",
        "unavailable",
        "stale",
    )
    time.sleep(0.3)  # the stand-in accepts in a thread
    assert len(connections) == 1  # one wait on Redis, and the second check waited on none
    assert took < 5 and second_took < 2  # seconds; without the timeouts a frozen Redis held it 30 s
    assert heartbeat_tasks() == 0


def test_the_database_down_makes_healthz_answer_503(client, settings, monkeypatch):
    """A node whose database does not answer cannot serve a page: the load balancer takes it out."""
    from django.db import connection

    def refuse(*args, **kwargs):
        from django.db.utils import OperationalError

        raise OperationalError("connection refused")

    monkeypatch.setattr(connection, "cursor", refuse)
    response = client.get("/healthz")

    assert response.status_code == 503
    assert (response.json()["status"], response.json()["database"]) == ("error", "unavailable")


def test_the_heartbeat_lives_in_the_shared_cache(run_tasks):
    from django.core.cache import cache

    worker_heartbeat.enqueue()
    run_tasks()

    assert abs(cache.get(HEARTBEAT_KEY) - time.time()) < 5


@pytest.fixture
def rq_backend(settings):
    """The RQ backend on this project's Redis database for tests (4), emptied before and after."""
    import django_rq

    settings.RQ_QUEUES = {"default": {"URL": "redis://127.0.0.1:6379/4", "DEFAULT_TIMEOUT": 60}}
    # The backend TASKS_BACKEND=rq configures (a subclass of django-tasks-rq's).
    settings.TASKS = {"default": {"BACKEND": settings.TASKS_BACKEND_ALIASES["rq"]}}
    queue = django_rq.get_queue("default")
    queue.empty()
    yield queue
    queue.empty()


def test_the_rq_backend_reports_its_queue_depth_and_oldest_job(rq_backend):
    with time_machine.travel(NOW - timedelta(seconds=45), tick=False):
        email_send.enqueue(1)
    with time_machine.travel(NOW, tick=False):
        email_send.enqueue(2)
        email_send.using(run_after=NOW + timedelta(minutes=5)).enqueue(3)  # scheduled: not waiting yet

        stats = queue_stats()

    assert stats.depth == 2
    assert stats.oldest_age_seconds == pytest.approx(45, abs=1)
