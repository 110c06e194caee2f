from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from .models import SiteSettings
from .selectors import site_settings_cache_key


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
