"""Two views that exist only for the observability tests, in front of the portal's own URLs."""

import logging

from django.http import HttpResponse
from django.tasks import task
from django.urls import path

from console.urls import urlpatterns as portal_urlpatterns

logger = logging.getLogger("tests.observed")


class CardDetailsLeaked(Exception):
    pass


def broken(request):
    card = str(4242424242424242)  # a local variable, which Sentry shows beside the frame
    key = "sk_live_" + "abc123DEF"
    raise CardDetailsLeaked(f"failed while handling card {card} with key {key}")


@task()
def log_a_line() -> None:
    logger.info("inside the task")


def enqueue(request):
    logger.info("enqueuing")
    log_a_line.enqueue()
    return HttpResponse("queued")


urlpatterns = [
    path("observed/broken/", broken),
    path("observed/enqueue/", enqueue),
    *portal_urlpatterns,
]
