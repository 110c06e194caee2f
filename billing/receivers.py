import uuid
from functools import partial

from django.db import transaction
from django.dispatch import receiver

from accounts.contact import BILLING_FIELDS
from accounts.signals import contact_changed

from .tasks import customer_push

# Contact fields the processor's customer record holds.
PUSHED_FIELDS = frozenset(BILLING_FIELDS)


@receiver(contact_changed, dispatch_uid="billing_push_contact")
def push_contact_to_processor(sender, customer, changed_fields, by, **kwargs):
    """Queue the push after the save commits; the customer's save never waits for the processor."""
    if customer.stripe_customer_id and changed_fields & PUSHED_FIELDS:
        key = f"portal:customer-push:{customer.pk}:{uuid.uuid4().hex}"
        transaction.on_commit(partial(customer_push.enqueue, customer.pk, key))
