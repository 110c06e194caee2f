from django.dispatch import receiver

from accounts.signals import contact_changed

from .services import BILLING_SNAPSHOT_FIELDS, receipts_resync_billing


@receiver(contact_changed, dispatch_uid="purchases_resync_receipts")
def resync_receipts(sender, customer, changed_fields, by, **kwargs):
    """Past receipts follow the customer's billing details (unless the site freezes them)."""
    if changed_fields & BILLING_SNAPSHOT_FIELDS.keys():
        receipts_resync_billing(customer=customer, by=by)
