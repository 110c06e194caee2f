"""Background tasks of the console, run by `manage.py db_worker`."""

from django.tasks import task


@task()
def email_send(email_id: int) -> str:
    """Send one queued customer email (see console.emails)."""
    from .emails import email_deliver  # console.emails enqueues this task, so it is imported here

    return email_deliver(email_id=email_id)
