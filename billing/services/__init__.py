"""Writes to billing, one module per thing they act on: the processor customer (`customers`), cards,
subscriptions, invoices and refunds (with the staff actions on a purchase); `common` holds what they share.

Every change goes to the payment processor first, through the gateway, inside our transaction:
if the processor refuses or times out, the transaction rolls back and our mirror stays as it
was (a later webhook or `stripe_sync` reconciles anything the processor did apply). The mirror
upserts (`subscription_sync`, `customer_cards_sync`, `invoice_record_paid`, `charge_refunds_sync`)
are shared by our own writes, the webhooks and the sync command. `from billing.services import x`
reaches every public name.
"""

from .cards import (
    CARD_IS_DEFAULT,
    CARD_ONLY_ONE_FOR_SUBSCRIPTION,
    CARD_SETUP_INCOMPLETE,
    CARD_SETUP_NOT_FOUND,
    SETUP_INTENT_OPEN,
    card_remove,
    card_save_from_setup,
    card_set_default,
    card_setup_start,
    card_update_link_send,
    customer_cards_sync,
)
from .common import (
    PROCESSOR_DETACHED,
    BillingError,
)
from .customers import (
    customer_details,
    customer_for_stripe_id,
    stripe_customer_ensure,
    stripe_customer_push,
)
from .invoices import (
    NO_OFFER_FOR_PRICE,
    invoice_record_failed,
    invoice_record_paid,
)
from .refunds import (
    REFUND_NEEDS_REASON,
    REFUND_REFUSED,
    REFUND_STATUSES,
    charge_refunds_sync,
    purchase_access_revoke,
    purchase_refund,
    purchase_subscription,
    refund_sync,
)
from .schedules import (
    subscription_schedule_let_go,
    subscription_schedule_record,
    subscription_schedule_sync,
)
from .subscriptions import (
    SELF_CANCEL_OFF,
    SUBSCRIPTION_ALREADY_CANCELLING,
    SUBSCRIPTION_CANCELLED_BY_STAFF,
    SUBSCRIPTION_NOT_CANCELLABLE,
    SUBSCRIPTION_NOT_CANCELLING,
    SUBSCRIPTION_NOT_PAUSABLE,
    SUBSCRIPTION_NOT_PAUSED,
    SUBSCRIPTION_STILL_PAUSED,
    customer_processor_deleted,
    customer_subscriptions_sync,
    customer_sync_from_processor,
    subscription_cancel,
    subscription_cancel_undo,
    subscription_pause,
    subscription_resume,
    subscription_sync,
)

__all__ = [
    "BillingError",
    "CARD_IS_DEFAULT",
    "CARD_ONLY_ONE_FOR_SUBSCRIPTION",
    "CARD_SETUP_INCOMPLETE",
    "CARD_SETUP_NOT_FOUND",
    "NO_OFFER_FOR_PRICE",
    "PROCESSOR_DETACHED",
    "REFUND_NEEDS_REASON",
    "REFUND_REFUSED",
    "REFUND_STATUSES",
    "SELF_CANCEL_OFF",
    "SETUP_INTENT_OPEN",
    "SUBSCRIPTION_ALREADY_CANCELLING",
    "SUBSCRIPTION_CANCELLED_BY_STAFF",
    "SUBSCRIPTION_NOT_CANCELLABLE",
    "SUBSCRIPTION_NOT_CANCELLING",
    "SUBSCRIPTION_NOT_PAUSABLE",
    "SUBSCRIPTION_NOT_PAUSED",
    "SUBSCRIPTION_STILL_PAUSED",
    "subscription_schedule_let_go",
    "subscription_schedule_record",
    "subscription_schedule_sync",
    "card_remove",
    "card_save_from_setup",
    "card_set_default",
    "card_setup_start",
    "card_update_link_send",
    "charge_refunds_sync",
    "customer_cards_sync",
    "customer_details",
    "customer_for_stripe_id",
    "customer_processor_deleted",
    "customer_subscriptions_sync",
    "customer_sync_from_processor",
    "invoice_record_failed",
    "invoice_record_paid",
    "purchase_access_revoke",
    "purchase_refund",
    "purchase_subscription",
    "refund_sync",
    "stripe_customer_ensure",
    "stripe_customer_push",
    "subscription_cancel",
    "subscription_cancel_undo",
    "subscription_pause",
    "subscription_resume",
    "subscription_sync",
]
