import pytest

from tests.factories import DEFAULT_PASSWORD, CustomerFactory


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Uploaded files go to a per-test folder, never into the project's var/."""
    settings.MEDIA_ROOT = tmp_path / "media"


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
