"""What enqueueing a task on RQ costs a request: django-rq's own queue class (a new Redis client, so a new
connection, for every queue it builds) against the portal's (one shared client per process).

    .venv/bin/python bench/rq_enqueue.py [--url redis://127.0.0.1:6379/14] [--tasks 200]

Both in one process, one after the other, alternating rounds, through Django's tasks API
(`email_send.enqueue`, which only queues: no worker runs). The queue's keys in that Redis database are
deleted at the end. docs/operations.md quotes the results (django-tasks-rq and Django 6.1).
"""

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/14", help="a Redis database the bench may use")
    parser.add_argument("--tasks", type=int, default=200, help="tasks enqueued per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    os.environ.update(TASKS_BACKEND="rq", REDIS_URL=args.url, DJANGO_SETTINGS_MODULE="portal.settings")
    import django

    django.setup()
    import django_rq
    from django.conf import settings

    from console.tasks import email_send

    queue_classes = {"new client each (django-rq)": "django_rq.queues.DjangoRQ", "shared client (portal)": None}
    shared = settings.RQ["QUEUE_CLASS"]
    seconds: dict[str, list[float]] = {name: [] for name in queue_classes}
    for _ in range(args.rounds):
        for name, queue_class in queue_classes.items():
            settings.RQ = {**settings.RQ, "QUEUE_CLASS": queue_class or shared}
            started = time.perf_counter()
            for email_id in range(args.tasks):
                email_send.enqueue(email_id)
            seconds[name].append((time.perf_counter() - started) / args.tasks)
    django_rq.get_queue("default").empty()

    best = {name: min(values) for name, values in seconds.items()}
    baseline = best["new client each (django-rq)"]
    for name, value in best.items():
        rounds = ", ".join(f"{v * 1000:.2f}" for v in seconds[name])
        print(f"{name:30} {value * 1000:6.2f} ms an enqueue (best of {args.rounds}: {rounds}), {value / baseline:.0%}")


if __name__ == "__main__":
    main()
