"""The deploy files hold together: every command the image, compose and systemd run is a script in
deploy/ (tests/deploy/test_wheel.py runs those scripts against an installed wheel), the units pass
systemd's own verifier, and gunicorn's worker timeout stays above the Stripe deadline.

No container engine runs here: the image and compose file are checked as text, not built or started
(docs/operations.md says what was verified and what was not)."""

import os
import re
import shlex
import shutil
import subprocess
import sys
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# The test run's own environment, where `portal` and `gunicorn` are installed.
VENV_BIN = Path(sys.executable).parent
UNITS = sorted((DEPLOY / "systemd").iterdir())
LONG_RUNNING = ["portal-web.service", "portal-worker.service"]
# What deploy/entrypoint.sh runs for each of its own commands.
ENTRYPOINT_COMMANDS = {
    "web": "portal-web",
    "worker": "portal-worker",
    "sweep": "portal-sweep",
    "housekeeping": "portal-housekeeping",
    "release": "portal-release",
    "collectstatic": "portal-collectstatic",
    "healthcheck": "portal-healthcheck",
}


def unit(name: str) -> ConfigParser:
    parser = ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read(DEPLOY / "systemd" / name)
    return parser


def gunicorn_setting(name: str, **environ) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "STRIPE_REQUEST_DEADLINE"))}
    result = subprocess.run(
        [VENV_BIN / "gunicorn", "--config", DEPLOY / "gunicorn.conf.py", "--print-config"],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return re.search(rf"^{name}\s+= (.*)$", result.stdout, re.MULTILINE).group(1)


def test_every_entrypoint_command_is_an_executable_script_in_deploy():
    script = (DEPLOY / "entrypoint.sh").read_text()
    for command, target in ENTRYPOINT_COMMANDS.items():
        assert f'{command}) exec "$bin/{target}"' in script
        assert os.access(DEPLOY / "bin" / target, os.X_OK), f"deploy/bin/{target} is not executable"


def test_the_entrypoint_hands_other_commands_to_the_portal_command():
    result = subprocess.run(
        [DEPLOY / "entrypoint.sh", "check", "--fail-level", "ERROR"],
        env={**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_the_worker_timeout_sits_above_the_stripe_deadline():
    assert gunicorn_setting("timeout") == "35"
    assert gunicorn_setting("timeout", STRIPE_REQUEST_DEADLINE_SECONDS="30") == "45"
    assert gunicorn_setting("wsgi_app") == "portal.wsgi:application"


def test_the_image_runs_only_deploy_scripts_as_an_unprivileged_user():
    lines = (DEPLOY / "Containerfile").read_text().replace("\\\n", " ").splitlines()
    instructions = [line.split(None, 1) for line in lines if line.strip() and not line.startswith("#")]
    runs = [argument for keyword, argument in instructions if keyword == "RUN"]
    assert runs, "the image runs nothing at build time"
    for argument in runs:
        for command in re.split(r"&&", argument):
            words = shlex.split(command)
            program = next(word for word in words if "=" not in word)  # skip VAR=value prefixes
            assert program.startswith(("deploy/", "/opt/portal/deploy/")), f"RUN {command.strip()}"
            assert os.access(ROOT / program.removeprefix("/opt/portal/"), os.X_OK), program
    assert runs[-1] == "/opt/portal/deploy/bin/portal-image-prepare", "static files are collected at build"
    keywords = [keyword for keyword, _ in instructions]
    assert keywords.count("USER") == 1 and keywords.index("USER") > len(keywords) - 1 - keywords[::-1].index("RUN")
    user = next(argument for keyword, argument in instructions if keyword == "USER")
    assert user.split(":")[0] not in {"root", "0"}
    assert f"PORTAL_UID={user.split(':')[0]}" in (DEPLOY / "Containerfile").read_text()
    entrypoint = next(argument for keyword, argument in instructions if keyword == "ENTRYPOINT")
    assert entrypoint == '["/opt/portal/deploy/entrypoint.sh"]'
    assert next(argument for keyword, argument in instructions if keyword == "CMD") == '["web"]'
    assert next(argument for keyword, argument in instructions if keyword == "HEALTHCHECK").endswith(
        'CMD ["/opt/portal/deploy/entrypoint.sh", "healthcheck"]'
    )


def test_compose_runs_web_worker_postgresql_and_redis_from_the_image():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"web", "worker", "postgres", "redis"} <= services.keys()
    for name in ("release", "web", "worker"):
        service = services[name]
        assert service["build"]["dockerfile"] == "deploy/Containerfile"
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()
        assert service["command"][0] in ENTRYPOINT_COMMANDS, f"{name} runs {service['command']}"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
        assert service["environment"]["REDIS_URL"].startswith("redis://redis:")
    for name in ("web", "worker"):
        assert services[name]["depends_on"]["release"]["condition"] == "service_completed_successfully"
        assert services[name]["restart"] == "unless-stopped"
    assert (DEPLOY / "portal.env.example").is_file()


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_web_and_worker_units_restart_and_run_a_deploy_script_unprivileged(name):
    service = unit(name)["Service"]
    assert service["Restart"] == "always"
    assert service["User"] == "portal"
    program = service["ExecStart"].split()[0]
    assert program.startswith("/opt/portal/deploy/bin/")
    assert os.access(DEPLOY / "bin" / Path(program).name, os.X_OK)


@pytest.mark.parametrize("path", UNITS, ids=lambda path: path.name)
def test_systemds_verifier_accepts_the_unit(path, tmp_path):
    if not shutil.which("systemd-analyze"):
        if os.environ.get("CI"):
            pytest.fail("systemd-analyze is needed to verify the units (apt-get install systemd)")
        pytest.skip("systemd-analyze is not installed")
    # A root with the units, the deploy scripts where the units expect them, and systemd's own units.
    shutil.copytree("/usr/lib/systemd/system", tmp_path / "usr/lib/systemd/system", symlinks=True)
    (tmp_path / "usr/bin").mkdir()
    shutil.copy2("/usr/bin/kill", tmp_path / "usr/bin/kill")
    (tmp_path / "bin").symlink_to("usr/bin")
    shutil.copytree(DEPLOY, tmp_path / "opt/portal/deploy")
    shutil.copytree(DEPLOY / "systemd", tmp_path / "etc/systemd/system")

    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={tmp_path}", tmp_path / "etc/systemd/system" / path.name],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_compose_queues_tasks_on_rq_in_a_redis_that_keeps_them_and_sweeps_every_five_minutes():
    services = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    for name in ("web", "worker", "sweep"):
        environment = services[name]["environment"]
        assert environment["TASKS_BACKEND"] == "rq"
        assert environment["TASKS_REDIS_URL"].startswith("redis://queue:")
    queue = services["queue"]["command"]
    assert queue[queue.index("--appendonly") + 1] == "yes"
    assert queue[queue.index("--maxmemory-policy") + 1] == "noeviction"
    assert services["sweep"]["command"] == ["sweep", "--every", "300"]
    assert "sweep)" in (DEPLOY / "entrypoint.sh").read_text()
    assert services["housekeeping"]["command"] == ["housekeeping", "--every", "86400"]
    assert services["housekeeping"]["environment"]["TASKS_BACKEND"] == "rq"


@pytest.mark.parametrize("backend", ["db", "rq"])
def test_daily_housekeeping_hands_the_reminder_run_to_the_worker(backend, tmp_path):
    """Each `portal` command the script runs, recorded by a stand-in for the installed command."""
    log = tmp_path / "commands"
    (tmp_path / "portal").write_text(f'#!/bin/sh\necho "$*" >> {shlex.quote(str(log))}\n')
    (tmp_path / "portal").chmod(0o755)

    subprocess.run(
        [DEPLOY / "bin" / "portal-housekeeping"],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}", "TASKS_BACKEND": backend},
        check=True,
        timeout=30,
    )

    commands = log.read_text().splitlines()
    assert commands[0] == "clearsessions" and commands[-1] == "send_reminders"
    assert ("prune_db_task_results --queue-name * --min-age-days 7" in commands) is (backend == "db")
