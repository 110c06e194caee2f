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
        return 0  # other queues (RQ, Celery) have their own dead-worker handling
    from django_tasks_db.models import DBTaskResult  # installed with the backend it belongs to

    released = DBTaskResult.objects.filter(
        status=TaskResultStatus.RUNNING, started_at__lt=timezone.now() - stuck_after
    ).update(status=TaskResultStatus.READY, started_at=None)
    if released:
        logger.warning(
            "tasks: %s task(s) ran longer than %s (their worker died); made ready again", released, stuck_after
        )
    return released
