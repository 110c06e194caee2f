"""What lets an operator follow one request: its request id on every log line, and error reports.

The request id comes from the load balancer's `X-Request-ID` when it sends a sane one, or is made
here (`portal.middleware.RequestIdMiddleware`); it is held in a context variable for the length of
the request, stamped on every log record by `RequestIdFilter`, sent back as `X-Request-ID`, set as
the `request_id` tag of Sentry events, and carried into the logs of the background tasks the request
enqueued (the shared cache remembers it by task id for a day, which every task backend can use).

Sentry (sentry-sdk's Django integration) is on only when `SENTRY_DSN` is set.
"""

import logging
import re
import uuid
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.cache import cache

from .logfilters import REDACTED, TOKEN_PATH

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# What a load balancer or proxy sends (a UUID, AWS' "Root=1-…", a hex trace id): short and plain,
# so it cannot forge a log line or fill the logs.
REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:=-]{8,64}")
NO_REQUEST = "-"

request_id_var: ContextVar[str | None] = ContextVar("portal_request_id", default=None)


def request_id_from_header(value: str | None) -> str:
    """The incoming request id if it is one we can log as it is, else a new one."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return uuid.uuid4().hex


def request_id_get() -> str | None:
    return request_id_var.get()


def request_id_set(value: str | None) -> None:
    request_id_var.set(value)


class RequestIdFilter(logging.Filter):
    """Give every record a `request_id` attribute: the current request's or task's, else "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get() or NO_REQUEST
        return True


# --- Request ids in task logs -------------------------------------------------------------------

TASK_REQUEST_ID_TIMEOUT = 24 * 3600  # a task not run within a day has worse problems than its log line


def task_request_id_key(task_id: str) -> str:
    return f"portal:task-request-id:{task_id}"


def task_request_id_remember(*, sender: Any, task_result: Any, **kwargs: Any) -> None:
    """On task_enqueued inside a request: remember which request enqueued the task."""
    request_id = request_id_var.get()
    if request_id is None:
        return
    try:
        cache.set(task_request_id_key(str(task_result.id)), request_id, TASK_REQUEST_ID_TIMEOUT)
    except Exception:  # noqa: BLE001 - the id is for the logs; a failing cache must not fail the enqueue
        logger.warning("tasks: the request id of task %s could not be remembered", task_result.id, exc_info=True)


def task_request_id_adopt(*, sender: Any, task_result: Any, **kwargs: Any) -> None:
    """On task_started in a worker: log the task's lines under the id of the request that enqueued it."""
    try:
        request_id = cache.get(task_request_id_key(str(task_result.id)))
    except Exception:  # noqa: BLE001 - the id is for the logs; a failing cache must not fail the task
        logger.warning("tasks: the request id of task %s could not be read", task_result.id, exc_info=True)
        request_id = None
    request_id_var.set(request_id)
    if settings.SENTRY_DSN:
        import sentry_sdk

        sentry_sdk.set_tag("request_id", request_id or NO_REQUEST)


def task_request_id_forget(*, sender: Any, task_result: Any, **kwargs: Any) -> None:
    """On task_finished: the worker's next lines belong to no request."""
    request_id_var.set(None)


# --- Sentry -------------------------------------------------------------------------------------

# Keys whose values never leave the portal in an error report, on top of sentry-sdk's own list
# (password, secret, token, session, cookie, authorization …): card details, Stripe's secrets and
# signatures, and the signed link tokens of our URLs.
SENTRY_DENYLIST_EXTRA = [
    "card",
    "number",
    "cvc",
    "cvv",
    "exp_month",
    "exp_year",
    "iban",
    "client_secret",
    "stripe_signature",
    "http_stripe_signature",
    "stripe-signature",
    "webhook_secret",
    "stripe_secret_key",
    "secret_key",
    "email_url",
    "database_url",
    "redis_url",
    "otp",
    "code",
    "recovery_codes",
]
# Values that are secrets or card numbers wherever they appear in a message or exception text.
SECRET_VALUES = re.compile(
    r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+"  # Stripe secret and restricted keys
    r"|\bwhsec_[A-Za-z0-9]+"  # webhook signing secrets
    r"|\b(?:seti|pi)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+"  # SetupIntent / PaymentIntent client secrets
    r"|\b\d(?:[ -]?\d){12,18}\b"  # card numbers (13 to 19 digits)
)
FILTERED = "[Filtered]"


def _scrub_text(text: str) -> str:
    return TOKEN_PATH.sub(REDACTED, SECRET_VALUES.sub(FILTERED, text))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, dict):
        return {key: _scrub(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def sentry_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    """Remove secrets, card numbers and link tokens from every text of an event (messages, exception
    values, URLs, and the printed form of local variables such as a request or an exception), and
    drop request bodies: forms carry addresses, tax ids and the like."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
    return _scrub(event)


def sentry_init(*, dsn: str, release: str, environment: str, traces_sample_rate: float) -> None:
    """Turn error reporting on (sentry-sdk with its Django integration)."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.scrubber import DEFAULT_DENYLIST, EventScrubber

    sentry_sdk.init(
        dsn=dsn,
        release=release or None,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        # send_default_pii stays at its default, off (sentry-sdk deprecates passing it): no user, IP,
        # cookies or request bodies are collected.
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, *SENTRY_DENYLIST_EXTRA], recursive=True),
        before_send=sentry_before_send,  # type: ignore[arg-type]
        integrations=[DjangoIntegration()],
    )


def sentry_init_from_settings() -> bool:
    """Start Sentry when SENTRY_DSN is set; say whether it was."""
    if not settings.SENTRY_DSN:
        return False
    sentry_init(
        dsn=settings.SENTRY_DSN,
        release=settings.SENTRY_RELEASE,
        environment=settings.SENTRY_ENVIRONMENT,
        traces_sample_rate=settings.SENTRY_TRACES_SAMPLE_RATE,
    )
    return True
