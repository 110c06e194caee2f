"""gunicorn's settings for a portal node (deploy/bin/portal-web passes this file with --config).

Each value can be changed by the environment variable named beside it; the defaults suit one node with
a TLS-terminating load balancer in front (docs/operations.md).
"""

import multiprocessing
import os

wsgi_app = "portal.wsgi:application"
bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Sync workers, about two per core: a page is a few milliseconds of CPU and a few queries.
workers = int(os.environ.get("GUNICORN_WORKERS", str(2 * multiprocessing.cpu_count())))

# A request that talks to Stripe waits at most STRIPE_REQUEST_DEADLINE_SECONDS (20 s) for all its Stripe
# calls together, then answers with an error of its own. The worker timeout sits well above that deadline
# (35 s by default, deadline + 15 s when the deadline is raised) so gunicorn never kills a worker that is
# still within it, and the customer sees the portal's message instead of a dropped connection.
_stripe_deadline = float(os.environ.get("STRIPE_REQUEST_DEADLINE_SECONDS", "20"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", str(max(35, int(_stripe_deadline) + 15))))
# On SIGTERM (a restart, a deploy) requests in flight may finish, within the same bound.
graceful_timeout = timeout
# The load balancer keeps connections open to the node; a little longer than none saves handshakes.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then, at different moments, so slow growth in memory never adds up.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = max_requests // 10

# Logs go to standard output and error, for journald or the container runtime.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
# gunicorn's default line plus the request id the portal answered with (portal.observability), so an
# access line leads to the application's lines for the same request.
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %({x-request-id}o)s'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
# Request bodies are already capped by Django (DATA_UPLOAD_MAX_MEMORY_SIZE); cap header sizes here too.
limit_request_line = 8190
limit_request_fields = 100


def child_exit(server, worker):
    """Prometheus multiprocess mode (PROMETHEUS_MULTIPROC_DIR, docs/operations.md): a worker that exits
    leaves its counters to be summed, but its live gauges must go."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
