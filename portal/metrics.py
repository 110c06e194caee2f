"""Prometheus metrics at /metrics, when PROMETHEUS_METRICS is on (prometheus_client).

Requests are counted and timed by view (the URL pattern's name, so the number of series stays
bounded) and status; the task queue's depth and oldest wait and the worker's heartbeat age are read
when Prometheus scrapes. Under gunicorn every worker process counts its own requests: set
PROMETHEUS_MULTIPROC_DIR to an empty folder (cleared at each start) and the scrape sums them
(prometheus_client's multiprocess mode; deploy/gunicorn.conf.py marks dead workers).
"""

import hmac
import logging
import os
import time
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpResponse, HttpResponseForbidden
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import queues

logger = logging.getLogger(__name__)

UNRESOLVED = "<unresolved>"  # a 404 for a path no pattern matches, or a response from a middleware

REQUESTS = Counter(
    "portal_http_requests_total", "HTTP requests answered, by view, method and status.", ["view", "method", "status"]
)
LATENCY = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer an HTTP request, by view and status.",
    ["view", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def view_label(request) -> str:
    match = getattr(request, "resolver_match", None)
    return match.view_name if match is not None and match.view_name else UNRESOLVED


class MetricsMiddleware:
    """Count and time every request (settings add it only when PROMETHEUS_METRICS is on)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        view, status = view_label(request), str(response.status_code)
        REQUESTS.labels(view=view, method=request.method, status=status).inc()
        LATENCY.labels(view=view, status=status).observe(time.perf_counter() - started)
        return response


class QueueCollector(Collector):
    """The task queue and worker, read at scrape time (one process answers: no multiprocess merging)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            stats = queues.queue_stats()
        except Exception:  # noqa: BLE001 - the request figures are still worth a scrape; /healthz says why
            logger.warning("metrics: the task queue could not be read")
            stats = None
        if stats is not None:
            yield GaugeMetricFamily("portal_task_queue_depth", "Tasks due and waiting for a worker.", value=stats.depth)
            yield GaugeMetricFamily(
                "portal_task_queue_oldest_age_seconds",
                "How long the longest-waiting due task has waited (0 when none waits).",
                value=stats.oldest_age_seconds or 0.0,
            )
        try:
            age = queues.worker_heartbeat_age()
        except Exception:  # noqa: BLE001 - as above
            logger.warning("metrics: the worker heartbeat could not be read")
            age = None
        if age is not None:
            yield GaugeMetricFamily(
                "portal_worker_heartbeat_age_seconds",
                "Seconds since a task worker last showed it was alive.",
                value=age,
            )


def registry_for_scrape() -> CollectorRegistry:
    """This process's metrics, or every gunicorn worker's in multiprocess mode, plus the queue's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(REQUESTS)
        registry.register(LATENCY)
    registry.register(QueueCollector())
    return registry


def token_accepted(request) -> bool:
    """Without PROMETHEUS_METRICS_TOKEN anyone who reaches /metrics may read it; with one, only
    `Authorization: Bearer <token>`."""
    expected = settings.PROMETHEUS_METRICS_TOKEN
    if not expected:
        return True
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {expected}".encode())


@require_GET
@never_cache
def metrics(request):
    if not token_accepted(request):
        return HttpResponseForbidden("forbidden\n", content_type="text/plain")
    return HttpResponse(generate_latest(registry_for_scrape()), content_type=CONTENT_TYPE_LATEST)
