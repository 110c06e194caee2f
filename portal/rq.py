"""RQ on Redis as the task queue, through Django's own tasks API (`TASKS_BACKEND=rq`).

django-tasks-rq runs Django 6.1's `@task` functions (its compat.py accepts `django.tasks.Task`), but it
is built on the `django_tasks` backport, so three things come out in the backport's types. Verified end
to end (tests/portal/test_rq.py): a plain `rqworker` fails every task ("'Task' object is not
callable": it needs django-tasks-rq's job class, set here as `RQ["JOB_CLASS"]`); results are the
backport's `TaskResult` and a missing one raises the backport's `TaskResultDoesNotExist`; and the task
signals are the backport's, so receivers of `django.tasks.signals` never hear of RQ tasks. This module
is the smallest adapter that closes those three gaps; the queueing itself is django-tasks-rq's.
"""

import dataclasses
import threading
from typing import Any

import django_tasks.signals
from django.tasks import TaskResult, signals
from django.tasks.base import TaskError
from django.tasks.exceptions import TaskResultDoesNotExist
from django_rq.queues import DjangoRQ
from django_tasks.exceptions import TaskResultDoesNotExist as BackportTaskResultDoesNotExist
from django_tasks_rq import backend as rq_backend
from redis import Redis


def django_task_result(result: Any) -> TaskResult:
    """The backport's task result as Django's own (same fields, Django's classes)."""
    converted = TaskResult(
        task=result.task,
        id=result.id,
        status=result.status,
        enqueued_at=result.enqueued_at,
        started_at=result.started_at,
        finished_at=result.finished_at,
        last_attempted_at=result.last_attempted_at,
        args=list(result.args),
        kwargs=dict(result.kwargs),
        backend=result.backend,
        errors=[TaskError(**dataclasses.asdict(error)) for error in result.errors],
        worker_ids=list(result.worker_ids),
    )
    object.__setattr__(converted, "_return_value", result._return_value)
    return converted


class RQBackend(rq_backend.RQBackend):
    """django-tasks-rq's backend answering in Django's types."""

    def enqueue(self, task, args, kwargs) -> TaskResult:  # type: ignore[override]
        return django_task_result(super().enqueue(task, args, kwargs))

    def get_result(self, result_id: str) -> TaskResult:
        try:
            return django_task_result(super().get_result(result_id))
        except BackportTaskResultDoesNotExist as error:
            raise TaskResultDoesNotExist(result_id) from error


class SharedConnectionQueue(DjangoRQ):
    """django-rq builds a new Redis client for every queue it makes, so every task a request enqueues paid
    a new TCP connection and handshake (10.4 ms against 0.9 ms on a kept one). Queues of this class
    (`RQ["QUEUE_CLASS"]`) share one client per Redis server and process; the throwaway client django-rq
    made never connects. redis-py's pool starts afresh in a forked child.

    The worker keeps a client of its own (`portal.workers`): RQ raises its socket timeout above its
    blocking dequeue's, which enqueuers must not inherit (they wait at most TASKS_REDIS_SOCKET_TIMEOUT)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("connection") is not None:
            kwargs["connection"] = enqueue_connection(kwargs["connection"])
        super().__init__(*args, **kwargs)


_clients: dict[tuple, Redis] = {}
_clients_lock = threading.Lock()


def enqueue_connection(connection: Redis) -> Redis:
    """The process's shared client for the server, database and options `connection` was made for."""
    pool = connection.connection_pool
    key = (type(pool), pool.connection_class, tuple(sorted(pool.connection_kwargs.items(), key=lambda item: item[0])))
    try:
        hash(key)
    except TypeError:  # options that are objects (a credential provider, a retry policy): not shared
        return connection
    with _clients_lock:
        shared = _clients.get(key)
        # An RQ worker built on a queue of this class (django-rq's workers pages in admin, a plain
        # `rqworker`) raises its client's socket timeout in place: that client is the shared one no more.
        if shared is None or shared.connection_pool.connection_kwargs != pool.connection_kwargs:
            _clients[key] = shared = connection
        return shared


def _relay(django_signal):
    def receiver(sender, task_result, **kwargs):
        if isinstance(task_result.task.get_backend(), RQBackend):
            django_signal.send(sender=RQBackend, task_result=django_task_result(task_result))

    return receiver


for _name in ("task_enqueued", "task_started", "task_finished"):
    getattr(django_tasks.signals, _name).connect(
        _relay(getattr(signals, _name)), dispatch_uid=f"portal.rq.{_name}", weak=False
    )
