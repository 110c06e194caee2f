"""The wheel, installed as docs/operations.md says, serves every page.

One scenario, outside the checkout, through the scripts in deploy/ that the container image and the
systemd units run: build the wheel (deploy/bin/portal-build-wheel), install it with the runtime lock
into a fresh virtual environment (deploy/bin/portal-install, packages from the registry), collect the
static files and check (collectstatic), migrate and run the deploy checks (release), then start
gunicorn with deploy/gunicorn.conf.py (web) and a task worker (worker) on loopback. A customer then
signs in and opens the pages; the worker sends an email rendered from the wheel's templates.

The database is the suite's kind: a PostgreSQL database of its own when DATABASE_URL names PostgreSQL,
else an SQLite file. It takes a minute or two (most of it installing the locked packages) and runs in
`make test` and CI like every other test.
"""

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import requests

from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
EMAIL = "dana@example.com"
PASSWORD = "deploy-test-password-7c1e"
STARTUP_SECONDS = 40
# Checkout folders that are not the project's source (the wheel is built from a copy without them).
NOT_SOURCE = (".git", ".venv", "var", "node_modules", "dist", "build", "*.egg-info", "__pycache__", "test-results")


def run(command, env, cwd, timeout=600):
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command} exited with {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def wait_until_healthy(url, process, log):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited with {process.returncode}:\n{log.read_text()}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer 200 within {STARTUP_SECONDS} s:\n{log.read_text()}")


def wait_until_worker_ok(url, worker, log):
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise AssertionError(f"{worker.args} exited with {worker.returncode}:\n{log.read_text()}")
        if requests.get(url, timeout=5).json()["worker"] == "ok":
            return
        time.sleep(0.5)
    raise AssertionError(f"no worker heartbeat within {STARTUP_SECONDS} s:\n{log.read_text()}")


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.fixture
def database_url(tmp_path):
    """A database of the suite's kind that no other test uses; PostgreSQL's is dropped afterwards."""
    suite_url = os.environ.get("DATABASE_URL", "")
    if not suite_url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'portal.sqlite3'}"
        return
    import psycopg

    name = f"test_deploy_{uuid.uuid4().hex[:12]}"
    admin_url = suite_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield suite_url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_the_installed_wheel_serves_every_page_through_the_deploy_scripts(tmp_path, database_url):
    # The wheel, from a copy of the source (so the build writes nothing into the checkout).
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = tmp_path / "dist"
    build_env = {**{k: v for k, v in os.environ.items() if k.startswith(("PIP_", "HOME", "LANG"))}}
    build_env.update(PATH=os.environ["PATH"], PYTHON=sys.executable)
    run([DEPLOY / "bin" / "portal-build-wheel", source, dist], build_env, tmp_path)
    (wheel,) = dist.glob("customer_portal-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for packaged in (
        "portal/templates/base.html",
        "portal/templates/allauth/layouts/entrance.html",
        "portal/templates/emails/base.html",
        "portal/static/css/portal.css",
        "portal/static/js/htmx.min.js",
        "portal/locale/de/LC_MESSAGES/django.mo",
        "accounts/migrations/0001_initial.py",
    ):
        assert packaged in names, f"{packaged} is not in {wheel.name}"
    assert not any(name.startswith("tests/") for name in names)

    # A fresh virtual environment outside the checkout, with the locked runtime packages only.
    venv = tmp_path / "venv"
    run([DEPLOY / "bin" / "portal-install", venv, wheel], build_env, tmp_path, timeout=900)

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    node = tmp_path / "node"
    node.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(node),
        "LANG": "C.UTF-8",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_HTTPS": "0",  # plain HTTP on loopback; TLS is the load balancer's
        "DATABASE_URL": database_url,
        "PORTAL_VAR_DIR": str(node / "var"),
        "STATIC_ROOT": str(node / "static"),
        "EMAIL_URL": f"file://{node / 'mail'}",
        "PORTAL_SITE_URL": base,
        "STRIPE_API_BASE": "http://127.0.0.1:9",  # never the real Stripe
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "PORTAL_HEALTHCHECK_URL": f"{base}/healthz",
    }
    located = run(["python", "-c", "import portal; print(portal.__file__)"], env, node)
    assert located.stdout.startswith(str(venv)), "the portal must be imported from the wheel, not the checkout"

    entrypoint = DEPLOY / "entrypoint.sh"
    # As the image does at build time, with the test's own user in place of the image's.
    run([DEPLOY / "bin" / "portal-image-prepare"], {**env, "PORTAL_UID": str(os.getuid())}, node)
    assert list((node / "static" / "css").glob("portal.*.css")), "collectstatic missed the portal's own CSS"
    run([entrypoint, "release"], env, node)
    run(
        [
            entrypoint,
            "shell",
            "-c",
            "from allauth.account.models import EmailAddress\n"
            "from accounts.models import User\n"
            "from accounts.services import customer_get_or_create\n"
            f"user = User.objects.create_user(email={EMAIL!r}, password={PASSWORD!r})\n"
            f"EmailAddress.objects.create(user=user, email={EMAIL!r}, verified=True, primary=True)\n"
            "customer_get_or_create(user=user)\n",
        ],
        env,
        node,
    )

    web_log, worker_log = node / "web.log", node / "worker.log"
    with web_log.open("w") as web_out, worker_log.open("w") as worker_out:
        web = subprocess.Popen([entrypoint, "web"], env=env, cwd=node, stdout=web_out, stderr=subprocess.STDOUT)
        worker = subprocess.Popen(
            [entrypoint, "worker"], env=env, cwd=node, stdout=worker_out, stderr=subprocess.STDOUT
        )
        try:
            wait_until_healthy(f"{base}/healthz", web, web_log)
            # The first check asks the worker for a heartbeat; once the worker has run it, all is ok.
            wait_until_worker_ok(f"{base}/healthz", worker, worker_log)
            health = requests.get(f"{base}/healthz", timeout=5).json()
            assert {key: health[key] for key in ("status", "database", "templates", "cache", "worker")} == {
                "status": "ok",
                "database": "ok",
                "templates": "ok",
                "cache": "ok",
                "worker": "ok",
            }
            run([entrypoint, "healthcheck"], env, node)
            browser = requests.Session()

            # The sign-in page is the portal's, styled with the portal's own CSS served by the node.
            login = browser.get(f"{base}/accounts/login/", timeout=10)
            assert login.status_code == 200
            stylesheet = re.search(r'<link rel="stylesheet" href="(/static/css/portal\.[0-9a-f]{12}\.css)"', login.text)
            assert stylesheet, "the sign-in page does not link the portal's collected CSS"
            css = browser.get(base + stylesheet.group(1), timeout=10)
            assert css.status_code == 200
            assert css.headers["Content-Type"].startswith("text/css")
            assert css.content == next((node / "static" / "css").glob("portal.*.css")).read_bytes()

            # In German too: the portal's translations came with the wheel.
            german = browser.get(f"{base}/accounts/login/", headers={"Accept-Language": "de"}, timeout=10)
            assert german.status_code == 200
            assert "Zum Inhalt springen" in german.text  # the skip link, in the portal's own catalogue

            signed_in = browser.post(
                f"{base}/accounts/login/",
                data={"login": EMAIL, "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
                headers={"Referer": f"{base}/accounts/login/"},
                timeout=10,
            )
            assert signed_in.status_code == 200 and signed_in.url == f"{base}/", signed_in.text[:2000]
            for path, heading in [
                ("/", EMAIL),
                ("/billing/", "Billing"),
                ("/purchases/", "Purchases"),
                ("/settings/contact/", "Contact"),
            ]:
                page = browser.get(base + path, timeout=10)
                assert page.status_code == 200, f"{path}: {page.status_code}\n{web_log.read_text()[-3000:]}"
                assert heading in page.text, f"{path} does not show {heading!r}"

            # The worker sends a fresh sign-in link by email, rendered from the wheel's email templates.
            anonymous = requests.Session()
            anonymous.get(f"{base}/hub/new-link/", timeout=10)
            sent = anonymous.post(
                f"{base}/hub/new-link/",
                data={"email": EMAIL, "csrfmiddlewaretoken": anonymous.cookies["csrftoken"]},
                timeout=10,
            )
            assert sent.status_code == 200
            deadline = time.monotonic() + 30
            while not list((node / "mail").glob("*.eml")) and time.monotonic() < deadline:
                assert worker.poll() is None, worker_log.read_text()
                time.sleep(0.2)
            (sent_mail,) = (node / "mail").glob("*.eml")
            message = message_from_bytes(sent_mail.read_bytes(), policy=policy.default)
            assert message["To"] == EMAIL
            assert f"{base}/hub/" in message.get_body(("plain",)).get_content()
        finally:
            web_status = stop(web)
            worker_status = stop(worker)
    assert web_status == 0, web_log.read_text()
    assert worker_status in (0, -signal.SIGTERM), worker_log.read_text()
