"""Leaving well: the reason a customer gives when they cancel, and the one offer they may take instead.

The cancel page asks why (Stripe's `cancellation_details.feedback` codes and a comment, sent to Stripe
with the cancellation and kept here for the contact page and the dashboard) and, when the creator set
one up, shows one retention offer: a Stripe coupon redeemed on the subscription, once per customer.
"""

import logging

from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer, User
from accounts.services import customer_record_activity
from portal.selectors import site_settings_get
from portal.services import audit_record

from .gateways.base import InvalidRequest, NotFound, get_gateway
from .models import CancellationFeedback, CancellationReason, RetentionOfferRedemption, Subscription
from .services import BillingError, subscription_cancel, subscription_sync
from .services.common import _email
from .services.subscriptions import _lock_subscription

logger = logging.getLogger(__name__)

COMMENT_MAX_LENGTH = 500
REASON_UNKNOWN = _("Choose one of the reasons listed, or none.")
OFFER_NOT_AVAILABLE = _("This offer is not available any more.")
OFFER_ALREADY_TAKEN = _("You have taken this offer before, so it cannot be applied again.")
OFFER_NOT_APPLICABLE = _("The offer can only be applied to an active subscription that is not set to end.")
OFFER_REFUSED = _("The offer could not be applied, so nothing was changed. Please contact %(contact)s.")


def _clean(*, reason: str, comment: str) -> tuple[str, str]:
    if reason and reason not in CancellationReason.values:
        raise BillingError(REASON_UNKNOWN)
    return reason, comment.strip()[:COMMENT_MAX_LENGTH]


def _feedback_record(
    *, subscription: Subscription, by: User | None, reason: str, comment: str, offer_accepted: bool
) -> CancellationFeedback:
    feedback = CancellationFeedback.objects.create(
        customer=subscription.customer,
        subscription=subscription,
        reason=reason,
        comment=comment,
        offer_accepted=offer_accepted,
    )
    audit_record(
        action="subscription.cancel_reason",
        customer=subscription.customer,
        actor=by,
        changes={
            "subscription": subscription.stripe_subscription_id,
            "reason": reason,
            "comment": comment,
            "offer_accepted": offer_accepted,
        },
    )
    return feedback


@transaction.atomic
def subscription_cancel_with_reason(
    *, subscription: Subscription, by: User | None, reason: str = "", comment: str = "", attempt: str = ""
) -> Subscription:
    """Cancel at the period end with the customer's reason: sent to Stripe, kept here and audited."""
    reason, comment = _clean(reason=reason, comment=comment)
    cancelled = subscription_cancel(
        subscription=subscription, by=by, at_period_end=True, attempt=attempt, feedback=reason, comment=comment
    )
    _feedback_record(subscription=cancelled, by=by, reason=reason, comment=comment, offer_accepted=False)
    return cancelled


@transaction.atomic
def retention_offer_accept(
    *, subscription: Subscription, by: User | None, reason: str = "", comment: str = ""
) -> Subscription:
    """Redeem the creator's retention coupon on this subscription instead of cancelling it, once per customer."""
    reason, comment = _clean(reason=reason, comment=comment)
    subscription = _lock_subscription(subscription)
    customer = Customer.objects.select_for_update().get(pk=subscription.customer_id)
    site = site_settings_get()
    if not site.retention_offer_on:
        raise BillingError(OFFER_NOT_AVAILABLE)
    if RetentionOfferRedemption.objects.filter(customer=customer).exists():
        raise BillingError(OFFER_ALREADY_TAKEN)
    if not subscription.is_active or subscription.is_set_to_end:
        raise BillingError(OFFER_NOT_APPLICABLE)
    try:
        remote = get_gateway().subscription_coupon_add(
            subscription_id=subscription.stripe_subscription_id,
            coupon_id=site.retention_coupon_id,
            # One redemption per customer: pressing again after a lost answer replays the first.
            idempotency_key=f"portal:retention-offer:{customer.pk}:{subscription.stripe_subscription_id}",
        )
    except (InvalidRequest, NotFound) as error:
        # The coupon was deleted, expired or used up at Stripe: the creator's setting needs a look.
        logger.warning("retention coupon %s refused by the processor: %s", site.retention_coupon_id, error.detail)
        raise BillingError(OFFER_REFUSED, {"contact": site.business_email or _("us")}) from error
    try:
        with transaction.atomic():
            RetentionOfferRedemption.objects.create(
                customer=customer,
                subscription=subscription,
                coupon_id=site.retention_coupon_id,
                offer_text=site.retention_offer_text,
            )
    except IntegrityError:
        raise BillingError(OFFER_ALREADY_TAKEN) from None
    audit_record(
        action="retention_offer.applied",
        customer=customer,
        actor=by,
        changes={"subscription": subscription.stripe_subscription_id, "coupon": site.retention_coupon_id},
    )
    _feedback_record(subscription=subscription, by=by, reason=reason, comment=comment, offer_accepted=True)
    synced = subscription_sync(remote=remote, by=by)
    _email(
        customer=customer,
        kind="retention_offer_applied",
        key=f"retention_offer_applied:{customer.pk}",
        context={
            "offer_name": subscription.offer.name if subscription.offer else "",
            "offer_text": site.retention_offer_text,
        },
    )
    if by is not None and not by.is_staff:
        customer_record_activity(user_id=by.pk)
    return synced
