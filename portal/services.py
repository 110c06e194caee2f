"""Writes shared by every app: the audit trail and the site settings row."""

from django.db import transaction

from .models import ActorKind, AuditEntry, SiteSettings


def actor_kind_for(user) -> str:
    if user is None:
        return ActorKind.SYSTEM
    return ActorKind.STAFF if user.is_staff else ActorKind.CUSTOMER


def audit_record(
    *, action: str, customer=None, actor=None, actor_kind: str | None = None, changes: dict | None = None
) -> AuditEntry:
    return AuditEntry.objects.create(
        action=action,
        customer=customer,
        actor=actor,
        actor_kind=actor_kind or actor_kind_for(actor),
        changes=changes or {},
    )


@transaction.atomic
def site_settings_update(*, data: dict, by=None) -> SiteSettings:
    """Change site settings; a change made by someone (in admin) is audited field by field."""
    site = SiteSettings.objects.select_for_update().get_or_create(pk=1)[0]
    changes = {}
    for field, value in data.items():
        old, new = ("" if v is None else str(v) for v in (getattr(site, field), value))
        if old != new:
            changes[field] = [old, new]
        setattr(site, field, value)
    site.save()
    if by is not None and changes:
        audit_record(action="site_settings.updated", actor=by, changes=changes)
    return site
