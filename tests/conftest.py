import os
import shutil
import subprocess

import pytest

from tests.factories import DEFAULT_PASSWORD, CustomerFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Customers made by the factories get a hashed password; a fast hasher keeps setup cheap."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded files go to a per-test folder, never into the project's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _english_after_each_test():
    """A request in German leaves German active in the thread (LocaleMiddleware activates, nothing
    deactivates): put the default back, so that a test does not depend on which ran before it."""
    yield
    from django.conf import settings
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _no_data_fragments_from_another_test():
    """Fragments keyed on data (CACHES["data_fragments"]) live in the process: a test that changes templates or
    settings must not meet another test's."""
    from django.core.cache import caches

    caches["data_fragments"].clear()


@pytest.fixture
def password():
    return DEFAULT_PASSWORD


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def other_customer(db):
    return CustomerFactory()


@pytest.fixture
def client_logged_in(client, customer):
    client.force_login(customer.user, backend="accounts.backends.PortalAuthenticationBackend")
    return client


@pytest.fixture
def stored_row(db):
    """Return a function that reads a customer's row from the database, to compare before and after."""
    from accounts.models import Customer

    def read(customer):
        return Customer.objects.filter(pk=customer.pk).values().get()

    return read


@pytest.fixture
def run_tasks(db):
    """Run the queued background tasks with django-tasks-db's own worker code; return how many ran.
    A task that raises fails the test.

    A task queued on commit exists only once the test's transaction commits: wrap the code under
    test in django_capture_on_commit_callbacks(execute=True), or use transactional_db.
    """
    from django.db import transaction
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id="pytest",
        excluded_queue_names=[],
    )

    def run() -> int:
        # The claim loop of Worker.run(), without its close_old_connections(), which would close the
        # connection that holds the test's transaction.
        ran = 0
        while True:
            with transaction.atomic():
                result = DBTaskResult.objects.ready().get_locked()
                if result is None:
                    return ran
                result.claim(worker.worker_id)
            worker.run_task(result)
            ran += 1
            result.refresh_from_db()
            assert result.status != "FAILED", f"task {result.task_path} failed:\n{result.traceback}"

    return run


@pytest.fixture
def sign_in(db):
    """Sign in through allauth's own login form (as a browser would), not with force_login."""

    def post_login(client, email, password):
        response = client.post("/accounts/login/", {"login": email, "password": password})
        assert response.status_code == 302, response.content.decode()[:2000]
        return response

    return post_login


# --- Staff: the creator (a superuser) and support (the Support group) ---------------------------------
# Staff made by the factories have two-factor on (tests.factories.STAFF_TOTP_SECRET), as the admin requires.


@pytest.fixture
def admin_user(db, django_user_model):
    """pytest-django's superuser (behind its admin_client), with two-factor on as the admin requires."""
    from allauth.mfa.totp.internal.auth import TOTP

    from tests.factories import STAFF_TOTP_SECRET

    user = django_user_model.objects.create_superuser(email="admin@example.com", password="password")
    TOTP.activate(user, STAFF_TOTP_SECRET)
    return user


@pytest.fixture
def creator(db):
    from tests.factories import CustomerFactory, UserFactory

    user = UserFactory(email="creator@example.com", is_staff=True, is_superuser=True, password=None)
    CustomerFactory(user=user)
    return user


@pytest.fixture
def support_user(db):
    from django.contrib.auth.models import Group

    from accounts.models import SUPPORT_GROUP
    from tests.factories import CustomerFactory, UserFactory

    user = UserFactory(email="support@example.com", is_staff=True, password=None)
    user.groups.add(Group.objects.get(name=SUPPORT_GROUP))
    CustomerFactory(user=user)
    return user


@pytest.fixture
def creator_client(client, creator):
    client.force_login(creator, backend="accounts.backends.PortalAuthenticationBackend")
    return client


@pytest.fixture
def support_client(client, support_user):
    client.force_login(support_user, backend="accounts.backends.PortalAuthenticationBackend")
    return client


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
