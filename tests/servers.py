"""Real servers the tests start on loopback (localstripe, moto's S3, gunicorn nodes): a free port,
and a process that is waited for until it listens and stopped afterwards."""

import contextlib
import socket
import subprocess
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def loopback_server(command: list[str], *, port: int, name: str, timeout: float = 20, output=subprocess.DEVNULL):
    """Run command (which must listen on 127.0.0.1:port); yield its base URL once it accepts connections."""
    process = subprocess.Popen(command, stdout=output, stderr=output)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
