"""Scale-out: two app nodes over one PostgreSQL and one Redis, with two task workers.

Real processes on loopback, as on several machines: two gunicorn nodes on two free ports, two
`manage.py db_worker` processes and localstripe, over a database of their own (created, migrated and
dropped here) and a Redis database flushed at the start. The test then shows that nothing assumes one
process: a session signed in on one node works on the other (and signing out on one ends it on both),
the sign-in rate limit counts failures made on both nodes together, the same Stripe event delivered to
both nodes at once is stored once and applied once by the workers, and an email whose send task was
enqueued five times is sent once by the two workers together.

Needs PostgreSQL and Redis on 127.0.0.1 (POSTGRES_URL / SCALE_REDIS_URL to point elsewhere): skipped
when they are not reachable, except in CI, where it fails instead.
"""

import email
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from email import policy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from tests.billing.conftest import stripe_event, stripe_signature

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# A Redis database of its own (db 15 belongs to tests/accounts), flushed when the test starts.
REDIS_URL = os.environ.get("SCALE_REDIS_URL", "redis://127.0.0.1:6379/13")
WEBHOOK_SECRET = "whsec_scale_out_test"
PASSWORD = "scale-out-password-9f3k"
STARTUP_SECONDS = 30
RATE_LIMIT_MESSAGE = "Too many failed login attempts"


def _unavailable(what: str, error: Exception):
    message = f"{what} is needed for the scale-out test: {error}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(description: str, ready, timeout: float, processes=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise AssertionError(f"{description}: {process.args[:3]} exited with {process.returncode}")
        try:
            if ready():
                return
        except (OSError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError(f"{description}: not ready after {timeout} s")


@pytest.fixture
def postgres():
    """A database of its own on the shared PostgreSQL (unique name, so parallel runs never meet)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        _unavailable("PostgreSQL", error)
    name = f"portal_scale_{uuid.uuid4().hex[:12]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    url = urlsplit(POSTGRES_URL)._replace(path=f"/{name}").geturl()
    try:
        yield url
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture
def redis_db():
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.ConnectionError as error:
        _unavailable("Redis", error)
    yield client
    client.flushdb()
    client.close()


class Cluster:
    """The processes of two machines' worth of portal, and what the test needs to reach them."""

    def __init__(self, tmp_path: Path, database_url: str):
        self.tmp = tmp_path
        self.database_url = database_url
        self.mail_dir = tmp_path / "mail"
        self.processes: list[subprocess.Popen] = []
        self.nodes: list[str] = []
        self.seed: dict = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "DJANGO_SECRET_KEY": "scale-out-test-secret-key-shared-by-every-node-0123456789",
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "STATIC_MANIFEST": "0",
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "EMAIL_URL": f"file://{self.mail_dir}",
            "PAYMENT_GATEWAY": "billing.gateways.stripe.StripeGateway",
            "STRIPE_SECRET_KEY": "sk_test_localstripe",
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "LOG_LEVEL": "WARNING",
        }

    def start(self, name: str, command: list[str], **env) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("wb")
        process = subprocess.Popen(
            command, cwd=ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.tmp.glob("*.log")))

    def stop(self):
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def cluster(tmp_path, postgres, redis_db):
    cluster = Cluster(tmp_path, postgres)
    python = sys.executable
    try:
        stripe_port = _free_port()
        localstripe = cluster.start(
            "localstripe",
            [python, "-m", "portal.localstripe", "--port", str(stripe_port), "--state", str(tmp_path / "ls.pickle"),
             "--from-scratch"],
        )  # fmt: skip
        cluster.env["STRIPE_API_BASE"] = f"http://127.0.0.1:{stripe_port}"
        subprocess.run([python, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=cluster.env, check=True)
        _wait_for(
            "localstripe",
            lambda: socket.create_connection(("127.0.0.1", stripe_port), timeout=0.2).close() or True,
            STARTUP_SECONDS,
            [localstripe],
        )
        seeded = subprocess.run(
            [python, "tests/scale/cluster_seed.py", PASSWORD],
            cwd=ROOT,
            env=cluster.env,
            check=True,
            capture_output=True,
            text=True,
        )
        cluster.seed = json.loads(seeded.stdout.strip().splitlines()[-1])

        gunicorn = str(Path(python).parent / "gunicorn")
        for node in (1, 2):
            port = _free_port()
            cluster.nodes.append(f"http://127.0.0.1:{port}")
            cluster.start(
                f"node{node}",
                [gunicorn, "portal.wsgi", "--workers=1", f"--bind=127.0.0.1:{port}", "--log-level=warning"],
            )
        for worker in (1, 2):
            cluster.start(
                f"worker{worker}",
                [python, "manage.py", "db_worker", "--queue-name=*", "--interval=0.1", "--no-startup-delay",
                 f"--worker-id=scale-worker-{worker}"],
            )  # fmt: skip
        for node in cluster.nodes:
            _wait_for(
                node,
                lambda node=node: requests.get(f"{node}/healthz", timeout=2).status_code == 200,
                STARTUP_SECONDS,
                cluster.processes,
            )
        yield cluster
    except Exception:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()


def _sign_in(session: requests.Session, node: str, email_address: str, password: str) -> requests.Response:
    """Sign in through allauth's login form on one node, as a browser would."""
    page = session.get(f"{node}/accounts/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return session.post(
        f"{node}/accounts/login/",
        data={"login": email_address, "password": password, "csrfmiddlewaretoken": token},
        allow_redirects=False,
        timeout=10,
    )


def _query(database_url: str, sql: str, params=()) -> list[tuple]:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()


def _emails(mail_dir: Path) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(path.read_bytes(), policy=policy.default) for path in mail_dir.glob("*.eml")]


def test_two_nodes_and_two_workers_share_sessions_rate_limits_webhook_effects_and_sending(cluster, redis_db):
    node_a, node_b = cluster.nodes
    seed = cluster.seed

    # A session signed in on one node works on the other, and signing out on one ends it on both.
    browser = requests.Session()
    signed_in = _sign_in(browser, node_a, seed["customer_email"], PASSWORD)
    assert signed_in.status_code == 302 and "sessionid" in browser.cookies, signed_in.text[:500]
    home = browser.get(f"{node_b}/", allow_redirects=False, timeout=10)
    assert home.status_code == 200 and f"Welcome, {seed['customer_name']}" in home.text
    assert browser.get(f"{node_b}/settings/contact/", allow_redirects=False, timeout=10).status_code == 200
    logout_page = browser.get(f"{node_b}/accounts/logout/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', logout_page.text).group(1)
    browser.post(f"{node_b}/accounts/logout/", data={"csrfmiddlewaretoken": token}, timeout=10)
    after = browser.get(f"{node_a}/", allow_redirects=False, timeout=10)
    assert after.status_code == 302 and "/accounts/login/" in after.headers["Location"]

    # Failed sign-ins are counted in Redis, shared by both nodes: three on A and two on B reach the
    # limit of five for the address, though neither node alone saw five; the right password is then refused.
    guesser = requests.Session()
    for node in [node_a, node_b, node_a, node_b, node_a]:
        refused = _sign_in(guesser, node, seed["rate_limited_email"], "wrong-password-123")
        assert refused.status_code == 200 and RATE_LIMIT_MESSAGE not in refused.text
    limited = _sign_in(guesser, node_b, seed["rate_limited_email"], PASSWORD)
    assert limited.status_code == 200 and RATE_LIMIT_MESSAGE in limited.text
    assert "sessionid" not in guesser.cookies
    assert any(b"login_failed" in key for key in redis_db.keys("*"))

    # The same Stripe event delivered twice to each node at the same moment has one effect.
    body = stripe_event("invoice.payment_succeeded", {"id": seed["invoice_id"], "object": "invoice"})
    event_id = json.loads(body)["id"]
    start = threading.Barrier(4)
    statuses = []

    def deliver(node):
        start.wait()
        response = requests.post(
            f"{node}/stripe/webhook/",
            data=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": stripe_signature(body, WEBHOOK_SECRET)},
            timeout=30,
        )
        statuses.append(response.status_code)

    deliveries = [threading.Thread(target=deliver, args=(node,)) for node in [node_a, node_b, node_a, node_b]]
    for thread in deliveries:
        thread.start()
    for thread in deliveries:
        thread.join(timeout=40)
    assert statuses == [200, 200, 200, 200], cluster.logs()

    # The nodes only stored it and queued its application; one of the workers applies it, once.
    def applied():
        return _query(
            cluster.database_url, "SELECT status FROM billing_webhookevent WHERE stripe_event_id = %s", [event_id]
        ) == [("processed",)]

    _wait_for("the webhook's application", applied, 30, cluster.processes)
    assert _query(
        cluster.database_url, "SELECT status, attempts FROM billing_webhookevent WHERE stripe_event_id = %s", [event_id]
    ) == [("processed", 1)]
    purchases = _query(
        cluster.database_url, "SELECT id FROM purchases_purchase WHERE stripe_invoice_id = %s", [seed["invoice_id"]]
    )
    assert len(purchases) == 1
    receipts = _query(cluster.database_url, "SELECT number FROM purchases_receipt WHERE purchase_id = %s", purchases[0])
    assert len(receipts) == 1
    assert _query(
        cluster.database_url,
        "SELECT count(*) FROM portal_outboundemail WHERE kind = 'receipt' AND customer_id = %s",
        [seed["customer_id"]],
    ) == [(1,)]

    # Every queued email is sent once by the two workers together; the one whose send task was
    # enqueued five times too (the workers took those tasks side by side and met on the row's lock).
    def drained():
        pending = _query(
            cluster.database_url,
            "SELECT count(*) FROM django_tasks_database_dbtaskresult WHERE status IN ('READY', 'RUNNING')",
        )[0][0]
        queued = _query(cluster.database_url, "SELECT count(*) FROM portal_outboundemail WHERE status = 'queued'")[0][0]
        return pending == 0 and queued == 0

    _wait_for("the task workers", drained, 30, cluster.processes)
    sent = _query(
        cluster.database_url, "SELECT id, subject, \"to\", attempts FROM portal_outboundemail WHERE status = 'sent'"
    )
    raced = [row for row in sent if row[0] == seed["raced_email_id"]]
    assert len(raced) == 1 and raced[0][3] == 1
    assert _query(
        cluster.database_url,
        # Only the email's sending task: another task (a webhook's application, a push) may take an id
        # that happens to equal the email's.
        "SELECT status, count(*) FROM django_tasks_database_dbtaskresult"
        " WHERE task_path = %s AND args_kwargs::text LIKE %s GROUP BY status",
        ["console.tasks.email_send", f'%"args": [{seed["raced_email_id"]}]%'],
    ) == [("SUCCESSFUL", 5)]
    messages = _emails(cluster.mail_dir)
    assert len(messages) == len(sent), [m["Subject"] for m in messages]
    for _, subject, to, _ in sent:
        assert [m["Subject"] for m in messages if m["To"].addresses[0].addr_spec == to].count(subject) == 1
    receipt_email = _query(cluster.database_url, "SELECT subject FROM portal_outboundemail WHERE kind = 'receipt'")
    assert [m["Subject"] for m in messages].count(receipt_email[0][0]) == 1
