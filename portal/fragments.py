"""Keys for template fragments kept with {% cache %}, built from the rows they show."""

import functools


@functools.cache
def _stored_fields(model) -> tuple[str, ...]:
    return tuple(field.attname for field in model._meta.concrete_fields)


def stored_values(instance) -> tuple | None:
    """Every stored value of a row, for a fragment's key: any change to the row (a save, an update(), a
    column added later) is a new key, so nothing needs clearing."""
    if instance is None:
        return None
    return tuple(getattr(instance, name) for name in _stored_fields(type(instance)))
