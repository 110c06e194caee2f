from django.tasks import task


@task()
def worker_heartbeat() -> None:
    """Show that a worker runs tasks (portal.queues: /healthz asks for one when the last is getting old)."""
    from .queues import worker_heartbeat_record

    worker_heartbeat_record()
