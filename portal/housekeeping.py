"""Work left behind by workers that died, found and started again (`manage.py sweep`, every few minutes).

Every background task here is idempotent: an email is keyed and sent under a row lock, a contact
push is keyed by the details it sends, a webhook is applied under its event row's lock. So running a
task twice is safe, and losing one is what must not happen.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.tasks import TaskResultStatus
from django.utils import timezone

logger = logging.getLogger(__name__)


def stuck_tasks_release(*, stuck_after: timedelta) -> int:
    """Make tasks that have been "running" for longer than `stuck_after` ready again (database backend).

    django-tasks-db marks a task running when a worker claims it; a worker killed mid-task leaves it so
    for good. No task of ours runs for minutes (each Stripe call has its deadline, each email its
    timeout), so one running that long lost its worker.
    """
    if settings.TASKS["default"]["BACKEND"] != "django_tasks_db.DatabaseBackend":
        return 0  # RQ: abandoned_jobs_requeue()
    from django_tasks_db.models import DBTaskResult  # installed with the backend it belongs to

    released = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING, started_at__lt=timezone.now() - stuck_after
    ).update(status=TaskResultStatus.READY, started_at=None)
    if released:
        logger.warning(
            "tasks: %s task(s) ran longer than %s (their worker died); made ready again", released, stuck_after
        )
    return released


def abandoned_jobs_requeue() -> int:
    """Queue again the RQ jobs whose worker died mid-run (RQ backend); return how many.

    A worker renews its running job's entry in RQ's started registry every 30 s, and the entry lapses
    90 s after the last renewal. RQ's own cleanup moves lapsed jobs to the failed registry as abandoned
    (workers run it only every 10 minutes, so it is run here); they are queued again from there. Jobs
    that failed by raising stay failed, their errors for a person to read: the work itself is recorded in
    rows the sweep starts again (the email outbox, pending contact pushes, webhook events).
    """
    if not settings.TASKS_ON_RQ:
        return 0
    import django_rq  # installed with the backend it belongs to
    from rq.exceptions import AbandonedJobError

    requeued = 0
    for name in settings.RQ_QUEUES:
        queue = django_rq.get_queue(name)
        queue.started_job_registry.cleanup()
        failed = queue.failed_job_registry
        for job in queue.job_class.fetch_many(failed.get_job_ids(), connection=queue.connection):
            result = job.latest_result() if job is not None else None
            if result is not None and AbandonedJobError.__name__ in (result.exc_string or ""):
                failed.requeue(job)
                requeued += 1
    if requeued:
        logger.warning("tasks: %s RQ job(s) lost their worker mid-run; queued again", requeued)
    return requeued
