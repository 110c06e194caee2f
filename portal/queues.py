"""How the background-task queue is doing, for /healthz and /metrics: whether a worker is alive, and
how many tasks wait and for how long.

**Worker heartbeat.** A worker that runs nothing says nothing, so /healthz asks for a sign of life:
when the last heartbeat is older than `WORKER_HEARTBEAT_SECONDS` it enqueues the tiny
`portal.tasks.worker_heartbeat` task (at most one waiting at a time, held by a cache key), and the
worker that runs it writes the time to the shared cache. Every task a worker starts or finishes
counts as a heartbeat too (django.tasks' task_started/task_finished signals, sent by every backend's
worker). The worker is *stale* when the newest heartbeat is older than `WORKER_STALE_SECONDS`.

**Queue statistics** are read by one small function per task backend, named in `QUEUE_STATS` by the
backend's import path: the database backend (django-tasks-db) and RQ (django-tasks-rq) are here;
another backend plugs in by adding its function to that mapping. A backend without one reports no
depth or age.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.module_loading import import_string

HEARTBEAT_KEY = "portal:worker:heartbeat"
HEARTBEAT_PENDING_KEY = "portal:worker:heartbeat-pending"
HEARTBEAT_KEEP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class QueueStats:
    """Tasks due to run now and waiting for a worker: how many, and how long the longest has waited."""

    depth: int
    oldest_age_seconds: float | None


def _database_backend_stats() -> QueueStats:
    """django-tasks-db: ready rows that are due (a retry's run_after in the future is not waiting yet)."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    ready = DBTaskResult.objects.ready()
    depth = ready.count()
    if not depth:
        return QueueStats(depth=0, oldest_age_seconds=None)
    never_deferred = (
        ready.filter(run_after=get_date_max()).order_by("enqueued_at").values_list("enqueued_at", flat=True)
    )
    deferred = ready.exclude(run_after=get_date_max()).order_by("run_after").values_list("run_after", flat=True)
    due_since: list[datetime] = [moment for moment in (never_deferred.first(), deferred.first()) if moment is not None]
    oldest = min(due_since) if due_since else None
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else None
    return QueueStats(depth=depth, oldest_age_seconds=age)


def _rq_backend_stats() -> QueueStats:
    """django-tasks-rq: the jobs waiting in the backend's RQ queues (scheduled and deferred jobs wait in
    RQ's registries until due, so they are not counted). The head of a queue is its oldest job."""
    import django_rq
    from django.tasks import task_backends

    depth, oldest = 0, None
    for name in sorted(task_backends["default"].queues):
        queue = django_rq.get_queue(name)
        depth += queue.count
        head = queue.get_job_ids(0, 1)
        job = queue.fetch_job(head[0]) if head else None
        if job is not None and job.enqueued_at is not None:
            enqueued = job.enqueued_at if job.enqueued_at.tzinfo else job.enqueued_at.replace(tzinfo=UTC)
            oldest = enqueued if oldest is None else min(oldest, enqueued)
    age = max(0.0, (timezone.now() - oldest).total_seconds()) if oldest else None
    return QueueStats(depth=depth, oldest_age_seconds=age)


# Task backend class (import path) → its statistics function; a subclass (portal.rq.RQBackend, what
# TASKS_BACKEND=rq configures) has its base's.
QUEUE_STATS: dict[str, Callable[[], QueueStats]] = {
    "django_tasks_db.DatabaseBackend": _database_backend_stats,
    "django_tasks_rq.RQBackend": _rq_backend_stats,
}


def queue_stats() -> QueueStats | None:
    """The default task backend's queue statistics, or None when it has no statistics function."""
    from django.tasks import task_backends

    backend = task_backends["default"]
    for path, stats in QUEUE_STATS.items():
        if isinstance(backend, import_string(path)):
            return stats()
    return None


# --- Worker heartbeat --------------------------------------------------------------------------


def worker_heartbeat_record() -> None:
    """Write now as the latest sign of a live worker (called in the worker)."""
    cache.set(HEARTBEAT_KEY, time.time(), HEARTBEAT_KEEP_SECONDS)
    cache.delete(HEARTBEAT_PENDING_KEY)


def worker_heartbeat_age() -> float | None:
    """Seconds since a worker last showed it was alive, or None when none ever did (as far as the cache knows)."""
    beat = cache.get(HEARTBEAT_KEY)
    return max(0.0, time.time() - float(beat)) if beat is not None else None


def worker_heartbeat_request(*, age: float | None) -> bool:
    """Enqueue a heartbeat task when the last heartbeat is getting old and none is waiting yet; say if one was."""
    if age is not None and age < settings.WORKER_HEARTBEAT_SECONDS:
        return False
    # One waiting heartbeat at a time, however many nodes and checks ask: while no worker runs, the
    # queue gains one tiny task per stale period, not one per health check.
    if not cache.add(HEARTBEAT_PENDING_KEY, 1, settings.WORKER_STALE_SECONDS):
        return False
    from .tasks import worker_heartbeat

    worker_heartbeat.enqueue()
    return True


def worker_is_stale(age: float | None) -> bool:
    return age is None or age > settings.WORKER_STALE_SECONDS
