"""How long /healthz takes while Redis is frozen, against a working Redis.

    .venv/bin/python bench/healthz_redis.py frozen [--pause 5.2] [--retry-seconds 5]
    .venv/bin/python bench/healthz_redis.py redis --url redis://127.0.0.1:6379/4

"Frozen" is a loopback socket that accepts connections and never answers (what a SIGSTOPped Redis does).
Six checks in one process, through Django's test client; the first also pays the process's first request.
`--pause` longer than `--retry-seconds` makes every check try Redis again. docs/operations.md quotes the
results (Watching the portal).
"""

import argparse
import logging
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["frozen", "redis"])
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0", help="the working Redis (mode redis)")
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between checks")
    parser.add_argument("--retry-seconds", default="5", help="REDIS_RETRY_SECONDS")
    args = parser.parse_args()

    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    frozen = f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    os.environ.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DJANGO_HTTPS="0",
        DJANGO_ALLOWED_HOSTS="testserver",
        DATABASE_URL=f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3",
        REDIS_RETRY_SECONDS=args.retry_seconds,
        REDIS_URL=frozen if args.mode == "frozen" else args.url,
    )
    import django

    django.setup()
    logging.disable(logging.CRITICAL)
    from django.core.cache import caches
    from django.test import Client

    caches["default"]._cache  # noqa: B018 - the Redis client made before the first check
    client, times = Client(), []
    for _ in range(6):
        time.sleep(args.pause)
        started = time.monotonic()
        response = client.get("/healthz")
        times.append(time.monotonic() - started)
    print(args.mode, response.status_code, response.json()["cache"], "seconds:", [round(t, 3) for t in times])


if __name__ == "__main__":
    main()
