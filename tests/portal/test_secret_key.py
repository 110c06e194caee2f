"""Without DJANGO_SECRET_KEY the portal may run management commands, but never serve."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(code_or_args, tmp_path, **env):
    environment = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SECRET_KEY", "DJANGO_DEBUG"}}
    environment.update(PORTAL_VAR_DIR=str(tmp_path), DJANGO_HTTPS="1", DJANGO_ALLOWED_HOSTS="portal.example.com", **env)
    return subprocess.run(
        [sys.executable, *code_or_args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_reports_a_missing_secret_key(tmp_path):
    result = run(["manage.py", "check", "--deploy"], tmp_path)

    assert result.returncode != 0
    assert "portal.E001" in result.stderr + result.stdout


def test_the_wsgi_application_refuses_to_start_without_a_secret_key(tmp_path):
    result = run(["-c", "import portal.wsgi"], tmp_path)

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY before serving" in result.stderr


def test_the_wsgi_application_starts_with_a_secret_key(tmp_path):
    result = run(["-c", "import portal.wsgi"], tmp_path, DJANGO_SECRET_KEY="x" * 60)

    assert result.returncode == 0, result.stderr
