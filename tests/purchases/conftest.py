import os
import shutil
import subprocess

import pytest

from tests.factories import UserFactory


@pytest.fixture
def staff_user(db):
    return UserFactory(is_staff=True, password=None)


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, password=None)


@pytest.fixture
def superuser_client(client, superuser):
    client.force_login(superuser, backend="accounts.backends.PortalAuthenticationBackend")
    return client


@pytest.fixture
def frozen_mode(db):
    from portal.services import site_settings_update

    return site_settings_update(data={"receipt_mode": "frozen"})


@pytest.fixture
def pdf_text():
    """Return a function giving the text of a PDF, read with poppler's pdftotext (skip when missing)."""
    executable = shutil.which("pdftotext")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext is required in CI: apt-get install poppler-utils")
        pytest.skip("pdftotext (poppler-utils) is not installed")

    def extract(data: bytes) -> str:
        result = subprocess.run(
            [executable, "-layout", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True, check=True, timeout=30
        )
        return result.stdout.decode()

    return extract
