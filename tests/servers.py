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


@contextlib.contextmanager
def redis_server(directory, *, port: int | None = None, persistent: bool = True):
    """A private redis-server on loopback (never the shared one); yield (port, process).

    Persistent as the task queue's Redis should be (append-only file in `directory`), so a restart on
    the same port and directory keeps the queue.
    """
    port = port or free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory), "--save", ""]
    command += ["--appendonly", "yes" if persistent else "no"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process, "redis-server")
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def wait_listening(port: int, process: subprocess.Popen, name: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"{name} did not start on port {port}") from None
            time.sleep(0.05)
