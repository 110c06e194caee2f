"""The task worker's supervising loop: outages are waited out, a requested stop is a stop."""

import pytest
from django.db import OperationalError
from django.template import engines
from django.template.loaders.filesystem import Loader as FilesystemLoader
from django.urls import clear_url_caches
from django.urls.resolvers import URLResolver
from redis.exceptions import ConnectionError as RedisConnectionError

from console.emails import email_render
from portal import workers
from portal.models import EmailKind
from tests.factories import CustomerFactory


def runs(monkeypatch, outcomes: list, *, name: str) -> list[dict]:
    calls = []

    def run(**kwargs):
        calls.append(kwargs)
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome

    monkeypatch.setattr(workers, name, run)
    return calls


def test_a_database_worker_that_meets_an_outage_waits_longer_each_time_and_runs_again(monkeypatch):
    calls = runs(monkeypatch, [OperationalError("server closed the connection")] * 3 + [None], name="_db_worker_run")
    waits = []

    workers.worker_run_supervised(on_rq=False, worker_id="w1", sleep=waits.append)

    assert waits == [1.0, 2.0, 4.0]
    assert len(calls) == 4 and {call["worker_id"] for call in calls} == {"w1"}


def test_an_rq_worker_that_loses_redis_runs_again(monkeypatch):
    calls = runs(monkeypatch, [RedisConnectionError("Connection refused"), None], name="_rq_worker_run")
    waits = []

    workers.worker_run_supervised(on_rq=True, sleep=waits.append)

    assert waits == [1.0] and len(calls) == 2


def test_the_wait_between_attempts_stops_growing_at_thirty_seconds(monkeypatch):
    runs(monkeypatch, [OperationalError("down")] * 8 + [None], name="_db_worker_run")
    waits = []

    workers.worker_run_supervised(on_rq=False, sleep=waits.append)

    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_stop_or_a_bug_is_not_taken_for_an_outage(monkeypatch):
    runs(monkeypatch, [SystemExit(0)], name="_db_worker_run")
    with pytest.raises(SystemExit):
        workers.worker_run_supervised(on_rq=False, sleep=pytest.fail)
    runs(monkeypatch, [ZeroDivisionError()], name="_db_worker_run")
    with pytest.raises(ZeroDivisionError):
        workers.worker_run_supervised(on_rq=False, sleep=pytest.fail)


@pytest.mark.django_db
def test_after_the_preload_an_email_renders_in_each_language_without_building_url_tables_or_reading_templates(
    monkeypatch, django_assert_num_queries
):
    clear_url_caches()
    for loader in engines["django"].engine.template_loaders:
        loader.reset()
    with django_assert_num_queries(0):  # the worker forks after it: a connection opened here would be shared
        workers.worker_preload()

    def forbidden(*args, **kwargs):
        raise AssertionError("a work horse forked now would do this again for each task")

    monkeypatch.setattr(URLResolver, "_populate", forbidden)
    monkeypatch.setattr(FilesystemLoader, "get_contents", forbidden)
    for language in ("en", "de"):
        rendered = email_render(customer=CustomerFactory(language=language), kind=EmailKind.HUB_LINK)
        assert "/" in rendered.text
