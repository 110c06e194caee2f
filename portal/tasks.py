"""Background tasks of the portal app, run by `manage.py db_worker`."""

from django.tasks import task


@task()
def email_send(email_id: int) -> str:
    """Send one queued customer email (see portal.emails)."""
    from .emails import email_deliver  # portal.emails enqueues this task, so it is imported here

    return email_deliver(email_id=email_id)


@task()
def worker_heartbeat() -> None:
    """Show that a worker runs tasks (portal.queues: /healthz asks for one when the last is getting old)."""
    from .queues import worker_heartbeat_record

    worker_heartbeat_record()
