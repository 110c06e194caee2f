"""The Redis cache fails open: Redis down or frozen never turns sign-in into a 500 or a hang."""

import logging
import socket
import threading
import time

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache

from tests.servers import free_port

pytestmark = pytest.mark.django_db

TIMEOUT = 0.3


def redis_cache(location: str) -> dict:
    """The settings' caches with the default one on Redis at `location`."""
    return {
        **django_settings.CACHES,
        "default": {
            "BACKEND": "portal.cache.FailOpenRedisCache",
            "LOCATION": location,
            "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT, "RETRY_SECONDS": 30},
        },
    }


@pytest.fixture
def frozen_redis():
    """A TCP server on loopback that accepts connections and never answers, like a frozen Redis."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0", held
    stop.set()
    thread.join(timeout=2)
    for conn in held:
        conn.close()
    server.close()


def sign_in(client, customer, password):
    started = time.monotonic()
    response = client.post("/accounts/login/", {"login": customer.email, "password": password})
    return response, time.monotonic() - started


def test_with_redis_down_sign_in_still_works_and_a_warning_is_logged(client, customer, password, settings, caplog):
    settings.CACHES = redis_cache(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there

    with caplog.at_level(logging.WARNING, logger="portal.cache"):
        response, _ = sign_in(client, customer, password)

    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert "Redis unreachable" in caplog.text


def test_with_redis_frozen_sign_in_answers_and_the_next_request_does_not_wait_on_redis(
    client, customer, password, settings, frozen_redis
):
    location, connections = frozen_redis
    settings.CACHES = redis_cache(location)

    first, first_took = sign_in(client, customer, "wrong-password-123")
    tried = len(connections)
    second, _ = sign_in(client, customer, password)

    # Without timeouts a frozen Redis holds the request until the web server kills the worker (30 s);
    # here it answers after one socket timeout, however loaded the machine is.
    assert first.status_code == 200 and first_took < 10
    assert tried >= 1
    assert second.status_code == 302 and len(connections) == tried  # no call waited on Redis again


def test_with_redis_up_the_cache_works_as_djangos(settings):
    settings.CACHES = redis_cache("redis://127.0.0.1:6379/14")
    try:
        cache.set("portal-cache-test", 41)
        assert cache.incr("portal-cache-test") == 42
        assert cache.get_many(["portal-cache-test", "missing"]) == {"portal-cache-test": 42}
    finally:
        cache.delete("portal-cache-test")
