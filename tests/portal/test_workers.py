"""The task worker's supervising loop: outages are waited out, a requested stop is a stop."""

import pytest
from django.db import OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from portal import workers


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
