"""The Stripe gateway: the only module that imports the `stripe` SDK.

Every call has a timeout and bounded retries on network errors (the SDK reuses the same
idempotency key on each retry), every create or update carries an idempotency key, and every
SDK error becomes one of our PaymentError classes, logged with context but without card data.
The mappers read both Stripe's current object shapes and localstripe's older ones (Plans rather
than Prices, `current_period_end` on the subscription rather than on its items).
"""

import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import stripe
from django.conf import settings

from .base import (
    Address,
    AuthenticationRequired,
    CardDeclined,
    CustomerDetails,
    GatewayCard,
    GatewayCustomer,
    GatewayEvent,
    GatewayInvoice,
    GatewayRefund,
    GatewaySetupIntent,
    GatewaySubscription,
    IdempotencyConflict,
    InvalidRequest,
    NotFound,
    PaymentError,
    SignatureInvalid,
    TemporarilyUnavailable,
)

logger = logging.getLogger(__name__)

# The version the SDK was built for; Stripe answers in this shape whatever the account default.
API_VERSION = stripe.api_version
TIMEOUT_SECONDS = 15
MAX_NETWORK_RETRIES = 2
WEBHOOK_TOLERANCE_SECONDS = 300


def _ts(value) -> datetime | None:
    return datetime.fromtimestamp(int(value), tz=UTC) if value else None


def _plain(obj) -> dict:
    """A StripeObject (or a dict) as a plain dict, for shape-tolerant reading."""
    if obj is None:
        return {}
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _id(value) -> str:
    """An expandable field: an id string, an object with an id, or nothing."""
    if not value:
        return ""
    if isinstance(value, str):
        return value
    return value.get("id", "") if isinstance(value, dict) else getattr(value, "id", "")


# ---------------------------------------------------------------------------------------------
# Mappers: Stripe objects (either shape) → our dataclasses
# ---------------------------------------------------------------------------------------------


def map_customer(data) -> GatewayCustomer:
    data = _plain(data)
    invoice_settings = data.get("invoice_settings") or {}
    return GatewayCustomer(
        id=data["id"],
        email=data.get("email") or "",
        name=data.get("name") or "",
        default_payment_method_id=_id(invoice_settings.get("default_payment_method")),
    )


def map_card(data) -> GatewayCard:
    data = _plain(data)
    card = data.get("card") or {}
    return GatewayCard(
        id=data["id"],
        brand=card.get("brand") or card.get("display_brand") or "",
        last4=card.get("last4") or "",
        exp_month=int(card.get("exp_month") or 0),
        exp_year=int(card.get("exp_year") or 0),
        customer_id=_id(data.get("customer")),
    )


def map_setup_intent(data) -> GatewaySetupIntent:
    data = _plain(data)
    return GatewaySetupIntent(
        id=data["id"],
        client_secret=data.get("client_secret") or "",
        status=data.get("status") or "",
        payment_method_id=_id(data.get("payment_method")),
        customer_id=_id(data.get("customer")),
    )


def map_subscription(data) -> GatewaySubscription:
    """Read a subscription in Stripe's current shape or localstripe's older one."""
    data = _plain(data)
    items = (data.get("items") or {}).get("data") or []
    item = items[0] if items else {}
    price = item.get("price") or item.get("plan") or data.get("plan") or {}
    recurring = price.get("recurring") or {}
    amount = price.get("unit_amount")
    if amount is None:
        amount = price.get("amount") or 0
    quantity = item.get("quantity") or data.get("quantity") or 1
    # Current API: the period lives on each item; older shape (localstripe): on the subscription.
    period_end = item.get("current_period_end") or data.get("current_period_end")
    pause = data.get("pause_collection")
    return GatewaySubscription(
        id=data["id"],
        customer_id=_id(data.get("customer")),
        status=data.get("status") or "",
        amount=int(amount) * int(quantity),
        currency=(price.get("currency") or data.get("currency") or "").lower(),
        interval=recurring.get("interval") or price.get("interval") or "",
        price_id=price.get("id") or "",
        current_period_end=_ts(period_end),
        cancel_at_period_end=bool(data.get("cancel_at_period_end")),
        canceled_at=_ts(data.get("canceled_at")),
        paused=bool(pause) or data.get("status") == "paused",
        resumes_at=_ts((pause or {}).get("resumes_at")),
        default_payment_method_id=_id(data.get("default_payment_method")),
        latest_invoice_id=_id(data.get("latest_invoice")),
    )


def map_invoice(data) -> GatewayInvoice:
    """Read an invoice in Stripe's current shape (parent, pricing, payments) or the older one."""
    data = _plain(data)
    lines = (data.get("lines") or {}).get("data") or []
    line = lines[0] if lines else {}
    pricing = (line.get("pricing") or {}).get("price_details") or {}
    price_id = _id(pricing.get("price")) or _id(line.get("price")) or _id(line.get("plan"))
    parent = (data.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _id(data.get("subscription")) or _id(parent.get("subscription"))
    payments = (data.get("payments") or {}).get("data") or []
    payment = (payments[0].get("payment") or {}) if payments else {}
    taxes = data.get("total_taxes")
    if taxes is not None:
        tax = sum(int(item.get("amount") or 0) for item in taxes)
    else:
        tax = int(data.get("tax") or 0)
    return GatewayInvoice(
        id=data["id"],
        customer_id=_id(data.get("customer")),
        status=data.get("status") or "",
        amount_paid=int(data.get("amount_paid") or 0),
        amount_due=int(data.get("amount_due") or 0),
        currency=(data.get("currency") or "").lower(),
        subscription_id=subscription_id,
        price_id=price_id,
        tax=tax,
        charge_id=_id(data.get("charge")) or _id(payment.get("charge")),
        payment_intent_id=_id(data.get("payment_intent")) or _id(payment.get("payment_intent")),
        paid_at=_ts((data.get("status_transitions") or {}).get("paid_at")),
    )


def map_refund(data) -> GatewayRefund:
    data = _plain(data)
    return GatewayRefund(
        id=data["id"],
        amount=int(data.get("amount") or 0),
        currency=(data.get("currency") or "").lower(),
        status=data.get("status") or "",
        charge_id=_id(data.get("charge")),
    )


def map_event(data) -> GatewayEvent:
    data = _plain(data)
    obj = (data.get("data") or {}).get("object") or {}
    return GatewayEvent(
        id=data["id"],
        type=data.get("type") or "",
        object_type=obj.get("object") or "",
        object_id=obj.get("id") or "",
        created=_ts(data.get("created")),
        payload=data,
    )


def customer_params(details: CustomerDetails) -> dict[str, Any]:
    address: Address = details.address
    return {
        "name": details.name,
        "email": details.email,
        "address": {
            "line1": address.line1,
            "line2": address.line2,
            "city": address.city,
            "state": address.region,
            "postal_code": address.postal_code,
            "country": address.country,
        },
    }


# ---------------------------------------------------------------------------------------------
# The gateway
# ---------------------------------------------------------------------------------------------


class StripeGateway:
    def __init__(self, *, api_key: str | None = None, api_base: str | None = None, http_client=None):
        base = api_base if api_base is not None else settings.STRIPE_API_BASE
        options: dict[str, Any] = {
            "stripe_version": API_VERSION,
            "max_network_retries": MAX_NETWORK_RETRIES,
            "http_client": http_client or stripe.RequestsClient(timeout=TIMEOUT_SECONDS),
        }
        if base:
            options["base_addresses"] = {"api": base}
        self.client = stripe.StripeClient(api_key or settings.STRIPE_SECRET_KEY, **options)

    def _call(self, operation: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
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
        except (stripe.APIConnectionError, stripe.RateLimitError) as error:
            logger.warning("stripe %s: unavailable (%s)", operation, type(error).__name__)
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
        customer = self._call(
            "customer_create",
            self.client.v1.customers.create,
            params=customer_params(details),
            options={"idempotency_key": idempotency_key},
        )
        self._replace_tax_id(customer.id, details, idempotency_key)
        return map_customer(customer)

    def customer_update(self, *, customer_id: str, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer:
        customer = self._call(
            "customer_update",
            self.client.v1.customers.update,
            customer_id,
            params=customer_params(details),
            options={"idempotency_key": idempotency_key},
        )
        self._replace_tax_id(customer_id, details, idempotency_key)
        return map_customer(customer)

    def _replace_tax_id(self, customer_id: str, details: CustomerDetails, idempotency_key: str) -> None:
        """Make the customer's tax IDs exactly the one we hold (Stripe keeps a list)."""
        existing = self._call("tax_ids_list", self.client.v1.customers.tax_ids.list, customer_id)
        wanted = (details.tax_id_type, details.tax_id_value)
        keep = False
        for tax_id in existing.data:
            if (tax_id.type, tax_id.value) == wanted:
                keep = True
            else:
                self._call(
                    "tax_id_delete",
                    self.client.v1.customers.tax_ids.delete,
                    customer_id,
                    tax_id.id,
                    options={"idempotency_key": f"{idempotency_key}:tax-delete:{tax_id.id}"},
                )
        if details.tax_id_value and not keep:
            try:
                self._call(
                    "tax_id_create",
                    self.client.v1.customers.tax_ids.create,
                    customer_id,
                    params={"type": details.tax_id_type, "value": details.tax_id_value},
                    options={"idempotency_key": f"{idempotency_key}:tax-create"},
                )
            except InvalidRequest:
                # We validated the number ourselves; a type the processor does not take (localstripe knows
                # only a few) must not stop the customer's name, address, cards or subscriptions.
                logger.warning("customer %s: processor refused tax ID type %s", customer_id, details.tax_id_type)

    def customer_retrieve(self, *, customer_id: str) -> GatewayCustomer:
        return map_customer(self._call("customer_retrieve", self.client.v1.customers.retrieve, customer_id))

    # Cards -----------------------------------------------------------------------------------

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> GatewaySetupIntent:
        intent = self._call(
            "setup_intent_create",
            self.client.v1.setup_intents.create,
            params={"customer": customer_id, "usage": "off_session", "payment_method_types": ["card"]},
            options={"idempotency_key": idempotency_key},
        )
        return map_setup_intent(intent)

    def setup_intent_retrieve(self, *, setup_intent_id: str) -> GatewaySetupIntent:
        return map_setup_intent(
            self._call("setup_intent_retrieve", self.client.v1.setup_intents.retrieve, setup_intent_id)
        )

    def card_attach_as_default(
        self, *, customer_id: str, payment_method_id: str, subscription_ids: list[str], idempotency_key: str
    ) -> GatewayCard:
        method = self._call("payment_method_retrieve", self.client.v1.payment_methods.retrieve, payment_method_id)
        payment_method_id = method.id  # a test-mode alias such as pm_card_visa becomes a real method here
        if _id(_plain(method).get("customer")) != customer_id:  # attach only a method not yet this customer's
            method = self._call(
                "payment_method_attach",
                self.client.v1.payment_methods.attach,
                payment_method_id,
                params={"customer": customer_id},
                options={"idempotency_key": f"{idempotency_key}:attach"},
            )
        self._call(
            "customer_default_pm",
            self.client.v1.customers.update,
            customer_id,
            params={"invoice_settings": {"default_payment_method": payment_method_id}},
            options={"idempotency_key": f"{idempotency_key}:default"},
        )
        for subscription_id in subscription_ids:
            self._call(
                "subscription_default_pm",
                self.client.v1.subscriptions.update,
                subscription_id,
                params={"default_payment_method": payment_method_id},
                options={"idempotency_key": f"{idempotency_key}:{subscription_id}"},
            )
        return map_card(method)

    def card_retrieve(self, *, payment_method_id: str) -> GatewayCard:
        return map_card(
            self._call("payment_method_retrieve", self.client.v1.payment_methods.retrieve, payment_method_id)
        )

    def cards_list(self, *, customer_id: str) -> list[GatewayCard]:
        methods = self._call(
            "payment_methods_list",
            self.client.v1.payment_methods.list,
            params={"customer": customer_id, "type": "card"},
        )
        return [map_card(method) for method in methods.data]

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        self._call(
            "payment_method_detach",
            self.client.v1.payment_methods.detach,
            payment_method_id,
            options={"idempotency_key": idempotency_key},
        )

    # Subscriptions ---------------------------------------------------------------------------

    def subscription_retrieve(self, *, subscription_id: str) -> GatewaySubscription:
        return map_subscription(
            self._call("subscription_retrieve", self.client.v1.subscriptions.retrieve, subscription_id)
        )

    def subscriptions_list(self, *, customer_id: str) -> list[GatewaySubscription]:
        subscriptions = self._call(
            "subscriptions_list", self.client.v1.subscriptions.list, params={"customer": customer_id, "status": "all"}
        )
        return [map_subscription(subscription) for subscription in subscriptions.data]

    def subscription_set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, idempotency_key: str
    ) -> GatewaySubscription:
        subscription = self._call(
            "subscription_cancel_at_period_end",
            self.client.v1.subscriptions.update,
            subscription_id,
            params={"cancel_at_period_end": cancel},
            options={"idempotency_key": idempotency_key},
        )
        return map_subscription(subscription)

    def subscription_cancel_now(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        subscription = self._call(
            "subscription_cancel",
            self.client.v1.subscriptions.cancel,
            subscription_id,
            options={"idempotency_key": idempotency_key},
        )
        return map_subscription(subscription)

    def subscription_pause(
        self, *, subscription_id: str, resumes_at: datetime | None, idempotency_key: str
    ) -> GatewaySubscription:
        pause: dict[str, Any] = {"behavior": "void"}
        if resumes_at:
            pause["resumes_at"] = int(resumes_at.timestamp())
        subscription = self._call(
            "subscription_pause",
            self.client.v1.subscriptions.update,
            subscription_id,
            params={"pause_collection": pause},
            options={"idempotency_key": idempotency_key},
        )
        return map_subscription(subscription)

    def subscription_resume(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        subscription = self._call(
            "subscription_resume",
            self.client.v1.subscriptions.update,
            subscription_id,
            params={"pause_collection": ""},  # an empty value unsets it
            options={"idempotency_key": idempotency_key},
        )
        return map_subscription(subscription)

    # Development and demo (not in the protocol: checkout creates these in production) ----------

    def demo_plan_ensure(self, *, plan_id: str, product_name: str, amount: int, currency: str, interval: str) -> str:
        """Create a recurring price (a Plan, which localstripe and Stripe test mode both accept) once."""
        try:
            return self._call("plan_retrieve", self.client.v1.plans.retrieve, plan_id).id
        except NotFound:
            plan = self._call(
                "plan_create",
                self.client.v1.plans.create,
                params={
                    "id": plan_id,
                    "amount": amount,
                    "currency": currency,
                    "interval": interval,
                    "product": {"name": product_name},
                },
                options={"idempotency_key": f"portal:demo-plan:{plan_id}"},
            )
            return plan.id

    def demo_subscription_create(self, *, customer_id: str, plan_id: str, idempotency_key: str) -> GatewaySubscription:
        """Subscribe a customer as a checkout would, charging their default card."""
        subscription = self._call(
            "subscription_create",
            self.client.v1.subscriptions.create,
            params={"customer": customer_id, "items": [{"plan": plan_id}]},
            options={"idempotency_key": idempotency_key},
        )
        return map_subscription(subscription)

    # Invoices --------------------------------------------------------------------------------

    def invoice_retrieve(self, *, invoice_id: str) -> GatewayInvoice:
        invoice = map_invoice(self._call("invoice_retrieve", self.client.v1.invoices.retrieve, invoice_id))
        if not invoice.charge_id and invoice.payment_intent_id:
            intent = self._call(
                "payment_intent_retrieve", self.client.v1.payment_intents.retrieve, invoice.payment_intent_id
            )
            invoice = replace(invoice, charge_id=_id(_plain(intent).get("latest_charge")))
        return invoice

    # Refunds, portal, webhooks ---------------------------------------------------------------

    def refund_create(self, *, charge_id: str, amount: int, reason: str, idempotency_key: str) -> GatewayRefund:
        params: dict[str, Any] = {"charge": charge_id, "amount": amount}
        if reason in {"duplicate", "fraudulent", "requested_by_customer"}:
            params["reason"] = reason
        refund = self._call(
            "refund_create", self.client.v1.refunds.create, params=params, options={"idempotency_key": idempotency_key}
        )
        return map_refund(refund)

    def refunds_list(self, *, charge_id: str) -> list[GatewayRefund]:
        refunds = self._call("refunds_list", self.client.v1.refunds.list, params={"charge": charge_id, "limit": 100})
        return [map_refund(refund) for refund in refunds.data]

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        session = self._call(
            "billing_portal_session",
            self.client.v1.billing_portal.sessions.create,
            params={"customer": customer_id, "return_url": return_url, "flow_data": {"type": "payment_method_update"}},
        )
        return session.url

    def event_construct(self, *, payload: bytes, signature: str, secret: str) -> GatewayEvent:
        return event_construct(payload=payload, signature=signature, secret=secret)


def event_construct(*, payload: bytes, signature: str, secret: str) -> GatewayEvent:
    """Verify a webhook's signature on the raw body (HMAC-SHA256, timestamp within tolerance) and read it."""
    if not secret:
        raise SignatureInvalid("no webhook signing secret is configured")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError) as error:
        raise SignatureInvalid("webhook signature did not verify") from error
    return map_event(event)
