import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from billing.gateways.fake import FakeGateway
from billing.gateways.stripe import StripeGateway

STRIPE_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "stripe" / "fixtures3.json"


@pytest.fixture(scope="session")
def stripe_resources() -> dict:
    """Stripe's own example objects (current API shape), from shared/stripe/."""
    return json.loads(STRIPE_FIXTURES.read_text())["resources"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory):
    """A real localstripe server on a free port, its state file in a temporary folder."""
    port = _free_port()
    state = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.localstripe", "--port", str(port), "--state", str(state), "--from-scratch"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("localstripe did not start") from None
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def stripe_gateway(localstripe_url) -> StripeGateway:
    return StripeGateway(api_key="sk_test_localstripe", api_base=localstripe_url)


@pytest.fixture
def gateway():
    """The in-memory fake gateway, empty for each test."""
    FakeGateway.reset()
    yield FakeGateway()
    FakeGateway.reset()
