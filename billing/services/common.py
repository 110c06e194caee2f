"""What every billing service shares: the error class, idempotency keys, and the customer email hand-off."""

import hashlib
import json
import logging
import uuid

from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from portal.errors import UserFacingError
from portal.models import ActorKind

logger = logging.getLogger(__name__)
PROCESSOR_DETACHED = _("Billing is handled directly by the business at the moment.")


class BillingError(UserFacingError):
    """A billing rule was broken; the message may be shown to the customer or staff."""


def _key(*parts, attempt: str = "") -> str:
    """The idempotency key of one intention: what it does, to what, and which attempt it is.

    `attempt` names one intention that may be sent more than once (the id a form carries, a SetupIntent,
    a queued task): its retries share the key, so the processor applies it once and replays its answer.
    Without one, every call is a new intention with a key of its own; the SDK still reuses that key on
    its own network retries. A key is never derived from the target alone, because the same change
    made again later (card A, B, then A again) is a new intention that an old key would swallow.
    """
    return ":".join(["portal", *map(str, parts), attempt or uuid.uuid4().hex])


def _digest(value) -> str:
    """A short fingerprint of what a request sends, so a changed body never reuses a key."""
    text = json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _actor_kind(by) -> str | None:
    return ActorKind.STRIPE if by is None else None


def _email(*, customer: Customer, kind: str, key: str, context: dict | None = None) -> None:
    from portal.outbox import email_queue  # portal's mail outbox; imported late to keep app loading simple

    email_queue(customer=customer, kind=kind, key=key, context=context or {})
