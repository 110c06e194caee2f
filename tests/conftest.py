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
def sign_in(db):
    """Sign in through allauth's own login form (as a browser would), not with force_login."""

    def post_login(client, email, password):
        response = client.post("/accounts/login/", {"login": email, "password": password})
        assert response.status_code == 302, response.content.decode()[:2000]
        return response

    return post_login
