"""The task worker under a supervising loop: it waits out database and Redis outages instead of exiting.

django-tasks-db's `db_worker` raises out of its loop on the first database error (PostgreSQL restarted,
a failover, a network blip) and stays down until someone starts it again; `rqworker` exits when Redis
cannot be reached as it starts or registers. systemd's `Restart=always` would bring either back, but a
container without a restart policy, or `make run`, would not, so the worker restarts itself here: each
outage costs a logged warning and a wait (1 s, doubling, at most 30 s), never the worker.

A task that was running when the database went away is not lost: its email stays queued in the outbox,
and a task left "running" or abandoned is started again by `manage.py sweep`.
"""

import logging
import os
import socket
import time
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connections
from django.template.loader import get_template
from django.urls import get_resolver
from django.utils import translation
from django.utils.module_loading import autodiscover_modules
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

OUTAGE_ERRORS = (DatabaseError, RedisError, ConnectionError, TimeoutError)
FIRST_WAIT_SECONDS = 1.0
LONGEST_WAIT_SECONDS = 30.0
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def worker_run_supervised(
    *,
    on_rq: bool,
    worker_id: str | None = None,
    interval: float = 1.0,
    max_tasks: int | None = None,
    burst: bool = False,
    log_level: str = "INFO",
    sleep=time.sleep,
) -> None:
    """Run the worker of the configured queue until it stops by itself (SIGTERM, burst, max tasks);
    after an outage error, wait and run it again."""
    worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
    run = _rq_worker_run if on_rq else _db_worker_run
    wait = FIRST_WAIT_SECONDS
    while True:
        started = time.monotonic()
        try:
            run(worker_id=worker_id, interval=interval, max_tasks=max_tasks, burst=burst, log_level=log_level)
            return
        except OUTAGE_ERRORS as error:
            if time.monotonic() - started > LONGEST_WAIT_SECONDS:
                wait = FIRST_WAIT_SECONDS  # it had been working: a new outage starts with a short wait
            logger.warning("worker %s: %s (%s); starting again in %.0f s", worker_id, type(error).__name__, error, wait)
            connections.close_all()  # a connection that met the outage is broken; the next run opens a new one
            sleep(wait)
            wait = min(wait * 2, LONGEST_WAIT_SECONDS)


def _db_worker_run(*, worker_id, interval, max_tasks, burst, log_level) -> None:
    from django_tasks_db.management.commands.db_worker import Worker

    logging.getLogger("django_tasks").setLevel(log_level)
    close_old_connections()
    worker = Worker(
        queue_names=["*"],
        interval=interval,
        batch=burst,
        backend_name="default",
        startup_delay=False,
        max_tasks=max_tasks,
        worker_id=worker_id[:64],
        excluded_queue_names=[],
    )
    worker.configure_signals()
    worker.run()


def _rq_worker_run(*, worker_id, interval, max_tasks, burst, log_level) -> None:
    from rq.logutils import setup_loghandlers

    setup_loghandlers(log_level)
    worker = rq_worker_get(worker_id)
    worker_preload()
    connections.close_all()  # each job runs in a forked child, which must not share the parent's connection
    worker.work(burst=burst, with_scheduler=True, logging_level=log_level, max_jobs=max_tasks)


def rq_worker_get(worker_id: str):
    """RQ's worker on a Redis client of its own (plain DjangoRQ queues, not the enqueuers' shared client:
    RQ raises the worker's socket timeout above its blocking dequeue's)."""
    from django_rq.queues import DjangoRQ
    from django_rq.workers import get_worker

    # A fresh name each start: RQ refuses a name whose registration a killed worker left behind.
    return get_worker(*settings.RQ_QUEUES, name=f"{worker_id}-{time.time_ns()}", queue_class=DjangoRQ)


def worker_preload() -> None:
    """Build once in the worker what each of RQ's forked work horses would otherwise build again for its one
    task and throw away: the task modules, the URL reverse tables and translations of every language (a
    horse that renders an email spent 0.3 of its 0.45 s on the tables), and the email templates."""
    autodiscover_modules("tasks")
    resolver = get_resolver()
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            resolver.reverse_dict  # noqa: B018 - reading it builds this language's tables
    for path in sorted((TEMPLATES_DIR / "emails").rglob("*.*")):
        get_template(path.relative_to(TEMPLATES_DIR).as_posix())
