from django.dispatch import Signal

from .contact import CONTACT_FIELDS  # noqa: F401 - changed_fields are among these; importable with the signal

# Sent inside the saving transaction when a customer's contact details change.
# Arguments: customer, changed_fields (frozenset of Customer field names), by (the acting user).
contact_changed = Signal()
