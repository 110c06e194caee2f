"""What a node needs to serve pages, for the system checks and /healthz."""

import logging
import uuid

from django.contrib.staticfiles import finders
from django.core.cache import cache
from django.db import connection
from django.template import TemplateDoesNotExist, TemplateSyntaxError
from django.template.loader import get_template

from . import queues

logger = logging.getLogger(__name__)

# Page templates only the portal ships (allauth's own pages extend base.html through the portal's
# allauth/layouts/): when these are not found, the portal package was installed without its data.
PAGE_TEMPLATES = (
    "base.html",
    "portal/home.html",
    "accounts/contact.html",
    "billing/index.html",
    "purchases/index.html",
)
# The portal's own static files, which collectstatic must find beside Django's and allauth's.
STATIC_FILES = ("css/portal.css", "js/portal.js")


def templates_unloadable() -> list[str]:
    """Name the page templates that cannot be loaded (missing, or failing to compile)."""
    unloadable = []
    for name in PAGE_TEMPLATES:
        try:
            # Cheap after the first call: the template loader keeps compiled templates.
            get_template(name)
        except (TemplateDoesNotExist, TemplateSyntaxError):
            unloadable.append(name)
    return unloadable


def static_files_missing() -> list[str]:
    """Name the portal's static files that the staticfiles finders do not find."""
    return [path for path in STATIC_FILES if not finders.find(path)]


def database_answers() -> bool:
    """Say whether the default database answers a trivial query."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return False
    return True


CACHE_PROBE_KEY = "portal:healthz:probe"


def cache_answers() -> bool:
    """Say whether the default cache keeps what it is given (a write read back).

    The Redis cache answers as an empty cache while Redis is down or frozen (portal.cache), so a
    value that does not come back is the sign; its socket timeout bounds the first wait, and for
    REDIS_RETRY_SECONDS afterwards no call waits on Redis at all.
    """
    probe = uuid.uuid4().hex
    try:
        cache.set(CACHE_PROBE_KEY, probe, 60)
        return cache.get(CACHE_PROBE_KEY) == probe
    except Exception:  # noqa: BLE001 - any cache failure means "not healthy"
        return False


def health_report() -> tuple[dict[str, object], int]:
    """The /healthz body and status.

    503 only for what makes this node unable to serve pages, so a load balancer takes just that node
    out: the database does not answer, or the page templates are missing. A cache that fails (pages
    still answer, rate limits are off: portal.cache) or a stale worker (tasks wait; every web node
    would see the same) is reported as "degraded" with 200: taking every node out would turn a
    background problem into a full outage.
    """
    database_ok = database_answers()
    templates_ok = not templates_unloadable()
    cache_ok = cache_answers()
    body: dict[str, object] = {
        "status": "ok",
        "database": "ok" if database_ok else "unavailable",
        "templates": "ok" if templates_ok else "missing",
        "cache": "ok" if cache_ok else "unavailable",
    }
    heartbeat_age = queues.worker_heartbeat_age() if cache_ok else None
    body["worker"] = "stale" if queues.worker_is_stale(heartbeat_age) else "ok"
    body["worker_heartbeat_age_seconds"] = round(heartbeat_age, 1) if heartbeat_age is not None else None
    stats = None
    if database_ok:
        try:
            stats = queues.queue_stats()
            if cache_ok:  # a failing cache would let every check enqueue another heartbeat
                queues.worker_heartbeat_request(age=heartbeat_age)
        except Exception as error:  # noqa: BLE001 - the queue's figures are a report, not a reason to fail
            # One line, not a traceback: a load balancer asks every few seconds.
            logger.warning("healthz: the task queue could not be read (%s: %s)", type(error).__name__, error)
    body["queue_depth"] = stats.depth if stats else None
    body["queue_oldest_age_seconds"] = (
        round(stats.oldest_age_seconds, 1) if stats and stats.oldest_age_seconds is not None else None
    )
    if not (database_ok and templates_ok):
        body["status"] = "error"
        return body, 503
    if not cache_ok or body["worker"] != "ok":
        body["status"] = "degraded"
    return body, 200
