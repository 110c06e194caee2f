"""Load the customer pages with wrk against gunicorn and PostgreSQL, next to two anchors in the same run.

    .venv/bin/python bench/run.py [--duration 10] [--rounds 2] [--workers N] [--connections C]
    make bench                       # the same, BENCH_ARGS="--duration 5" to pass options

What it does, all on loopback and bounded in time:

1. Creates (when missing) and migrates its own database `portal_bench` on the local PostgreSQL, runs
   collectstatic, and seeds through the project's services: a customer with 200 purchases (receipts,
   access grants, every tenth partly refunded), three cards and two live subscriptions (fake gateway;
   the billing page reads the mirror and never calls the processor on GET).
2. Serves the project with gunicorn (sync workers) under the production settings: DEBUG off,
   HTTPS on behind a proxy (every request carries X-Forwarded-Proto: https, as from a load balancer),
   hashed static files, persistent database connections. The anchors of portal/bench_views.py are
   routed (BENCH_ANCHORS=1): `hello` (anonymous, the stack's ceiling) and `me` (signed in, renders the
   user, two queries).
3. Signs in once through allauth's login form (a real POST) and loads each page with wrk for
   --duration seconds after a one-second warm-up, in --rounds rounds; every round measures `hello`
   first and last, and each page's ratio is to the mean of those two.
   Webhook ingestion POSTs distinct signed `customer.updated` events for a Stripe customer the portal
   does not know (see docs/benchmarks.md for why that event).
4. Counts the queries of one request of each page in this process, through the same middleware and
   the same signed-in session (Django's test client, after a warm-up request), and the server CPU a
   request costs (gunicorn workers and their PostgreSQL backends, from /proc): steadier than the rate
   when something else runs on the machine.
5. Times bench/resync.py (10,000 receipts) and the admin contact list with 100,000 contacts.

Prints a Markdown table (rate, p50, p99, non-2xx, queries, ratio to hello, target, server CPU) and writes the
raw figures to var/bench/results.json. Exits 1 when a target is missed.
"""

import argparse
import http.client
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / "var" / "bench"
LOAD_SCRIPT = Path(__file__).resolve().parent / "load.lua"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/portal_bench"
QUERY_BUDGET = 8
WEBHOOK_SECRET = "whsec_bench_only_not_a_real_secret"


@dataclass(frozen=True)
class Page:
    key: str
    path: str
    target: float | None  # least share of hello's rate; None for the anchors and the webhook
    signed_in: bool = True
    webhook: bool = False
    customer_page: bool = True


@dataclass
class Measured:
    page: Page
    runs: list[dict] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)
    queries: int | None = None

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)

    @property
    def rate(self) -> float:
        return statistics.median(run["requests"] / (run["duration_us"] / 1e6) for run in self.runs)

    @property
    def cpu_ms(self) -> float:
        return statistics.median(run["server_cpu_ms"] for run in self.runs)

    @property
    def non2xx(self) -> int:
        return sum(run["non2xx"] + run["connect_errors"] + run["read_errors"] + run["timeouts"] for run in self.runs)

    @property
    def ratio(self) -> float | None:
        return statistics.median(self.ratios) if self.ratios else None

    @property
    def met(self) -> bool:
        if self.non2xx:
            return False
        if self.page.customer_page and self.queries is not None and self.queries > QUERY_BUDGET:
            return False
        return self.page.target is None or (self.ratio is not None and self.ratio >= self.page.target)


def pages(receipt_number: str, subscription_pk: int) -> list[Page]:
    receipt = f"/purchases/receipts/{receipt_number}/"
    return [
        Page("hello", "/bench/hello/", None, signed_in=False, customer_page=False),
        Page("me (signed-in minimum)", "/bench/me/", None, customer_page=False),
        Page("/ (hub)", "/", 0.13),
        Page("/settings/contact/", "/settings/contact/", 0.13),
        Page("/settings/profile/", "/settings/profile/", 0.13),
        Page("/settings/social/", "/settings/social/", 0.13),
        Page("/settings/password/", "/settings/password/", 0.13),
        Page("/billing/", "/billing/", 0.13),
        Page("/purchases/ (200 purchases)", "/purchases/", 0.06),
        Page("/purchases/ searched", "/purchases/?number=R-&year=2026", 0.06),
        Page("/settings/data/", "/settings/data/", 0.13),
        Page("cancel page (reasons)", f"/billing/subscriptions/{subscription_pk}/cancel/", 0.13),
        Page("receipt page", receipt, 0.06),
        Page("receipt PDF", f"{receipt}pdf/", 0.05),
        Page("webhook (signed event)", "/stripe/webhook/", None, signed_in=False, webhook=True, customer_page=False),
    ]


# --- environment -----------------------------------------------------------------------------------


def ensure_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    with psycopg.connect(parts._replace(path="/postgres").geturl(), autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def bench_environment(args) -> dict[str, str]:
    """The production settings, on loopback behind a pretend TLS load balancer."""
    env = {
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "DATABASE_URL": args.database_url,
        "DJANGO_SECRET_KEY": "bench-only-secret-key-" + "x" * 40,
        "DJANGO_DEBUG": "0",
        "DJANGO_HTTPS": "1",
        "DJANGO_BEHIND_PROXY": "1",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_MANIFEST": "1",
        "STATIC_ROOT": str(BENCH_DIR / "static"),
        "PORTAL_VAR_DIR": str(BENCH_DIR),
        "EMAIL_URL": "locmem:",
        "PAYMENT_GATEWAY": "billing.gateways.fake.FakeGateway",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BENCH_ANCHORS": "1",
        "LOG_LEVEL": "WARNING",
    }
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine() -> dict[str, str]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    import django
    import gunicorn
    from django.db import connection

    pg = connection.pg_version
    return {
        "date": datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "cpu": f"{cpu}, {os.cpu_count()} cores",
        "memory": f"{mem_kb / 1024 / 1024:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "wrk": (wrk.stdout or wrk.stderr).split("[")[0].strip(),
        "postgresql": f"{pg // 10000}.{pg % 10000}",
    }


# --- serving ---------------------------------------------------------------------------------------


class Gunicorn:
    def __init__(self, *, env: dict[str, str], workers: int, port: int, log: Path):
        self.port = port
        self.command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "portal.wsgi",
            "--worker-class=sync",
            f"--workers={workers}",
            f"--bind=127.0.0.1:{port}",
            "--backlog=2048",
            "--timeout=60",
            "--log-level=warning",
            f"--error-logfile={log}",
        ]
        self.env = {**os.environ, **env}
        self.process = None

    def __enter__(self):
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}; see {self.command[-1]}")
            try:
                status, _, _ = http_request(self.port, "GET", "/healthz")
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        raise SystemExit("gunicorn did not answer /healthz within 30 s")

    def __exit__(self, *exc):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def http_request(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"X-Forwarded-Proto": "https", **(headers or {})})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


def _cookies(headers) -> dict[str, str]:
    found = {}
    for name, value in headers:
        if name.lower() == "set-cookie":
            key, _, rest = value.partition("=")
            found[key.strip()] = rest.split(";", 1)[0]
    return found


def sign_in(port: int, *, email: str, password: str) -> str:
    """Sign in through allauth's login form, as a browser would; return the Cookie header to send."""
    status, headers, body = http_request(port, "GET", "/accounts/login/")
    if status != 200:
        raise SystemExit(f"GET /accounts/login/ answered {status}")
    cookies = _cookies(headers)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body).group(1).decode()
    form = urlencode({"login": email, "password": password, "csrfmiddlewaretoken": token}).encode()
    status, headers, body = http_request(
        port,
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
            "Referer": f"https://127.0.0.1:{port}/accounts/login/",
            "Origin": f"https://127.0.0.1:{port}",
        },
    )
    cookies.update(_cookies(headers))
    if status != 302 or "sessionid" not in cookies:
        raise SystemExit(f"signing in failed: {status} {body[:500]!r}")
    return f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}"


# --- measuring -------------------------------------------------------------------------------------


class ServerCpu:
    """CPU time of the gunicorn workers and of their PostgreSQL backends, read from /proc.

    Throughput on a shared machine moves with whatever else runs there; the CPU a request costs the
    server moves much less, so the report gives it next to the rate as a check on the ratios."""

    def __init__(self, *, master_pid: int, database_url: str):
        self.master_pid = master_pid
        self.database_url = database_url
        self.tick = os.sysconf("SC_CLK_TCK")

    def _pids(self) -> list[int]:
        import psycopg

        workers = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.master_pid:
                workers.append(int(stat.parent.name))
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            backends = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchall()
        return workers + [pid for (pid,) in backends]

    def seconds(self, pids: list[int]) -> float:
        total = 0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / self.tick

    def __call__(self, run):
        """Run `run()` and return its result with the server's CPU seconds it took."""
        pids = self._pids()
        before = self.seconds(pids)
        result = run()
        return result, self.seconds(pids) - before


def wrk(port: int, page: Page, *, seconds: int, threads: int, connections: int, cookie: str, events: Path | None):
    env = {
        **os.environ,
        "BENCH_COOKIE": cookie if page.signed_in else "",
        "BENCH_EVENTS": str(events) if page.webhook else "",
        "BENCH_THREADS": str(threads),
    }
    command = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={LOAD_SCRIPT}",
        f"http://127.0.0.1:{port}{page.path}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, env=env, timeout=seconds + 60).stdout
    line = next((line for line in output.splitlines() if line.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk printed no result for {page.path}:\n{output}")
    return json.loads(line.removeprefix("BENCH_RESULT "))


def count_queries(page: Page, *, session_id: str) -> int:
    """Queries of one request in steady state, through the full middleware, in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.seed import webhook_body

    client = Client(HTTP_HOST="127.0.0.1")
    if page.signed_in:
        client.cookies["sessionid"] = session_id

    def one():
        if page.webhook:
            import hashlib
            import hmac

            created = int(time.time())
            body = webhook_body(event_id=f"evt_bench_q_{uuid.uuid4().hex[:16]}", created=created)
            digest = hmac.new(WEBHOOK_SECRET.encode(), f"{created}.{body}".encode(), hashlib.sha256).hexdigest()
            return client.post(
                page.path,
                data=body,
                content_type="application/json",
                headers={"Stripe-Signature": f"t={created},v1={digest}"},
                secure=True,
            )
        return client.get(page.path, secure=True)

    one()
    with CaptureQueriesContext(connection) as queries:
        response = one()
    if not 200 <= response.status_code < 300:
        raise SystemExit(f"{page.path} answered {response.status_code} in the query count")
    return len(queries.captured_queries)


def resync_timing(database_url: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "resync.py"), "--receipts", "10000", "--runs", "5"],
        capture_output=True,
        text=True,
        env={**os.environ, "BENCH_DATABASE_URL": database_url},
        timeout=600,
        cwd=ROOT,
    )
    if result.returncode:
        raise SystemExit(f"bench/resync.py failed:\n{result.stderr}")
    return result.stdout.strip().splitlines()


def admin_timing(*, contacts: int, password: str, repeats: int = 5) -> list[dict]:
    """Time the admin's contact list (and a search in it) over `contacts` contacts, in this process."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.seed import admin_seed, contact_probe

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(admin_seed(password=password), backend="accounts.backends.PortalAuthenticationBackend")
    probe = contact_probe()
    surname = probe.full_name.split()[-1]
    rows = []
    for label, path in [
        ("contact list, first page", "/admin/accounts/customer/"),
        ("contact list, page 1,000", "/admin/accounts/customer/?p=999"),
        ("contact list by lifetime value, first page", "/admin/accounts/customer/?o=-5"),
        (f"search: a surname ({surname})", f"/admin/accounts/customer/?{urlencode({'q': surname})}"),
        ("search: one email address", f"/admin/accounts/customer/?{urlencode({'q': probe.email})}"),
        ("search: a mail provider (gmail.com)", "/admin/accounts/customer/?q=gmail.com"),
    ]:
        response = client.get(path, secure=True)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        times, sql = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            with CaptureQueriesContext(connection) as queries:
                client.get(path, secure=True)
            times.append(time.perf_counter() - start)
            sql.append(sum(float(query["time"]) for query in queries.captured_queries))
        rows.append(
            {
                "what": label,
                "path": path,
                "median_ms": statistics.median(times) * 1000,
                "min_ms": min(times) * 1000,
                "max_ms": max(times) * 1000,
                "sql_ms": statistics.median(sql) * 1000,
                "queries": len(queries.captured_queries),
            }
        )
    return rows


# --- report ----------------------------------------------------------------------------------------


def report(results: list[Measured], *, info: dict, seeded, args, resync: list[str], admin: list[dict]) -> str:
    lines = [
        f"date: {info['date']}",
        f"machine: {info['cpu']}, {info['memory']} RAM, {info['os']}",
        f"software: Python {info['python']}, Django {info['django']}, gunicorn {info['gunicorn']} "
        f"({args.workers} sync workers), PostgreSQL {info['postgresql']}, {info['wrk']} "
        f"({args.threads} thread(s), {args.connections} connections)",
        f"load: {args.rounds} round(s) of {args.duration} s per page (after a 1 s warm-up)",
        f"customer: {seeded.purchases} purchases, {seeded.receipts} receipts, {seeded.cards} cards, "
        f"{seeded.subscriptions} subscriptions",
        "",
    ]
    if results:
        lines += [
            "| page | req/s | p50 ms | p99 ms | non-2xx | queries | ratio to hello | target | "
            "| server CPU ms/req | by CPU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|",
        ]
    hello_cpu = results[0].cpu_ms if results else 0
    for m in results:
        ratio = "1 (anchor)" if m.page.key == "hello" else f"{m.ratio:.1%}"
        target = f"≥ {m.page.target:.0%}" if m.page.target else ("0 non-2xx" if m.page.key != "hello" else "")
        lines.append(
            f"| {m.page.key} | {m.rate:,.0f} | {m.median('p50_us') / 1000:.1f} | {m.median('p99_us') / 1000:.1f} "
            f"| {m.non2xx} | {m.queries} | {ratio} | {target} | {'ok' if m.met else 'MISSED'} "
            f"| {m.cpu_ms:.2f} | {hello_cpu / m.cpu_ms:.1%} |"
        )
    wrapped = sum(run["wrapped"] for m in results for run in m.runs)
    if wrapped:
        lines.append(f"\nwarning: the webhook load ran out of distinct events {wrapped} time(s); raise --events")
    if resync:
        lines += ["", "resync (bench/resync.py --receipts 10000 --runs 5):", *[f"  {line}" for line in resync]]
    if admin:
        lines += [
            "",
            f"admin contact list, {args.contacts:,} contacts (median of 5, in process):",
            "",
            "| request | median ms | min | max | of which SQL | queries |",
            "|---|---:|---:|---:|---:|---:|",
            *[
                f"| {row['what']} (`{row['path']}`) | {row['median_ms']:.1f} | {row['min_ms']:.1f} "
                f"| {row['max_ms']:.1f} | {row['sql_ms']:.1f} | {row['queries']} |"
                for row in admin
            ],
        ]
    return "\n".join(lines)


def load_pages(results: dict[str, "Measured"], *, args, env: dict[str, str], password: str) -> None:
    """Serve with gunicorn, sign in, count each page's queries, then load each page with wrk, in rounds."""
    from bench import seed

    selected = [measured.page for measured in results.values()]
    port = free_port()
    run_id = uuid.uuid4().hex[:8]
    with (
        tempfile.TemporaryDirectory(prefix="portal-bench-") as tmp,
        Gunicorn(env=env, workers=args.workers, port=port, log=BENCH_DIR / "gunicorn.log") as server,
    ):
        cookie = sign_in(port, email=seed.CUSTOMER_EMAIL, password=password)
        session_id = re.search(r"sessionid=([^;]+)", cookie).group(1)
        for page in selected:
            results[page.key].queries = count_queries(page, session_id=session_id)
        from django.db import connection

        connection.close()
        cpu = ServerCpu(master_pid=server.process.pid, database_url=args.database_url)
        events = None
        if any(page.webhook for page in selected):
            count = args.events or int(4000 * (args.duration + 1) * args.rounds) + 1000
            events = seed.webhook_deliveries(
                path=Path(tmp) / "events.tsv", count=count, secret=WEBHOOK_SECRET, run_id=run_id
            )
        hello = results["hello"]
        order = [p for p in selected if p.key != "hello"]
        for round_number in range(1, args.rounds + 1):
            round_hello = []
            for page in [hello.page, *order, hello.page]:
                load = dict(threads=args.threads, connections=args.connections, cookie=cookie, events=events)
                wrk(port, page, seconds=1, **load)  # warm-up: templates, connections, the activity write
                run, cpu_seconds = cpu(lambda page=page, load=load: wrk(port, page, seconds=args.duration, **load))
                run["server_cpu_ms"] = cpu_seconds * 1000 / max(run["requests"], 1)
                results[page.key].runs.append(run)
                rate = run["requests"] / (run["duration_us"] / 1e6)
                if page.key == "hello":
                    round_hello.append(rate)
                else:
                    results[page.key].runs[-1]["rate"] = rate
                print(
                    f"round {round_number} {page.key:<30} {rate:8.0f} req/s  p50 {run['p50_us'] / 1000:6.1f} ms"
                    f"  p99 {run['p99_us'] / 1000:6.1f} ms  non-2xx {run['non2xx']}"
                    f"  server CPU {run['server_cpu_ms']:.2f} ms/req",
                    flush=True,
                )
            hello_rate = statistics.mean(round_hello)
            for page in order:
                results[page.key].ratios.append(results[page.key].runs[-1]["rate"] / hello_rate)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per page and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="gunicorn sync workers")
    parser.add_argument("--connections", type=int, default=0, help="wrk connections (default: 2 per worker)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--purchases", type=int, default=200)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=0, help="distinct webhook events (default: enough)")
    parser.add_argument("--only", default="", help="comma-separated page keys or paths to load (anchors always)")
    parser.add_argument("--skip-resync", action="store_true")
    parser.add_argument("--skip-admin", action="store_true")
    parser.add_argument("--skip-load", action="store_true", help="only the resync and admin timings")
    parser.add_argument(
        "--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL), help="PostgreSQL"
    )
    parser.add_argument("--redis-url", default=os.environ.get("BENCH_REDIS_URL", ""), help="cache (default: database)")
    args = parser.parse_args()
    args.connections = args.connections or 2 * args.workers
    args.threads = min(args.threads, args.connections)
    if not shutil.which("wrk") and not Path("/usr/bin/wrk").exists():
        raise SystemExit("wrk is missing: apt-get install wrk")

    started = time.monotonic()
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    ensure_database(args.database_url)
    env = bench_environment(args)
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    from bench import seed

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)
    password = "bench-" + uuid.uuid4().hex
    print("seeding (the first run takes a minute)…", flush=True)
    seeded = seed.customer_seed(password=password, purchases=args.purchases)
    seed.webhook_events_reset()
    info = machine()
    from django.db import connection

    connection.close()  # gunicorn's workers and this process should not share a connection

    all_pages = pages(seeded.receipt_number, seeded.subscription_pk)
    wanted = {item.strip() for item in args.only.split(",") if item.strip()}
    selected = [
        p
        for p in all_pages
        if not wanted or p.key in wanted or p.path in wanted or p.key in ("hello", "me (signed-in minimum)")
    ]
    results = {page.key: Measured(page) for page in selected}
    if not args.skip_load:
        load_pages(results, args=args, env=env, password=password)

    resync = [] if args.skip_resync else resync_timing(args.database_url)
    admin = []
    if not args.skip_admin:
        print(f"seeding {args.contacts:,} contacts for the admin list (once)…", flush=True)
        seed.contacts_seed(count=args.contacts)
        admin = admin_timing(contacts=args.contacts, password=password)

    measured = [] if args.skip_load else [results[p.key] for p in selected]
    text = report(measured, info=info, seeded=seeded, args=args, resync=resync, admin=admin)
    text += f"\n\nwhole run: {time.monotonic() - started:.0f} s"
    print("\n" + text)
    (BENCH_DIR / "results.json").write_text(
        json.dumps(
            {
                "machine": info,
                "args": vars(args),
                "pages": [
                    {
                        "page": m.page.key,
                        "path": m.page.path,
                        "rate": m.rate,
                        "ratio": m.ratio,
                        "target": m.page.target,
                        "queries": m.queries,
                        "non2xx": m.non2xx,
                        "server_cpu_ms": m.cpu_ms,
                        "runs": m.runs,
                        "met": m.met,
                    }
                    for m in measured
                ],
                "resync": resync,
                "admin": admin,
            },
            indent=2,
        )
    )
    return 0 if all(m.met for m in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
