"""The Stripe gateway: the only module that imports the `stripe` SDK.

Written against the API version the pinned SDK was generated for (`API_VERSION`, sent with every
request). Every request goes through `StripeClient` with the SDK's typed params and every answer is
read through the SDK's typed resource classes, so `make lint` (mypy --strict on this package) fails
when a parameter or a field does not exist at that version. Includable fields (an invoice's
`payments`) are asked for with `expand`, because Stripe leaves them out otherwise.

Every create or update carries an idempotency key chosen by the caller from what the request means;
the SDK reuses it on its own retries. All calls of one request share one deadline
(`payment_deadline`), retries and waits included. Every SDK error becomes one of our PaymentError
classes, logged with context but without card data.
"""

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

import stripe
from django.conf import settings
from stripe.params import (
    ChargeRetrieveParams,
    CustomerCreateParams,
    CustomerDeleteParams,
    CustomerUpdateParams,
    CustomerUpdateParamsAddress,
    InvoiceCreatePreviewParams,
    PaymentIntentRetrieveParams,
    PlanCreateParams,
    RefundCreateParams,
    SubscriptionScheduleUpdateParamsPhase,
    SubscriptionScheduleUpdateParamsPhaseDiscount,
    SubscriptionScheduleUpdateParamsPhaseItem,
    SubscriptionUpdateParams,
    SubscriptionUpdateParamsCancellationDetails,
    SubscriptionUpdateParamsDiscount,
    SubscriptionUpdateParamsPauseCollection,
)

from .base import (
    Address,
    AuthenticationRequired,
    CardDeclined,
    CustomerDetails,
    DeadlinePassed,
    GatewayCard,
    GatewayCustomer,
    GatewayEvent,
    GatewayInvoice,
    GatewayInvoiceLine,
    GatewayInvoicePayment,
    GatewayRefund,
    GatewaySchedule,
    GatewaySetupIntent,
    GatewaySubscription,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    PaymentError,
    SignatureInvalid,
    TemporarilyUnavailable,
    payment_time_left,
)

logger = logging.getLogger(__name__)

# The version the SDK was generated for; Stripe answers in this shape whatever the account default.
API_VERSION: str = stripe.api_version
# One attempt waits at most this long; the request's deadline may cut it shorter.
TIMEOUT_SECONDS = 10.0
MAX_NETWORK_RETRIES = 2
WEBHOOK_TOLERANCE_SECONDS = 300
# Below this many seconds left, a retry is not started (it could not finish in time).
MIN_ATTEMPT_SECONDS = 1.0
REFUND_REASONS = frozenset({"duplicate", "fraudulent", "requested_by_customer"})

T = TypeVar("T")


def _ts(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _id(value: "str | stripe.StripeObject | None") -> str:
    """An expandable field: an id string, an expanded object, or nothing."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    return str(value["id"]) if "id" in value else ""


def _has(obj: stripe.StripeObject, name: str) -> bool:
    """Whether Stripe sent the field at all (includable fields are absent unless expanded)."""
    return name in obj and obj[name] is not None


# ---------------------------------------------------------------------------------------------
# Mappers: Stripe's typed objects (current shape of API_VERSION) → our dataclasses
# ---------------------------------------------------------------------------------------------


def map_customer(customer: stripe.Customer) -> GatewayCustomer:
    if _has(customer, "deleted"):
        return GatewayCustomer(id=customer.id, email="", name="", deleted=True)
    invoice_settings = customer.invoice_settings
    return GatewayCustomer(
        id=customer.id,
        email=customer.email or "",
        name=customer.name or "",
        default_payment_method_id=_id(invoice_settings.default_payment_method) if invoice_settings else "",
    )


def map_card(method: stripe.PaymentMethod) -> GatewayCard:
    card = method.card
    return GatewayCard(
        id=method.id,
        brand=card.brand if card else "",
        last4=card.last4 if card else "",
        exp_month=card.exp_month if card else 0,
        exp_year=card.exp_year if card else 0,
        customer_id=_id(method.customer),
    )


def map_setup_intent(intent: stripe.SetupIntent) -> GatewaySetupIntent:
    return GatewaySetupIntent(
        id=intent.id,
        client_secret=intent.client_secret or "",
        status=intent.status,
        payment_method_id=_id(intent.payment_method),
        customer_id=_id(intent.customer),
    )


def map_subscription(subscription: stripe.Subscription) -> GatewaySubscription:
    """One subscription; its amount is the sum of its items, its period that of its first item."""
    items = subscription.items.data
    first = items[0] if items else None
    price = first.price if first else None
    recurring = price.recurring if price else None
    amount = sum((item.price.unit_amount or 0) * (item.quantity or 1) for item in items)
    pause = subscription.pause_collection
    return GatewaySubscription(
        id=subscription.id,
        customer_id=_id(subscription.customer),
        status=subscription.status,
        amount=amount,
        currency=(subscription.currency or (price.currency if price else "")).lower(),
        interval=recurring.interval if recurring else "",
        price_id=price.id if price else "",
        current_period_end=_ts(first.current_period_end) if first else None,
        cancel_at_period_end=subscription.cancel_at_period_end,
        canceled_at=_ts(subscription.canceled_at),
        paused=pause is not None or subscription.status == "paused",
        resumes_at=_ts(pause.resumes_at) if pause else None,
        default_payment_method_id=_id(subscription.default_payment_method),
        latest_invoice_id=_id(subscription.latest_invoice),
        cancel_at=_ts(subscription.cancel_at),
        interval_count=recurring.interval_count if recurring else 1,
        item_id=first.id if first else "",
        discount_ids=tuple(_id(d) for d in subscription.discounts) if _has(subscription, "discounts") else (),
        schedule_id=_id(subscription.schedule) if _has(subscription, "schedule") else "",
    )


def map_schedule(schedule: stripe.SubscriptionSchedule) -> GatewaySchedule:
    """A schedule and the phase it starts next: the first one after the current phase ends."""
    upcoming = []
    if schedule.status in ("not_started", "active"):
        current = schedule.current_phase
        upcoming = sorted(
            (phase for phase in schedule.phases if current is None or phase.start_date >= current.end_date),
            key=lambda phase: phase.start_date,
        )
    following = upcoming[0] if upcoming else None
    return GatewaySchedule(
        id=schedule.id,
        subscription_id=_id(schedule.subscription) or (schedule.released_subscription or ""),
        status=schedule.status,
        next_price_id=_id(following.items[0].price) if following and following.items else "",
        next_phase_at=_ts(following.start_date) if following else None,
    )


def _phase_discounts(phase: stripe.SubscriptionSchedule.Phase) -> list[SubscriptionScheduleUpdateParamsPhaseDiscount]:
    """The phase's discounts, given back as they are (phases sent without them inherit the customer's)."""
    discounts: list[SubscriptionScheduleUpdateParamsPhaseDiscount] = []
    for discount in phase.discounts:
        if discount.discount:
            discounts.append({"discount": _id(discount.discount)})
        elif discount.coupon:
            discounts.append({"coupon": _id(discount.coupon)})
        elif discount.promotion_code:
            discounts.append({"promotion_code": _id(discount.promotion_code)})
    return discounts


def schedule_phases_params(
    schedule: stripe.SubscriptionSchedule, price_id: str
) -> list[SubscriptionScheduleUpdateParamsPhase]:
    """The phases of a change of price at the current period's end, for a schedule made from the subscription.

    The current phase is sent back unchanged (Stripe refuses another start date for a phase that began);
    the next one starts where it ends, with the first item on the new price and the others kept, and
    lasts one billing cycle of that price, after which the schedule lets go (`end_behavior=release`).
    """
    current = schedule.phases[-1]
    items_now: list[SubscriptionScheduleUpdateParamsPhaseItem] = [
        {"price": _id(item.price), "quantity": item.quantity or 1} for item in current.items
    ]
    items_next: list[SubscriptionScheduleUpdateParamsPhaseItem] = [
        {"price": price_id, "quantity": items_now[0].get("quantity", 1) if items_now else 1},
        *items_now[1:],
    ]
    discounts = _phase_discounts(current)
    now: SubscriptionScheduleUpdateParamsPhase = {
        "start_date": current.start_date,
        "end_date": current.end_date,
        "items": items_now,
    }
    following: SubscriptionScheduleUpdateParamsPhase = {"items": items_next, "proration_behavior": "none"}
    if discounts:
        now["discounts"] = discounts
        following["discounts"] = discounts
    return [now, following]


def map_invoice(invoice: stripe.Invoice) -> GatewayInvoice:
    """An invoice with all its lines and, when `payments` was expanded, all its payments."""
    lines = []
    for line in invoice.lines.data:
        details = line.pricing.price_details if line.pricing else None
        lines.append(
            GatewayInvoiceLine(
                price_id=_id(details.price) if details else "",
                amount=line.amount,
                quantity=line.quantity or 1,
                description=line.description or "",
            )
        )
    payments = []
    if _has(invoice, "payments") and invoice.payments is not None:
        for entry in invoice.payments.data:
            payment = entry.payment  # names only what its `type` is: a charge or a PaymentIntent
            payments.append(
                GatewayInvoicePayment(
                    status=entry.status,
                    amount_paid=entry.amount_paid or 0,
                    charge_id=_id(payment.charge) if _has(payment, "charge") else "",
                    payment_intent_id=_id(payment.payment_intent) if _has(payment, "payment_intent") else "",
                    is_default=entry.is_default,
                )
            )
    parent = invoice.parent.subscription_details if invoice.parent else None
    taxes = invoice.total_taxes or []
    return GatewayInvoice(
        id=invoice.id or "",
        customer_id=_id(invoice.customer),
        status=invoice.status or "",
        amount_paid=invoice.amount_paid,
        amount_due=invoice.amount_due,
        currency=invoice.currency.lower(),
        subscription_id=_id(parent.subscription) if parent else "",
        tax=sum(tax.amount for tax in taxes),
        paid_at=_ts(invoice.status_transitions.paid_at),
        lines=tuple(lines),
        payments=tuple(payments),
        attempt_count=invoice.attempt_count or 0,
        created=_ts(invoice.created),
    )


def charge_card(charge: stripe.Charge) -> tuple[str, str] | None:
    """The brand and last four digits of the card a charge was paid with, or None for other methods."""
    details = charge.payment_method_details if _has(charge, "payment_method_details") else None
    if details is None or details.type != "card" or not _has(details, "card") or details.card is None:
        return None
    return details.card.brand or "", details.card.last4 or ""


def map_refund(refund: stripe.Refund) -> GatewayRefund:
    return GatewayRefund(
        id=refund.id,
        amount=refund.amount,
        currency=refund.currency.lower(),
        status=refund.status or "",
        charge_id=_id(refund.charge),
        payment_intent_id=_id(refund.payment_intent),
        failure_reason=(refund.failure_reason or "") if _has(refund, "failure_reason") else "",
    )


def map_event(body: dict[str, Any]) -> GatewayEvent:
    """The event as Stripe sent it: plain JSON, so it stores as received (no Decimal, no SDK types)."""
    obj = (body.get("data") or {}).get("object") or {}
    return GatewayEvent(
        id=str(body["id"]),
        type=str(body.get("type") or ""),
        object_type=str(obj.get("object") or ""),
        object_id=str(obj.get("id") or ""),
        created=_ts(body.get("created")),
        payload=body,
    )


def _address_params(address: Address) -> CustomerUpdateParamsAddress:
    return {
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "state": address.region,
        "postal_code": address.postal_code,
        "country": address.country,
    }


def customer_create_params(details: CustomerDetails) -> CustomerCreateParams:
    # The create and update address TypedDicts are the same shape under two names.
    return {"name": details.name, "email": details.email, "address": _address_params(details.address)}


def customer_update_params(details: CustomerDetails) -> CustomerUpdateParams:
    return {"name": details.name, "email": details.email, "address": _address_params(details.address)}


# ---------------------------------------------------------------------------------------------
# The HTTP client: per-attempt timeouts and retries cut to the request's deadline
# ---------------------------------------------------------------------------------------------


class DeadlineRequestsClient(stripe.RequestsClient):
    """The SDK's requests client, made to respect `payment_deadline` across attempts and waits."""

    def __init__(self, *, timeout: float = TIMEOUT_SECONDS) -> None:
        super().__init__(timeout=timeout)
        self._attempt_timeout = timeout

    def _left(self) -> float | None:
        return payment_time_left()

    # The SDK's own RequestsClient narrows HTTPClient.request the same way; we keep its signature.
    def request(  # type: ignore[override]
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
    ) -> tuple[bytes, int, Mapping[str, str]]:
        left = self._left()
        if left is not None and left <= 0:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                "the request's time for the payment service ran out", should_retry=False
            )
        self._timeout = self._attempt_timeout if left is None else max(0.1, min(self._attempt_timeout, left))
        return super().request(method, url, headers, post_data)

    def _should_retry(
        self, response: Any, api_connection_error: Any, num_retries: int, max_network_retries: Any
    ) -> Any:
        left = self._left()
        if left is not None and left < MIN_ATTEMPT_SECONDS + self._sleep_time_seconds(num_retries + 1):
            return False
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)


# ---------------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------------


class StripeGateway:
    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_base: str | None = None,
        http_client: stripe.HTTPClient | None = None,
    ) -> None:
        base = api_base if api_base is not None else settings.STRIPE_API_BASE
        self.client = stripe.StripeClient(
            api_key or settings.STRIPE_SECRET_KEY,
            stripe_version=API_VERSION,
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=http_client or DeadlineRequestsClient(),
            base_addresses={"api": base} if base else {},
        )

    def _call(self, operation: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except stripe.CardError as error:
            logger.info("stripe %s: card error %s", operation, error.code)
            if error.code == "authentication_required":
                raise AuthenticationRequired(error.user_message or "", code=error.code) from error
            raise CardDeclined(error.user_message or "", code=error.code or "") from error
        except stripe.IdempotencyError as error:
            logger.error("stripe %s: idempotency conflict", operation)
            raise IdempotencyConflict(str(error.user_message or "")) from error
        except stripe.InvalidRequestError as error:
            logger.warning("stripe %s: invalid request (%s, param %s)", operation, error.code, error.param)
            if error.http_status == 404 or error.code == "resource_missing":
                raise NotFound(str(error.user_message or ""), code=error.code or "") from error
            raise InvalidRequest(str(error.user_message or ""), code=error.code or "") from error
        except stripe.APIConnectionError as error:
            left = payment_time_left()
            if left is not None and left <= MIN_ATTEMPT_SECONDS:
                logger.warning("stripe %s: deadline passed", operation)
                raise DeadlinePassed(str(error.user_message or "")) from error
            logger.warning("stripe %s: unavailable (%s)", operation, type(error).__name__)
            raise TemporarilyUnavailable(str(error.user_message or "")) from error
        except stripe.RateLimitError as error:
            logger.warning("stripe %s: rate limited", operation)
            raise TemporarilyUnavailable(str(error.user_message or "")) from error
        except stripe.APIError as error:
            status = getattr(error, "http_status", None)
            logger.warning("stripe %s: API error (HTTP %s)", operation, status)
            if status == 404:
                raise NotFound(str(error.user_message or "")) from error
            raise TemporarilyUnavailable(str(error.user_message or "")) from error
        except stripe.StripeError as error:
            logger.error("stripe %s: %s", operation, type(error).__name__)
            raise PaymentError(str(error.user_message or "")) from error

    # Customers -------------------------------------------------------------------------------

    def customer_create(self, *, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer:
        v1 = self.client.v1
        customer = self._call(
            "customer_create",
            lambda: v1.customers.create(
                params=customer_create_params(details), options={"idempotency_key": idempotency_key}
            ),
        )
        self._replace_tax_id(customer.id, details, idempotency_key)
        return map_customer(customer)

    def customer_update(self, *, customer_id: str, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer:
        v1 = self.client.v1
        customer = self._call(
            "customer_update",
            lambda: v1.customers.update(
                customer_id, params=customer_update_params(details), options={"idempotency_key": idempotency_key}
            ),
        )
        self._replace_tax_id(customer_id, details, idempotency_key)
        return map_customer(customer)

    def _replace_tax_id(self, customer_id: str, details: CustomerDetails, idempotency_key: str) -> None:
        """Make the customer's tax IDs exactly the one we hold (Stripe keeps a list)."""
        v1 = self.client.v1
        existing = self._call("tax_ids_list", lambda: v1.customers.tax_ids.list(customer_id))
        wanted = (details.tax_id_type, details.tax_id_value)
        keep = False
        for tax_id in existing.data:
            if (tax_id.type, tax_id.value) == wanted:
                keep = True
                continue
            tax_id_id = tax_id.id
            self._call(
                "tax_id_delete",
                lambda tax_id_id=tax_id_id: v1.customers.tax_ids.delete(  # type: ignore[misc]
                    customer_id, tax_id_id, options={"idempotency_key": f"{idempotency_key}:tax-delete:{tax_id_id}"}
                ),
            )
        if details.tax_id_value and not keep:
            try:
                self._call(
                    "tax_id_create",
                    lambda: v1.customers.tax_ids.create(
                        customer_id,
                        params={"type": details.tax_id_type, "value": details.tax_id_value},
                        options={"idempotency_key": f"{idempotency_key}:tax-create"},
                    ),
                )
            except InvalidRequest:
                # We validated the number ourselves; a type the processor refuses must not stop the
                # customer's name, address, cards or subscriptions from being updated.
                logger.warning("customer %s: processor refused tax ID type %s", customer_id, details.tax_id_type)

    def customer_retrieve(self, *, customer_id: str) -> GatewayCustomer:
        v1 = self.client.v1
        return map_customer(self._call("customer_retrieve", lambda: v1.customers.retrieve(customer_id)))

    def customer_delete(self, *, customer_id: str) -> None:
        """Delete the customer at the processor (its subscriptions end, its cards go); one already gone is
        fine. A DELETE takes no idempotency key: repeating it finds nothing to delete."""
        v1 = self.client.v1
        params: CustomerDeleteParams = {}
        try:
            self._call("customer_delete", lambda: v1.customers.delete(customer_id, params=params))
        except NotFound:
            logger.info("stripe customer_delete: %s was already deleted", customer_id)

    # Cards -----------------------------------------------------------------------------------

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> GatewaySetupIntent:
        # No payment method types: the account's payment method configuration decides (cards here).
        v1 = self.client.v1
        intent = self._call(
            "setup_intent_create",
            lambda: v1.setup_intents.create(
                params={"customer": customer_id, "usage": "off_session"},
                options={"idempotency_key": idempotency_key},
            ),
        )
        return map_setup_intent(intent)

    def setup_intent_retrieve(self, *, setup_intent_id: str) -> GatewaySetupIntent:
        v1 = self.client.v1
        return map_setup_intent(self._call("setup_intent_retrieve", lambda: v1.setup_intents.retrieve(setup_intent_id)))

    def card_attach_as_default(
        self, *, customer_id: str, payment_method_id: str, subscription_ids: list[str], idempotency_key: str
    ) -> GatewayCard:
        v1 = self.client.v1
        method = self._call("payment_method_retrieve", lambda: v1.payment_methods.retrieve(payment_method_id))
        method_id = method.id  # a test-mode alias such as pm_card_visa becomes a real method here
        if _id(method.customer) != customer_id:  # attach only a method not yet this customer's
            method = self._call(
                "payment_method_attach",
                lambda: v1.payment_methods.attach(
                    method_id,
                    params={"customer": customer_id},
                    options={"idempotency_key": f"{idempotency_key}:attach"},
                ),
            )
        self._call(
            "customer_default_pm",
            lambda: v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": method_id}},
                options={"idempotency_key": f"{idempotency_key}:default"},
            ),
        )
        for subscription_id in subscription_ids:
            self._call(
                "subscription_default_pm",
                lambda subscription_id=subscription_id: v1.subscriptions.update(  # type: ignore[misc]
                    subscription_id,
                    params={"default_payment_method": method_id},
                    options={"idempotency_key": f"{idempotency_key}:{subscription_id}"},
                ),
            )
        return map_card(method)

    def card_retrieve(self, *, payment_method_id: str) -> GatewayCard:
        v1 = self.client.v1
        return map_card(self._call("payment_method_retrieve", lambda: v1.payment_methods.retrieve(payment_method_id)))

    def cards_list(self, *, customer_id: str) -> list[GatewayCard]:
        v1 = self.client.v1
        methods = self._call(
            "payment_methods_list",
            lambda: v1.payment_methods.list(params={"customer": customer_id, "type": "card", "limit": 100}),
        )
        return [map_card(method) for method in methods.data]

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        v1 = self.client.v1
        self._call(
            "payment_method_detach",
            lambda: v1.payment_methods.detach(payment_method_id, options={"idempotency_key": idempotency_key}),
        )

    # Subscriptions ---------------------------------------------------------------------------

    def subscription_retrieve(self, *, subscription_id: str) -> GatewaySubscription:
        v1 = self.client.v1
        return map_subscription(self._call("subscription_retrieve", lambda: v1.subscriptions.retrieve(subscription_id)))

    def subscriptions_list(self, *, customer_id: str) -> list[GatewaySubscription]:
        v1 = self.client.v1
        subscriptions = self._call(
            "subscriptions_list",
            lambda: v1.subscriptions.list(params={"customer": customer_id, "status": "all", "limit": 100}),
        )
        return [map_subscription(subscription) for subscription in subscriptions.data]

    def _subscription_update(
        self, operation: str, subscription_id: str, params: SubscriptionUpdateParams, idempotency_key: str
    ) -> GatewaySubscription:
        v1 = self.client.v1
        subscription = self._call(
            operation,
            lambda: v1.subscriptions.update(
                subscription_id, params=params, options={"idempotency_key": idempotency_key}
            ),
        )
        return map_subscription(subscription)

    def subscription_set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, idempotency_key: str, feedback: str = "", comment: str = ""
    ) -> GatewaySubscription:
        """Set or clear the end at the period end; a cancellation carries the customer's reason to Stripe."""
        params: SubscriptionUpdateParams = {"cancel_at_period_end": cancel}
        if cancel and (feedback or comment):
            details: SubscriptionUpdateParamsCancellationDetails = {}
            if feedback:
                details["feedback"] = feedback
            if comment:
                details["comment"] = comment
            params["cancellation_details"] = details
        return self._subscription_update("subscription_cancel_at_period_end", subscription_id, params, idempotency_key)

    def subscription_coupon_add(
        self, *, subscription_id: str, coupon_id: str, idempotency_key: str
    ) -> GatewaySubscription:
        """Redeem a coupon on the subscription, keeping the discounts it has (a list given replaces them all)."""
        current = self.subscription_retrieve(subscription_id=subscription_id)
        discounts: list[SubscriptionUpdateParamsDiscount] = [{"discount": d} for d in current.discount_ids]
        discounts.append({"coupon": coupon_id})
        return self._subscription_update(
            "subscription_coupon_add", subscription_id, {"discounts": discounts}, idempotency_key
        )

    def subscription_cancel_at_clear(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        """Undo an end date set on its own (`cancel_at`, from the dashboard or a schedule)."""
        return self._subscription_update(
            "subscription_cancel_at_clear", subscription_id, {"cancel_at": ""}, idempotency_key
        )

    def subscription_cancel_now(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        v1 = self.client.v1
        subscription = self._call(
            "subscription_cancel",
            lambda: v1.subscriptions.cancel(subscription_id, options={"idempotency_key": idempotency_key}),
        )
        return map_subscription(subscription)

    def subscription_pause(
        self, *, subscription_id: str, resumes_at: datetime | None, idempotency_key: str
    ) -> GatewaySubscription:
        pause: SubscriptionUpdateParamsPauseCollection = {"behavior": "void"}
        if resumes_at:
            pause["resumes_at"] = int(resumes_at.timestamp())
        return self._subscription_update(
            "subscription_pause", subscription_id, {"pause_collection": pause}, idempotency_key
        )

    def subscription_resume(
        self, *, subscription_id: str, status_paused: bool, idempotency_key: str
    ) -> GatewaySubscription:
        """Resume collection, or a subscription whose status is paused (its own endpoint)."""
        if status_paused:
            v1 = self.client.v1
            subscription = self._call(
                "subscription_resume",
                lambda: v1.subscriptions.resume(
                    subscription_id,
                    params={"billing_cycle_anchor": {"type": "now"}},
                    options={"idempotency_key": idempotency_key},
                ),
            )
            return map_subscription(subscription)
        # An empty value unsets pause_collection.
        return self._subscription_update(
            "subscription_resume", subscription_id, {"pause_collection": ""}, idempotency_key
        )

    # A change of plan: its invoice previewed, then made ----------------------------------------
    # Both prorate as of the same moment (`proration_date`), so what the customer confirmed is what is charged.
    # `always_invoice` charges the difference at once instead of on the next renewal; another interval
    # (monthly to yearly) restarts the billing cycle now, which Stripe does by itself.

    def subscription_price_change_preview(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime
    ) -> GatewayInvoice:
        v1 = self.client.v1
        params: InvoiceCreatePreviewParams = {
            "subscription": subscription_id,
            "subscription_details": {
                "items": [{"id": item_id, "price": price_id}],
                "proration_behavior": "always_invoice",
                "proration_date": int(proration_date.timestamp()),
            },
        }
        return map_invoice(self._call("invoice_create_preview", lambda: v1.invoices.create_preview(params=params)))

    def subscription_renewal_preview(self, *, subscription_id: str, schedule_id: str = "") -> GatewayInvoice:
        v1 = self.client.v1
        # `schedule` and `subscription` exclude each other; a schedule's preview includes its next phase.
        params: InvoiceCreatePreviewParams = (
            {"schedule": schedule_id} if schedule_id else {"subscription": subscription_id}
        )
        return map_invoice(self._call("invoice_create_preview", lambda: v1.invoices.create_preview(params=params)))

    def subscription_price_change(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime, idempotency_key: str
    ) -> GatewaySubscription:
        params: SubscriptionUpdateParams = {
            "items": [{"id": item_id, "price": price_id}],
            "proration_behavior": "always_invoice",
            "proration_date": int(proration_date.timestamp()),
            # A declined charge refuses the whole change: the customer keeps the plan they had.
            "payment_behavior": "error_if_incomplete",
        }
        return self._subscription_update("subscription_price_change", subscription_id, params, idempotency_key)

    # A change of price at the period's end: a schedule made from the subscription, given a second phase ------
    # Two requests, each with a key of its own derived from the caller's: a retry replays the creation
    # (Stripe answers with the same schedule) and sends the phases again.

    def subscription_schedule_change(
        self, *, subscription_id: str, price_id: str, idempotency_key: str
    ) -> GatewaySchedule:
        v1 = self.client.v1
        created = self._call(
            "subscription_schedule_create",
            lambda: v1.subscription_schedules.create(
                params={"from_subscription": subscription_id},
                options={"idempotency_key": f"{idempotency_key}:create"},
            ),
        )
        phases = schedule_phases_params(created, price_id)
        updated = self._call(
            "subscription_schedule_update",
            lambda: v1.subscription_schedules.update(
                created.id,
                params={"end_behavior": "release", "phases": phases},
                options={"idempotency_key": f"{idempotency_key}:phases"},
            ),
        )
        return map_schedule(updated)

    def subscription_schedule_retrieve(self, *, schedule_id: str) -> GatewaySchedule:
        v1 = self.client.v1
        return map_schedule(
            self._call("subscription_schedule_retrieve", lambda: v1.subscription_schedules.retrieve(schedule_id))
        )

    def subscription_schedule_release(self, *, schedule_id: str, idempotency_key: str) -> GatewaySchedule:
        """Let go of the subscription: the phases not yet begun never start, the subscription stays as it is."""
        v1 = self.client.v1
        released = self._call(
            "subscription_schedule_release",
            lambda: v1.subscription_schedules.release(schedule_id, options={"idempotency_key": idempotency_key}),
        )
        return map_schedule(released)

    # Development and demo (not in the protocol: checkout creates these in production) ----------

    def demo_plan_ensure(self, *, plan_id: str, product_name: str, amount: int, currency: str, interval: str) -> str:
        """Create a recurring price (a Plan, which localstripe and Stripe test mode both accept) once."""
        v1 = self.client.v1
        plans = self._call("plans_list", lambda: v1.plans.list(params={"limit": 100}))
        if any(plan.id == plan_id for plan in plans.data):
            return plan_id
        params: PlanCreateParams = {
            "id": plan_id,
            "amount": amount,
            "currency": currency,
            "interval": interval,
            "product": {"name": product_name},
        }
        plan = self._call(
            "plan_create",
            lambda: v1.plans.create(params=params, options={"idempotency_key": f"portal:demo-plan:{plan_id}"}),
        )
        return plan.id

    def demo_subscription_create(self, *, customer_id: str, plan_id: str, idempotency_key: str) -> GatewaySubscription:
        """Subscribe a customer as a checkout would, charging their default card."""
        v1 = self.client.v1
        subscription = self._call(
            "subscription_create",
            lambda: v1.subscriptions.create(
                params={"customer": customer_id, "items": [{"price": plan_id}]},
                options={"idempotency_key": idempotency_key},
            ),
        )
        return map_subscription(subscription)

    # Invoices --------------------------------------------------------------------------------

    def invoice_retrieve(self, *, invoice_id: str) -> GatewayInvoice:
        """The invoice with its payments (an includable field: absent unless expanded)."""
        v1 = self.client.v1
        invoice = self._call(
            "invoice_retrieve", lambda: v1.invoices.retrieve(invoice_id, params={"expand": ["payments"]})
        )
        mapped = map_invoice(invoice)
        paid = mapped.paid_payment
        if paid is None:
            return mapped
        charge: stripe.Charge | None = None
        if paid.payment_intent_id and not paid.charge_id:
            # A payment names its PaymentIntent only; its charge (what staff search by, what
            # charge.refunded names, and the card that paid) is the intent's latest charge.
            intent_id = paid.payment_intent_id
            intent_params: PaymentIntentRetrieveParams = {"expand": ["latest_charge"]}
            intent = self._call(
                "payment_intent_retrieve", lambda: v1.payment_intents.retrieve(intent_id, params=intent_params)
            )
            latest = intent.latest_charge
            charge = latest if isinstance(latest, stripe.Charge) else None
            charged = replace(paid, charge_id=_id(latest))
        elif paid.charge_id:
            charge_id = paid.charge_id
            charge_params: ChargeRetrieveParams = {}
            charge = self._call("charge_retrieve", lambda: v1.charges.retrieve(charge_id, params=charge_params))
            charged = paid
        else:
            charged = paid
        card = charge_card(charge) if charge is not None else None
        if card is not None:
            charged = replace(charged, card_brand=card[0], card_last4=card[1])
        return replace(mapped, payments=tuple(charged if p is paid else p for p in mapped.payments))

    def invoice_pay(self, *, invoice_id: str, idempotency_key: str) -> GatewayInvoice:
        """Try an open invoice's payment again now, with the card that pays it (the subscription's or the
        customer's default); a decline is CardDeclined. Answers the invoice as it is after the attempt."""
        v1 = self.client.v1
        self._call("invoice_pay", lambda: v1.invoices.pay(invoice_id, options={"idempotency_key": idempotency_key}))
        return self.invoice_retrieve(invoice_id=invoice_id)

    # Refunds, portal, webhooks ---------------------------------------------------------------

    def refund_create(
        self, *, charge_id: str, payment_intent_id: str, amount: int, reason: str, idempotency_key: str
    ) -> GatewayRefund:
        params: RefundCreateParams = {"amount": amount}
        if payment_intent_id:
            params["payment_intent"] = payment_intent_id
        elif charge_id:
            params["charge"] = charge_id
        else:
            raise InvalidRequest("a refund needs the charge or payment intent it returns")
        if reason in REFUND_REASONS:
            params["reason"] = reason
        v1 = self.client.v1
        refund = self._call(
            "refund_create", lambda: v1.refunds.create(params=params, options={"idempotency_key": idempotency_key})
        )
        return map_refund(refund)

    def refund_retrieve(self, *, refund_id: str) -> GatewayRefund:
        v1 = self.client.v1
        return map_refund(self._call("refund_retrieve", lambda: v1.refunds.retrieve(refund_id)))

    def refunds_list(self, *, charge_id: str = "", payment_intent_id: str = "") -> list[GatewayRefund]:
        v1 = self.client.v1
        if payment_intent_id:
            refunds = self._call(
                "refunds_list", lambda: v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
            )
        else:
            refunds = self._call("refunds_list", lambda: v1.refunds.list(params={"charge": charge_id, "limit": 100}))
        return [map_refund(refund) for refund in refunds.data]

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        v1 = self.client.v1
        session = self._call(
            "billing_portal_session",
            lambda: v1.billing_portal.sessions.create(
                params={
                    "customer": customer_id,
                    "return_url": return_url,
                    "flow_data": {"type": "payment_method_update"},
                }
            ),
        )
        return session.url

    def event_construct(self, *, payload: bytes, signature: str, secret: str) -> GatewayEvent:
        return event_construct(payload=payload, signature=signature, secret=secret)


def event_construct(*, payload: bytes, signature: str, secret: str) -> GatewayEvent:
    """Verify a webhook's signature on the raw body (HMAC-SHA256, timestamp within tolerance) and read it."""
    if not secret:
        raise SignatureInvalid("no webhook signing secret is configured")
    try:
        stripe.WebhookSignature.verify_header(payload.decode("utf-8"), signature, secret, WEBHOOK_TOLERANCE_SECONDS)
        body = json.loads(payload)
    except (stripe.SignatureVerificationError, ValueError, UnicodeDecodeError) as error:
        raise SignatureInvalid("webhook signature did not verify") from error
    if not isinstance(body, dict) or not body.get("id"):
        raise SignatureInvalid("webhook body is not an event")
    return map_event(body)
