"""Request ids on responses, log lines and task logs; JSON logs; error reports to Sentry over real HTTP."""

import gzip
import json
import logging
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sentry_sdk

from portal.observability import RequestIdFilter, sentry_init

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


class RecordsWithRequestIds(logging.Handler):
    """Keep every record with the request id the portal's filter gives it, as the console handler does."""

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.addFilter(RequestIdFilter())
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_records():
    handler = RecordsWithRequestIds()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def observed_urls(settings):
    settings.ROOT_URLCONF = "tests.portal.observed_views"


def test_a_request_without_an_id_is_given_a_new_one_in_its_response(client):
    first = client.get("/healthz")["X-Request-ID"]
    second = client.get("/healthz")["X-Request-ID"]

    assert len(first) == 32 and int(first, 16) >= 0
    assert first != second


def test_a_sane_request_id_from_the_load_balancer_is_kept(client):
    response = client.get("/healthz", headers={"X-Request-ID": "Root=1-67891233-abcdef012345678912345678"})

    assert response["X-Request-ID"] == "Root=1-67891233-abcdef012345678912345678"


@pytest.mark.parametrize(
    "sent",
    ["short", "x" * 65, "abc def ghi", "forged\nERROR line", "<script>alert(1)</script>", "ünïcödé-id-123"],
)
def test_a_request_id_that_is_too_short_too_long_or_unsafe_is_replaced(client, sent):
    kept = client.get("/healthz", headers={"X-Request-ID": sent})["X-Request-ID"]

    assert kept != sent and len(kept) == 32


def test_every_log_line_of_a_request_carries_its_id_even_djangos_own_after_the_response(client, log_records):
    response = client.get("/no-such-page/", headers={"X-Request-ID": "lb-request-0001"})

    assert response.status_code == 404
    not_found = [record for record in log_records if record.name == "django.request"]
    assert [record.request_id for record in not_found] == ["lb-request-0001"]


def test_a_line_logged_outside_any_request_has_no_request_id(client, log_records):
    client.get("/healthz")
    logging.getLogger("tests.observed").warning("after the request")

    assert log_records[-1].request_id == "-"


def test_a_task_enqueued_by_a_request_logs_under_that_requests_id(client, observed_urls, log_records, run_tasks):
    client.get("/observed/enqueue/", headers={"X-Request-ID": "lb-request-0002"})

    assert run_tasks() == 1
    lines = [(record.getMessage(), record.request_id) for record in log_records if record.name == "tests.observed"]
    assert lines == [("enqueuing", "lb-request-0002"), ("inside the task", "lb-request-0002")]
    logging.getLogger("tests.observed").info("the worker waits for the next task")
    assert log_records[-1].request_id == "-"


def test_log_format_json_writes_one_json_object_a_line_with_the_request_id_and_without_the_request():
    """The settings' own LOGGING, in a fresh process as a node starts."""
    script = (
        "import django, logging\n"
        "django.setup()\n"
        "from portal.observability import request_id_set\n"
        "request_id_set('lb-request-0003')\n"
        "logging.getLogger('django.request').warning("
        "'Not Found: %s', '/hub/secret-token/', extra={'status_code': 404, 'request': object()})\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "LOG_FORMAT": "json"}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )

    line = json.loads(result.stderr.strip().splitlines()[-1])
    assert line["request_id"] == "lb-request-0003"
    assert (line["level"], line["logger"], line["message"]) == ("WARNING", "django.request", "Not Found: /hub/[token]/")
    assert line["status_code"] == 404 and "timestamp" in line
    assert "request" not in line


def test_plain_logs_name_the_request_id_in_brackets():
    script = (
        "import django, logging\n"
        "django.setup()\n"
        "from portal.observability import request_id_set\n"
        "request_id_set('lb-request-0004')\n"
        "logging.getLogger('portal').warning('hello')\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    env.pop("LOG_FORMAT", None)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )

    assert result.stderr.strip().endswith("WARNING portal [lb-request-0004] hello")


# --- Sentry -------------------------------------------------------------------------------------


class SentryStandIn(BaseHTTPRequestHandler):
    """Accepts envelopes as Sentry's ingest does (POST /api/<project>/envelope/) and keeps them."""

    received: list[tuple[str, bytes]]

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        elif self.headers.get("Content-Encoding") == "br":
            import brotli

            body = brotli.decompress(body)
        self.server.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format, *args):
        pass


@pytest.fixture
def sentry_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), SentryStandIn)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def sentry_on(sentry_server, settings):
    settings.SENTRY_DSN = f"http://publickey@127.0.0.1:{sentry_server.server_address[1]}/42"
    sentry_init(dsn=settings.SENTRY_DSN, release="portal@test", environment="test", traces_sample_rate=0.0)
    yield sentry_server.received
    sentry_sdk.flush(timeout=5)
    sentry_sdk.init()  # no DSN: the client is inactive again for the following tests


def envelope_events(received) -> list[dict]:
    events = []
    for path, body in received:
        assert path == "/api/42/envelope/"
        lines = body.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_an_exception_in_a_view_reaches_sentry_tagged_with_the_request_id_and_scrubbed(
    client, observed_urls, sentry_on
):
    client.raise_request_exception = False

    response = client.get(
        "/observed/broken/?card=4000000000000002",
        headers={"X-Request-ID": "lb-request-0005", "Cookie": "sessionid=abc"},
    )
    sentry_sdk.flush(timeout=5)

    assert response.status_code == 500
    [event] = envelope_events(sentry_on)
    [exception] = event["exception"]["values"]
    assert exception["type"] == "CardDetailsLeaked"
    assert event["tags"]["request_id"] == "lb-request-0005"
    assert (event["release"], event["environment"]) == ("portal@test", "test")
    text = json.dumps(event)
    assert "4242424242424242" not in text and "4000000000000002" not in text and "sk_live_abc123DEF" not in text
    assert "[Filtered]" in exception["value"]
    assert "sessionid=abc" not in text and "abc" not in event["request"].get("cookies", {}).values()
    assert "ip_address" not in event.get("user", {})
    assert sentry_sdk.get_client().options["send_default_pii"] in (False, None)


def test_sentry_stays_off_without_a_dsn_and_starts_with_one():
    script = "import django, sentry_sdk\ndjango.setup()\nprint(sentry_sdk.get_client().is_active())\n"
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    base.pop("SENTRY_DSN", None)

    def active(env):
        return subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()

    assert active(base) == "False"
    assert active({**base, "SENTRY_DSN": "http://publickey@127.0.0.1:9/1"}) == "True"
