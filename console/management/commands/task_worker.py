"""Run background tasks on the configured queue (`TASKS_BACKEND`), through database and Redis outages."""

import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.workers import worker_run_supervised


class Command(BaseCommand):
    help = (
        "Run background tasks: rqworker with its scheduler (TASKS_BACKEND=rq) or db_worker (the default), "
        "waiting out database and Redis outages instead of exiting."
    )
    # None at each start: systemd starts a worker again after every crash or kill, and the checks (0.4 s of
    # CPU) run once per release instead (`deploy/entrypoint.sh release` runs `check --deploy`), as gunicorn
    # runs none either.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser):
        parser.add_argument("--worker-id", default=None, help="a name for this worker (default: generated)")
        parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls (database queue)")
        parser.add_argument("--max-tasks", type=int, default=None, help="exit after this many tasks")
        parser.add_argument("--burst", action="store_true", help="exit once the queue is empty")

    def handle(self, *args, worker_id, interval, max_tasks, burst, verbosity, **options):
        started = time.monotonic()
        worker_run_supervised(
            on_rq=settings.TASKS_ON_RQ,
            worker_id=worker_id,
            interval=interval,
            max_tasks=max_tasks,
            burst=burst,
            log_level="WARNING" if verbosity == 0 else "DEBUG" if verbosity >= 2 else "INFO",
        )
        if verbosity:
            self.stdout.write(self.style.SUCCESS(f"worker stopped after {time.monotonic() - started:.0f} s"))
