from django import template
from django.core.exceptions import FieldDoesNotExist

from accounts import social
from accounts.models import Customer

register = template.Library()


@register.filter
def social_links(customer):
    """The customer's social profiles as (label, https URL) pairs."""
    return social.social_links(customer)


@register.filter
def audit_changes(entry) -> list[tuple[str, object, object]]:
    """An audit entry's changes as (label, old, new) rows; old is None where the entry records a value, not a change."""
    rows = []
    for key, value in (entry.changes or {}).items():
        try:
            field = Customer._meta.get_field(key)
        except FieldDoesNotExist:
            field = None
        # Keys such as "cards" or "subscriptions" name reverse relations, which have no verbose name.
        label = str(getattr(field, "verbose_name", "") or key.replace("_", " "))
        if isinstance(value, list) and len(value) == 2:
            rows.append((label, value[0], value[1]))
        else:
            rows.append((label, None, value))
    return rows
