"""Webhook deliveries in tests: the request stores and queues; the queued task applies.

A test's own transaction never commits, so the view's on-commit enqueue is run here as a commit
would run it: once, and removed, so an enclosing django_capture_on_commit_callbacks does not queue
it a second time. What the applying task itself defers to commit (emails) is left for the test, as
a commit inside a request would have left it before.
"""

import contextlib

from django.db import connection


@contextlib.contextmanager
def commit_callbacks_run():
    """Run the on-commit callbacks registered inside the block, once, as the commit would."""
    start = len(connection.run_on_commit)
    try:
        yield
    finally:
        while len(connection.run_on_commit) > start:
            pending = connection.run_on_commit[start:]
            del connection.run_on_commit[start:]
            for _savepoints, callback, _robust in pending:
                callback()


def post_and_apply(post, run_tasks, *, apply: bool = True):
    """Make the request with `post()`; then, unless apply=False, run the queued tasks as the worker would."""
    with commit_callbacks_run():
        response = post()
    if apply:
        run_tasks()
    return response


def run_tasks_side_by_side(workers: int) -> None:
    """Run the queued tasks with `workers` django-tasks-db workers in threads, each on its own database
    connection, until none is left: they meet on the same rows and locks two worker processes would.
    For transactional (PostgreSQL) tests only; a task that fails is recorded on its result as usual."""
    import threading

    from django.db import transaction
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    start = threading.Barrier(workers)

    def work(number: int) -> None:
        worker = Worker(
            queue_names=["*"],
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=f"thread-{number}",
            excluded_queue_names=[],
        )
        start.wait()
        try:
            while True:
                with transaction.atomic():
                    result = DBTaskResult.objects.ready().get_locked()
                    if result is None:
                        return
                    result.claim(worker.worker_id)
                worker.run_task(result)
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(number,)) for number in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
