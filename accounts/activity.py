"""Customer activity: what counts, and recording it on `Customer.last_activity_at`.

Activity is something the customer does themselves: signing in, viewing portal pages (written at
most once every ACTIVITY_INTERVAL_SECONDS per session), buying, and changing their card or their
settings. Staff edits, webhooks that only mirror Stripe, and emails we send are not activity.
This module imports nothing but the model, so any app's services may record activity.
"""

from datetime import datetime

from django.db.models import Q
from django.utils import timezone

from .models import Customer


def customer_record_activity(*, user_id: int, at: datetime | None = None) -> None:
    """Record activity at `at` (now by default); an older time never overwrites a newer one."""
    at = at or timezone.now()
    Customer.objects.filter(Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=at), user_id=user_id).update(
        last_activity_at=at
    )
