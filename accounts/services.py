"""Writes to accounts. Views and admin call these; nothing else saves a Customer."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from portal.services import audit_record

from .avatars import avatar_reencode
from .models import Customer, TaxIdStatus, User
from .signals import CONTACT_FIELDS, contact_changed
from .social import SOCIAL_FIELDS

logger = logging.getLogger(__name__)

PROFILE_FIELDS = ("time_zone", "notify_product_updates", "notify_marketing", "notify_community_digest")


def customer_get_or_create(*, user: User) -> Customer:
    """Return the user's contact record, creating it from the user's email when missing."""
    try:
        return user.customer
    except Customer.DoesNotExist:
        customer, _ = Customer.objects.get_or_create(user=user, defaults={"email": user.email})
        user.customer = customer
        return customer


def _same(old, new) -> bool:
    if type(old) is not type(new):
        return str(old or "") == str(new or "")
    return old == new


def _apply(customer: Customer, data: dict, allowed: tuple[str, ...]) -> dict[str, list]:
    """Set the allowed fields on the customer; return {field: [old, new]} for each that differs from the
    stored row. The stored row is the reference because a bound ModelForm has already copied the submitted
    values onto the instance it was given."""
    fields = [field for field in allowed if field in data]
    if not fields:
        return {}
    stored = Customer.objects.filter(pk=customer.pk).values(*fields).first() or {}
    changed = {}
    for field in fields:
        old, new = stored.get(field), data[field]
        if not _same(old, new):
            changed[field] = [str(old or ""), str(new or "")]
        setattr(customer, field, new)
    return changed


@transaction.atomic
def customer_update_contact(*, customer: Customer, data: dict, by: User | None) -> frozenset[str]:
    """Save contact fields; send `contact_changed` with exactly the fields that changed."""
    changed = _apply(customer, data, CONTACT_FIELDS)
    if not changed:
        return frozenset()
    update_fields = [*changed, "updated_at"]
    if {"tax_id_type", "tax_id_value"} & changed.keys():
        customer.tax_id_status = TaxIdStatus.FORMAT_VALID if customer.tax_id_value else TaxIdStatus.NONE
        update_fields.append("tax_id_status")
    customer.save(update_fields=update_fields)
    changed_fields = frozenset(changed)
    logger.info("customer %s contact changed: %s", customer.pk, ",".join(sorted(changed_fields)))
    audit_record(action="contact.updated", customer=customer, actor=by, changes=changed)
    contact_changed.send(sender=Customer, customer=customer, changed_fields=changed_fields, by=by)
    return changed_fields


def customer_update_profile(*, customer: Customer, data: dict) -> dict[str, list]:
    changed = _apply(customer, data, PROFILE_FIELDS)
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return changed


def customer_update_social(*, customer: Customer, data: dict) -> dict[str, list]:
    changed = _apply(customer, data, SOCIAL_FIELDS)
    if changed:
        customer.save(update_fields=[*changed, "updated_at"])
    return changed


def customer_set_avatar(*, customer: Customer, upload) -> Customer:
    """Re-encode the upload and make it the avatar; raises AvatarError for a bad image."""
    content = avatar_reencode(upload)
    old = customer.avatar.name
    customer.avatar.save(content.name, content, save=False)
    customer.save(update_fields=["avatar", "updated_at"])
    if old:
        transaction.on_commit(lambda: customer.avatar.storage.delete(old))
    return customer


def customer_remove_avatar(*, customer: Customer) -> Customer:
    old = customer.avatar.name
    if old:
        customer.avatar = ""
        customer.save(update_fields=["avatar", "updated_at"])
        transaction.on_commit(lambda: customer.avatar.storage.delete(old))
    return customer


def customer_sync_email(*, user: User) -> frozenset[str]:
    """Mirror the user's verified primary address onto the contact record."""
    customer = customer_get_or_create(user=user)
    return customer_update_contact(customer=customer, data={"email": user.email}, by=user)


def customer_record_activity(*, user_id: int, at: datetime | None = None) -> None:
    Customer.objects.filter(user_id=user_id).update(last_activity_at=at or timezone.now())
