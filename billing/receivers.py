from django.db import transaction
from django.dispatch import receiver

from accounts.contact import BILLING_FIELDS
from accounts.signals import contact_changed

from .services.pushes import customer_push_record
from .tasks import customer_push

# Contact fields the processor's customer record holds.
PUSHED_FIELDS = frozenset(BILLING_FIELDS)


@receiver(contact_changed, dispatch_uid="billing_push_contact")
def push_contact_to_processor(sender, customer, changed_fields, by, **kwargs):
    """Record the push in the contact's transaction and queue it after the save commits; the customer's
    save never waits for the processor, and a push that could not be queued, or whose task was lost, is
    queued again by the sweep."""
    if customer.stripe_customer_id and changed_fields & PUSHED_FIELDS:
        customer_push_record(customer=customer)
        customer_id = customer.pk
        transaction.on_commit(lambda: customer_push.enqueue(customer_id), robust=True)  # the sweep has it
