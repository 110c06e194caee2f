"""The fault suite's servers and processes, all private and on loopback.

Each test process starts its own PostgreSQL cluster (initdb into a temporary folder, a free port; run as
the `postgres` user when the tests run as root, which initdb refuses) and, per test, its own redis-server
on a free port; never the shared ones. The portal runs as real processes in the production shape:
gunicorn for the web, `manage.py task_worker` for the workers (RQ on the private Redis, or the database
queue), each in a session of its own so that a SIGKILL takes its forked children too, as systemd's
control group does.

Needs PostgreSQL's server binaries and redis-server: skipped when missing, except in CI (`CI` set).
"""

import email
import glob
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from email import policy
from pathlib import Path

import psycopg
import pytest
import requests

from tests.servers import free_port, wait_listening

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "fault-suite-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
PASSWORD = "fault-suite-password-7c1q"
CUSTOMER_EMAIL = "fault-customer@example.com"


def _needed(what: str):
    message = f"{what} is needed for the fault suite"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _pg_bindir() -> Path | None:
    if shutil.which("pg_config"):
        bindir = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip()
        if (Path(bindir) / "initdb").is_file():
            return Path(bindir)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own, which the test may stop and start."""

    def __init__(self, root: Path):
        self.bindir = _pg_bindir()
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *command: str):
        done = subprocess.run([*self.as_postgres, *command], capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{command[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.as_postgres:
            shutil.chown(self.root, "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N",
                  "-E", "UTF8", "--locale=C")  # fmt: skip

    def start(self) -> None:
        # fsync off: this cluster's data need not survive the machine, only its own restarts.
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=60"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "30", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def running(self) -> bool:
        done = subprocess.run([*self.as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True)  # fmt: skip
        return done.returncode == 0

    def url(self, name: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def execute(self, sql: str, params=(), *, database: str = "postgres") -> list[tuple]:
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as connection:
            cursor = connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


class PrivateRedis:
    """A redis-server of the test's own with an append-only file, which the test may kill, restart, freeze."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
                   "--save", "", "--appendonly", "yes", "--maxmemory-policy", "noeviction"]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port, self.process, "redis-server")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def freeze(self) -> None:
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.thaw()
            self.kill()

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def postgres_cluster():
    if _pg_bindir() is None:
        _needed("PostgreSQL's server (initdb, pg_ctl)")
    # Not under pytest's tmp_path: its folders are private to the user running the tests.
    cluster = PrivatePostgres(Path(tempfile.mkdtemp(prefix="portal-faults-pg-")))
    cluster.init()
    cluster.start()
    try:
        # Migrated once; every test gets a copy (CREATE DATABASE … TEMPLATE is a file copy).
        cluster.execute("CREATE DATABASE portal_template")
        env = {**os.environ, "DATABASE_URL": cluster.url("portal_template"), "DJANGO_SECRET_KEY": SECRET_KEY}
        env.pop("TASKS_BACKEND", None)
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
        subprocess.run([sys.executable, "tests/faults/seed.py", "customer", CUSTOMER_EMAIL, PASSWORD], cwd=ROOT,
                       env=env, check=True)  # fmt: skip
        yield cluster
    finally:
        try:
            cluster.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(cluster.root, ignore_errors=True)


@pytest.fixture
def postgres(postgres_cluster):
    """A fresh migrated database on the private cluster (which is running when the test starts)."""
    if not postgres_cluster.running():  # a test that stopped it failed before starting it again
        postgres_cluster.start()
    name = f"portal_{time.time_ns()}"
    postgres_cluster.execute(f'CREATE DATABASE "{name}" TEMPLATE portal_template')
    yield postgres_cluster, name
    try:
        postgres_cluster.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    except psycopg.OperationalError:
        pass


@pytest.fixture
def redis(tmp_path):
    if shutil.which("redis-server") is None:
        _needed("redis-server")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class Stack:
    """The portal's processes over the private servers: web nodes and task workers."""

    def __init__(self, tmp_path: Path, postgres: PrivatePostgres, database: str, redis: PrivateRedis, backend: str):
        self.tmp = tmp_path
        self.postgres = postgres
        self.database = database
        self.redis = redis
        self.mail_dir = tmp_path / "mail"
        self.processes: dict[str, subprocess.Popen] = {}
        self._connection: psycopg.Connection | None = None
        self.web_url = ""
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": postgres.url(database),
            "DATABASE_CONN_MAX_AGE": "600",
            "REDIS_URL": redis.url(1),
            "TASKS_BACKEND": backend,
            "TASKS_REDIS_URL": redis.url(0),
            "DJANGO_SECRET_KEY": SECRET_KEY,
            "DJANGO_DEBUG": "0",
            "DJANGO_HTTPS": "0",
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "STATIC_MANIFEST": "0",
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
            "MEDIA_ROOT": str(tmp_path / "media"),
            "EMAIL_URL": f"file://{self.mail_dir}",
            "PAYMENT_GATEWAY": "billing.gateways.fake.FakeGateway",
            "LOG_LEVEL": "WARNING",
        }

    def start(self, name: str, command: list[str]) -> subprocess.Popen:
        log = (self.tmp / f"{name}.log").open("ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes[name] = process
        return process

    def start_worker(self, name: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "manage.py", "task_worker", "--interval=0.1", "-v0"])

    def start_web(self, workers: int = 2) -> None:
        port = free_port()
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        self.start("web", [gunicorn, "portal.wsgi", f"--workers={workers}", f"--bind=127.0.0.1:{port}", "--timeout=30",
                           "--log-level=warning"])  # fmt: skip
        self.web_url = f"http://127.0.0.1:{port}"
        wait_listening(port, self.processes["web"], "gunicorn", timeout=30)

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children (RQ's work horse), as an OOM kill of the unit would."""
        process = self.processes[name]
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)

    def manage(self, *args: str, timeout: float = 120) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=self.env, capture_output=True,
                              text=True, timeout=timeout)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def seed(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "tests/faults/seed.py", *args], cwd=ROOT, env=self.env,
                              capture_output=True, text=True, timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout.strip()

    def query(self, sql: str, params=()) -> list[tuple]:
        # One connection kept for the test's polls (twenty a second while workers are killed): a connection
        # per poll would have PostgreSQL fork a backend for each, CPU the workers under test need.
        try:
            return self._query(sql, params)
        except psycopg.OperationalError:
            return self._query(sql, params)  # the kept one a database restart broke: once more, on a new one

    def _query(self, sql: str, params) -> list[tuple]:
        if self._connection is None or self._connection.closed:
            self._connection = psycopg.connect(self.postgres.url(self.database), autocommit=True, connect_timeout=5)
        try:
            cursor = self._connection.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
        except psycopg.OperationalError:
            self._connection.close()
            raise

    def emails_by_status(self) -> dict[str, int]:
        return dict(self.query("SELECT status, count(*) FROM portal_outboundemail GROUP BY status"))

    def mail_files(self) -> list[email.message.EmailMessage]:
        return [
            email.message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(self.mail_dir.glob("*.eml"))
        ]

    def logs(self) -> str:
        return "\n".join(f"--- {path.name}\n{path.read_text()[-4000:]}" for path in sorted(self.tmp.glob("*.log")))

    def stop(self) -> None:
        if self._connection is not None:
            self._connection.close()
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for name, process in self.processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill(name)


@pytest.fixture
def make_stack(tmp_path, postgres, redis):
    stacks = []

    def make(backend: str = "rq") -> Stack:
        cluster, database = postgres
        stack = Stack(tmp_path, cluster, database, redis, backend)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


def wait_until(description: str, ready, timeout: float, stack: Stack | None = None, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except (OSError, requests.RequestException, psycopg.OperationalError):
            pass
        time.sleep(interval)
    raise AssertionError(f"{description}: not after {timeout} s" + (f"\n{stack.logs()}" if stack else ""))


# How long a run may go without progress before it counts as stuck: generous, as a busy machine (CI
# shared by other jobs) takes seconds to start a worker.
STALL_SECONDS = 120


def wait_progress(stack: Stack, description: str, count, target: float, stall: float = STALL_SECONDS) -> None:
    """Wait until count() reaches target; fail only if it stops moving for `stall` seconds."""
    last, moved = count(), time.monotonic()
    while last < target:
        time.sleep(0.5)
        now = count()
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > stall:
            raise AssertionError(f"{description}: stuck at {last} for {stall} s\n{stack.logs()}")
