"""Writes that span the domain apps, for the console: a customer added by hand with the offer they bought,
and the removal of sign-ups that nobody verified and that hold nothing in any app."""

import logging
from datetime import datetime

from django.db import transaction

from accounts.models import Customer, User
from accounts.services import customer_create, customer_send_login_email
from purchases.services import access_grant

from .selectors import unverified_signups

logger = logging.getLogger(__name__)


@transaction.atomic
def customer_add_by_hand(*, email: str, full_name: str = "", offer=None, by: User) -> Customer:
    """Create a customer, grant the offer's products if one is given, and send the welcome email."""
    customer = customer_create(email=email, contact={"full_name": full_name}, by=by)
    if offer is not None:
        for product in offer.products.all():
            access_grant(customer=customer, product=product, by=by)
    customer_send_login_email(customer=customer, by=by)
    return customer


def unverified_signups_remove(*, joined_before: datetime) -> int:
    """Delete the sign-ups nobody verified by `joined_before` (selectors.unverified_signups); return how many."""
    removed = 0
    for user_id in unverified_signups(joined_before=joined_before).values_list("pk", flat=True).iterator():
        with transaction.atomic():
            # Checked again under the lock: the address may have been proven since the list was read.
            user = (
                unverified_signups(joined_before=joined_before)
                .select_for_update(of=("self",))
                .filter(pk=user_id)
                .first()
            )
            if user is not None:
                user.delete()
                removed += 1
    if removed:
        logger.info("removed %s unverified sign-ups that joined before %s", removed, joined_before.isoformat())
    return removed
