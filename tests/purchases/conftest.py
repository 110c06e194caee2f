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
