"""The optional Prometheus endpoint: off by default; request counts and latency by view and status,
the task queue and the worker heartbeat; a token when one is set; gunicorn's workers summed."""

import importlib
import os
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.conf import settings as django_settings
from django.urls import clear_url_caches
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from console.tasks import email_send
from portal.queues import worker_heartbeat_record
from tests.servers import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def reload_urls() -> None:
    import console.urls

    importlib.reload(console.urls)
    clear_url_caches()


@pytest.fixture
def metrics_on(settings):
    settings.PROMETHEUS_METRICS = True
    settings.PROMETHEUS_METRICS_TOKEN = ""
    settings.MIDDLEWARE = [settings.MIDDLEWARE[0], "portal.metrics.MetricsMiddleware", *settings.MIDDLEWARE[1:]]
    reload_urls()
    yield settings
    settings.PROMETHEUS_METRICS = False
    reload_urls()


def scrape(client, **headers) -> dict:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


def test_metrics_are_off_by_default(client):
    assert not django_settings.PROMETHEUS_METRICS
    assert client.get("/metrics").status_code == 404


def test_requests_are_counted_and_timed_by_view_and_status(client, metrics_on):
    key_ok = ("portal_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "healthz")))
    key_missing = ("portal_http_requests_total", (("method", "GET"), ("status", "404"), ("view", "<unresolved>")))
    key_timed = ("portal_http_request_duration_seconds_count", (("status", "200"), ("view", "healthz")))
    before = scrape(client)

    client.get("/healthz")
    client.get("/healthz")
    client.get("/no-such-page/")
    after = scrape(client)

    assert after[key_ok] - before.get(key_ok, 0) == 2
    assert after[key_missing] - before.get(key_missing, 0) == 1
    assert after[key_timed] - before.get(key_timed, 0) == 2


def test_the_queue_and_the_worker_heartbeat_are_read_at_each_scrape(client, metrics_on):
    queued = email_send.enqueue(1)
    DBTaskResult.objects.filter(id=queued.id).update(enqueued_at=timezone.now() - timedelta(minutes=3))
    worker_heartbeat_record()

    found = scrape(client)

    assert found[("portal_task_queue_depth", ())] == 1
    assert 180 <= found[("portal_task_queue_oldest_age_seconds", ())] < 240
    assert 0 <= found[("portal_worker_heartbeat_age_seconds", ())] < 5


def test_with_a_token_only_the_bearer_of_it_reads_the_metrics(client, metrics_on):
    metrics_on.PROMETHEUS_METRICS_TOKEN = "scrape-secret"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert scrape(client, Authorization="Bearer scrape-secret")


def test_under_gunicorn_the_scrape_sums_every_workers_requests(tmp_path):
    """prometheus_client's multiprocess mode, as docs/operations.md tells to run it. /healthz needs no
    tables (an empty SQLite file answers SELECT 1), so the node needs no migrated database."""
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_HTTPS": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'node.sqlite3'}",
        "PORTAL_VAR_DIR": str(tmp_path / "var"),
        "STATIC_MANIFEST": "0",
        "PROMETHEUS_METRICS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_ACCESS_LOG": "/dev/null",
        # Each worker is replaced after 3 requests: the 9 are answered by at least 3 processes, some
        # of them gone by the scrape, whose counts must still be summed.
        "GUNICORN_MAX_REQUESTS": "3",
    }
    env.pop("REDIS_URL", None)
    log = (tmp_path / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(
        [Path(sys.executable).parent / "gunicorn", "--config", ROOT / "deploy" / "gunicorn.conf.py"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(f"{base}/healthz", gunicorn, tmp_path / "gunicorn.log")
        for _ in range(8):
            # A worker that has just replaced another imports the portal first: on a loaded machine, seconds.
            assert requests.get(f"{base}/healthz", timeout=60).status_code == 200
        scraped = requests.get(f"{base}/metrics", timeout=60)
        assert scraped.status_code == 200, scraped.text
        found = samples(scraped.text)
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        log.close()

    served = found[("portal_http_requests_total", (("method", "GET"), ("status", "200"), ("view", "healthz")))]
    assert served == 9  # the 8 above and the first that answered (refused tries are not requests)
    assert len(list(metrics_dir.glob("counter_*.db"))) >= 3, "each worker process writes its own file"


def wait_until_answering(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited:\n{log.read_text()}")
        try:
            requests.get(url, timeout=60)  # once connected, wait: a request given up on is still counted
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"gunicorn did not answer:\n{log.read_text()}")
