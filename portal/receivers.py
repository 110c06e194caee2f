import logging
import time

from django.core.cache import cache
from django.core.signals import request_finished
from django.db import transaction
from django.db.backends.signals import connection_created
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver
from django.tasks.signals import task_enqueued, task_finished, task_started

from . import observability
from .models import SiteSettings
from .queues import worker_heartbeat_record
from .selectors import site_settings_cache_key

logger = logging.getLogger(__name__)


def site_settings_forget(created: bool = False, **kwargs) -> None:
    """Drop the cached settings row, now and again once the change commits (a page reading the row
    before the commit may have cached the old one in between). A row just created has no copy yet."""
    if created:
        return
    key = site_settings_cache_key()
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))


post_save.connect(site_settings_forget, sender=SiteSettings, dispatch_uid="portal_site_settings_saved")
post_delete.connect(site_settings_forget, sender=SiteSettings, dispatch_uid="portal_site_settings_deleted")


@receiver(post_migrate, dispatch_uid="portal_site_settings_migrated")
def site_settings_forget_after_migrate(sender, using, **kwargs):
    """A migration (or a flush, which ends with this signal) may change or remove the row."""
    if sender.name == "portal":
        cache.delete(site_settings_cache_key())


@receiver(connection_created, dispatch_uid="portal_plan_each_prepared_statement")
def plan_each_prepared_statement(sender, connection, **kwargs):
    """With prepared statements (settings: `prepare_threshold`), PostgreSQL switches a statement to one
    generic plan after five runs when that plan looks no dearer than the plans made for the actual values.
    For the purchases search it did not hold: the generic plan nested a scan of the receipts inside each
    purchase, 22 ms against 0.4 ms (docs/benchmarks.md). Planning each run with its values keeps what the
    prepared statement saves (parsing) and never takes such a plan; a SET on each new connection, not a
    startup option, so a pooler in session mode passes it."""
    if connection.vendor == "postgresql" and connection.settings_dict.get("OPTIONS", {}).get("prepare_threshold"):
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_custom_plan")


# --- Request ids and worker heartbeats (portal.observability, portal.queues) ---------------------


@receiver(request_finished, dispatch_uid="portal_request_id_clear")
def request_id_clear(**kwargs) -> None:
    """The request is over (Django has written its own log line for it): later lines are no request's."""
    observability.request_id_set(None)


task_enqueued.connect(observability.task_request_id_remember, dispatch_uid="portal_task_request_id_remember")
task_started.connect(observability.task_request_id_adopt, dispatch_uid="portal_task_request_id_adopt")
task_finished.connect(observability.task_request_id_forget, dispatch_uid="portal_task_request_id_forget")

_last_heartbeat = 0.0
HEARTBEAT_EVERY_SECONDS = 10.0  # a busy worker writes its heartbeat this often at most


@receiver(task_started, dispatch_uid="portal_worker_heartbeat_started")
@receiver(task_finished, dispatch_uid="portal_worker_heartbeat_finished")
def worker_heartbeat_on_task(**kwargs) -> None:
    """Any task a worker starts or finishes shows it is alive."""
    global _last_heartbeat
    now = time.monotonic()
    if now - _last_heartbeat >= HEARTBEAT_EVERY_SECONDS:
        _last_heartbeat = now
        try:
            worker_heartbeat_record()
        except Exception:  # noqa: BLE001 - a cache that fails must not fail the task; /healthz says stale
            logger.warning("tasks: the worker heartbeat could not be written to the cache", exc_info=True)
