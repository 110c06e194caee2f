"""The payment boundary: plain dataclasses in and out, one exception tree, one protocol.

Nothing outside `billing/gateways/` knows which payment processor is behind it.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


class PaymentError(Exception):
    """Base of every gateway failure. `user_message` is always safe to show to the customer."""

    default_user_message = _("The payment service could not complete this. Please try again later.")
    customer_may_see_detail = False

    def __init__(self, detail: str = "", *, code: str = ""):
        super().__init__(detail or str(self.default_user_message))
        self.detail = detail
        self.code = code

    @property
    def user_message(self) -> str:
        if self.customer_may_see_detail and self.detail:
            return self.detail
        return str(self.default_user_message)


class CardDeclined(PaymentError):
    """Raised when the card issuer declines; the processor's message may be shown to the customer."""

    default_user_message = _("Your card was declined.")
    customer_may_see_detail = True


class AuthenticationRequired(PaymentError):
    """Raised when the customer must complete 3-D Secure in the browser; the message may be shown."""

    default_user_message = _("Your bank asks you to confirm this card. Please complete the verification.")
    customer_may_see_detail = False


class InvalidRequest(PaymentError):
    """Raised when the processor refuses the request as invalid; not shown (it names our parameters)."""


class NotFound(PaymentError):
    """Raised when the processor has no such object; not shown to the customer."""

    default_user_message = _("We could not find that payment record.")


class TemporarilyUnavailable(PaymentError):
    """Raised on timeouts, connection errors, 5xx and rate limits after the retries; not shown."""

    default_user_message = _(
        "The payment service is not answering right now. Please try again in a moment: nothing will be done twice."
    )


class DeadlinePassed(TemporarilyUnavailable):
    """Raised when a request's time for the payment service ran out (retries included); not shown.

    The message says the same as any other outage: whatever may have reached the processor is keyed,
    so pressing again repeats it rather than doing it twice.
    """


class IdempotencyConflict(PaymentError):
    """Raised when an idempotency key was reused with other parameters; not shown to the customer."""


class SignatureInvalid(PaymentError):
    """Raised when a webhook's signature does not verify (forged, tampered or stale); never shown."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""


@dataclass(frozen=True)
class CustomerDetails:
    """What we push to the processor's customer record."""

    name: str
    email: str
    address: Address = field(default_factory=Address)
    tax_id_type: str = ""
    tax_id_value: str = ""


@dataclass(frozen=True)
class GatewayCustomer:
    id: str
    email: str
    name: str
    default_payment_method_id: str = ""
    deleted: bool = False


@dataclass(frozen=True)
class GatewayCard:
    id: str  # the PaymentMethod id
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    customer_id: str = ""


@dataclass(frozen=True)
class GatewaySetupIntent:
    id: str
    client_secret: str
    status: str  # requires_payment_method, requires_action, succeeded, canceled …
    payment_method_id: str = ""
    customer_id: str = ""


@dataclass(frozen=True)
class GatewaySubscription:
    id: str
    customer_id: str
    status: str  # active, trialing, past_due, paused, canceled, incomplete, unpaid …
    amount: int
    currency: str
    interval: str
    price_id: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None = None
    paused: bool = False  # collection paused (pause_collection) or the subscription itself paused
    resumes_at: datetime | None = None
    default_payment_method_id: str = ""
    latest_invoice_id: str = ""
    cancel_at: datetime | None = None  # the date it is set to end, whether at a period end or not
    interval_count: int = 1  # billed every `interval_count` intervals (3 × month: quarterly)
    item_id: str = ""  # the first item's id: the one a change of plan moves to another price
    discount_ids: tuple[str, ...] = ()  # the discounts on the subscription itself (not on its items)
    schedule_id: str = ""  # the subscription schedule that manages it, while one does


@dataclass(frozen=True)
class GatewaySchedule:
    """A subscription schedule, as far as a change of price at a later date needs it.

    `next_price_id` and `next_phase_at` name the phase after the current one, while the schedule still
    has one to start; both are empty once the last phase began or the schedule let go of the subscription.
    """

    id: str
    subscription_id: str
    status: str  # not_started, active, completed, released, canceled
    next_price_id: str = ""
    next_phase_at: datetime | None = None

    @property
    def manages_subscription(self) -> bool:
        return self.status in ("not_started", "active")


@dataclass(frozen=True)
class GatewayInvoiceLine:
    price_id: str
    amount: int
    quantity: int = 1
    description: str = ""


@dataclass(frozen=True)
class GatewayInvoicePayment:
    status: str  # paid, open, canceled …
    amount_paid: int
    charge_id: str = ""
    payment_intent_id: str = ""
    is_default: bool = False
    # The card that paid, as the charge recorded it (empty for other payment methods or when unknown).
    card_brand: str = ""
    card_last4: str = ""


@dataclass(frozen=True)
class GatewayInvoice:
    id: str
    customer_id: str
    status: str  # draft, open, paid, void, uncollectible
    amount_paid: int
    amount_due: int
    currency: str
    subscription_id: str = ""
    tax: int = 0
    paid_at: datetime | None = None
    lines: tuple[GatewayInvoiceLine, ...] = ()
    payments: tuple[GatewayInvoicePayment, ...] = ()
    attempt_count: int = 0  # payment attempts so far: each failed one is news for the customer
    created: datetime | None = None

    @property
    def price_ids(self) -> list[str]:
        return [line.price_id for line in self.lines if line.price_id]

    @property
    def paid_payment(self) -> GatewayInvoicePayment | None:
        """The payment that settled the invoice: the default one if paid, else the largest paid one."""
        paid = [payment for payment in self.payments if payment.status == "paid"]
        if not paid:
            return None
        return next((p for p in paid if p.is_default), max(paid, key=lambda p: p.amount_paid))

    @property
    def charge_id(self) -> str:
        return self.paid_payment.charge_id if self.paid_payment else ""

    @property
    def payment_intent_id(self) -> str:
        return self.paid_payment.payment_intent_id if self.paid_payment else ""

    @property
    def card_brand(self) -> str:
        return self.paid_payment.card_brand if self.paid_payment else ""

    @property
    def card_last4(self) -> str:
        return self.paid_payment.card_last4 if self.paid_payment else ""


@dataclass(frozen=True)
class GatewayRefund:
    id: str
    amount: int
    currency: str
    status: str  # pending, requires_action, succeeded, failed, canceled
    charge_id: str = ""
    payment_intent_id: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class GatewayEvent:
    id: str
    type: str
    object_type: str
    object_id: str
    created: datetime | None
    payload: dict[str, Any]  # the body as Stripe sent it, parsed as plain JSON


# ---------------------------------------------------------------------------------------------
# The port
# ---------------------------------------------------------------------------------------------


class PaymentGateway(Protocol):
    def customer_create(self, *, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer: ...

    def customer_update(
        self, *, customer_id: str, details: CustomerDetails, idempotency_key: str
    ) -> GatewayCustomer: ...

    def customer_retrieve(self, *, customer_id: str) -> GatewayCustomer: ...

    def customer_delete(self, *, customer_id: str) -> None: ...

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> GatewaySetupIntent: ...

    def setup_intent_retrieve(self, *, setup_intent_id: str) -> GatewaySetupIntent: ...

    def card_attach_as_default(
        self, *, customer_id: str, payment_method_id: str, subscription_ids: list[str], idempotency_key: str
    ) -> GatewayCard: ...

    def card_retrieve(self, *, payment_method_id: str) -> GatewayCard: ...

    def cards_list(self, *, customer_id: str) -> list[GatewayCard]: ...

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None: ...

    def subscription_retrieve(self, *, subscription_id: str) -> GatewaySubscription: ...

    def subscriptions_list(self, *, customer_id: str) -> list[GatewaySubscription]: ...

    def subscription_set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, idempotency_key: str, feedback: str = "", comment: str = ""
    ) -> GatewaySubscription: ...

    def subscription_coupon_add(
        self, *, subscription_id: str, coupon_id: str, idempotency_key: str
    ) -> GatewaySubscription: ...

    def subscription_cancel_at_clear(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription: ...

    def subscription_cancel_now(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription: ...

    def subscription_pause(
        self, *, subscription_id: str, resumes_at: datetime | None, idempotency_key: str
    ) -> GatewaySubscription: ...

    def subscription_resume(
        self, *, subscription_id: str, status_paused: bool, idempotency_key: str
    ) -> GatewaySubscription: ...

    def subscription_price_change_preview(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime
    ) -> GatewayInvoice: ...

    def subscription_price_change(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime, idempotency_key: str
    ) -> GatewaySubscription: ...

    def subscription_renewal_preview(self, *, subscription_id: str, schedule_id: str = "") -> GatewayInvoice:
        """The invoice the next renewal will make, as Stripe works it out: discounts, a schedule's next
        phase, tax, the customer's credit (previewed through the schedule when one manages the subscription)."""
        ...

    def subscription_schedule_change(
        self, *, subscription_id: str, price_id: str, idempotency_key: str
    ) -> GatewaySchedule: ...

    def subscription_schedule_retrieve(self, *, schedule_id: str) -> GatewaySchedule: ...

    def subscription_schedule_release(self, *, schedule_id: str, idempotency_key: str) -> GatewaySchedule: ...

    def invoice_retrieve(self, *, invoice_id: str) -> GatewayInvoice: ...

    def invoice_pay(self, *, invoice_id: str, idempotency_key: str) -> GatewayInvoice: ...

    def refunds_list(self, *, charge_id: str = "", payment_intent_id: str = "") -> list[GatewayRefund]: ...

    def refund_retrieve(self, *, refund_id: str) -> GatewayRefund: ...

    def refund_create(
        self, *, charge_id: str, payment_intent_id: str, amount: int, reason: str, idempotency_key: str
    ) -> GatewayRefund: ...

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str: ...

    def event_construct(self, *, payload: bytes, signature: str, secret: str) -> GatewayEvent: ...


# ---------------------------------------------------------------------------------------------
# One deadline for all processor calls of a request
# ---------------------------------------------------------------------------------------------

_deadline: ContextVar[float | None] = ContextVar("payment_deadline", default=None)


@contextmanager
def payment_deadline(seconds: float) -> Iterator[None]:
    """Give every processor call inside this block, retries included, `seconds` in all.

    The request middleware and the task wrapper open one, so a hanging processor ends in our own
    message well before the web server's worker timeout. Nested blocks keep the earlier deadline.
    """
    new = time.monotonic() + seconds
    current = _deadline.get()
    token = _deadline.set(new if current is None else min(current, new))
    try:
        yield
    finally:
        _deadline.reset(token)


def payment_time_left() -> float | None:
    """Seconds left for processor calls in this context, or None when no deadline is open."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


@cache
def _gateway_class(path: str) -> type[PaymentGateway]:
    gateway_class: type[PaymentGateway] = import_string(path)
    return gateway_class


def get_gateway() -> PaymentGateway:
    """The gateway named by settings.PAYMENT_GATEWAY, the way allauth picks its adapter."""
    return _gateway_class(settings.PAYMENT_GATEWAY)()
