"""Recovering a failed payment: the customer pays the open invoice again from the billing page.

A failed renewal (`invoice.payment_failed`, `billing.services.invoice_record_failed`) leaves the
subscription past due or unpaid with its open invoice noted on the mirror; "Pay now" retries that
invoice at the processor with the card that pays it (after a card update, if the customer made one),
and records the payment at once rather than waiting for the webhook, which then finds it recorded.
"""

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import customer_record_activity
from portal.services import audit_record

from .gateways.base import get_gateway
from .models import Subscription
from .services import BillingError, invoice_record_paid, subscription_sync
from .services.common import _key
from .services.subscriptions import _lock_subscription

NOTHING_TO_PAY = _("There is no failed payment to pay on this subscription.")
PAYMENT_NOT_COMPLETED = _("The payment was not completed. Please try again, or use another card.")


@transaction.atomic
def subscription_invoice_pay(*, subscription: Subscription, by: User | None, attempt: str = "") -> Subscription:
    """Pay the subscription's failed invoice now with its card; a decline raises CardDeclined, changing nothing."""
    subscription = _lock_subscription(subscription)
    if not subscription.needs_payment:
        raise BillingError(NOTHING_TO_PAY)
    gateway = get_gateway()
    invoice = gateway.invoice_pay(
        invoice_id=subscription.unpaid_invoice_id,
        idempotency_key=_key("invoice-pay", subscription.unpaid_invoice_id, attempt=attempt),
    )
    if invoice.status != "paid":
        raise BillingError(PAYMENT_NOT_COMPLETED)
    audit_record(
        action="payment.retried",
        customer=subscription.customer,
        actor=by,
        changes={"invoice": invoice.id, "amount": invoice.amount_paid, "currency": invoice.currency},
    )
    subscription_sync(remote=gateway.subscription_retrieve(subscription_id=subscription.stripe_subscription_id), by=by)
    invoice_record_paid(invoice=invoice)  # the purchase, its receipt and access, and the unpaid note cleared
    if by is not None and not by.is_staff:
        customer_record_activity(user_id=by.pk)
    return Subscription.objects.select_related("offer").get(pk=subscription.pk)
