"""Signals the base sends for the layers above it to act on (STYLE.md rule 6)."""

from django.dispatch import Signal

# Sent once the transaction that queued an email (portal.outbox.email_queue) has committed, with the
# OutboundEmail's primary key as `email_id`; console.receivers hands it to the sending task.
email_queued = Signal()
