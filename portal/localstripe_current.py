"""localstripe answering in the shape of the Stripe API version our SDK is pinned to.

localstripe (the demo's and the browser journeys' fake Stripe, never proof of the contract) speaks a
dialect years old, and our gateway reads Stripe's current objects by attribute, so a field that is
missing fails. `install(app)` puts a layer in front of localstripe's aiohttp app that

- takes requests in the current form and hands localstripe what it understands (a subscription
  item's `price` is its `plan`, a refund's `reason` is kept aside, `expand[]=payments` is answered
  here);
- does what localstripe cannot, keeping that state in localstripe's own store under `EXTRA`, so it is
  saved, loaded and flushed with the rest: collection paused and resumed (`pause_collection`), a
  subscription paused and resumed by its endpoints, `cancel_at` set and cleared, a subscription's
  default card, tax ID types localstripe refuses, prices, invoice payments, billing portal sessions,
  subscription schedules made from a subscription (kept and released; their phases never start here);
- rewrites every answer, the objects nested in it and the objects inside the events it sends, into
  the current shape of what our gateway reads (`billing/gateways/stripe.py`, `map_*`).

It imports nothing from Django; `stripe` only for the version string events carry.
"""

import html
import inspect
import json
import re
import time

import stripe
from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Coupon,
    Customer,
    Event,
    Invoice,
    PaymentIntent,
    PaymentMethod,
    Plan,
    Refund,
    Subscription,
    random_id,
    store,
    try_convert_to_int,
)

API_VERSION: str = stripe.api_version
# The key of our own state in localstripe's store: no localstripe object type is named "portal".
EXTRA = "portal:current"
ENDED = ("canceled", "incomplete_expired")
REFUND_REASONS = ("duplicate", "fraudulent", "requested_by_customer")
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
PRORATION_BEHAVIORS = ("always_invoice", "create_prorations", "none")
PAYMENT_BEHAVIORS = ("allow_incomplete", "default_incomplete", "error_if_incomplete", "pending_if_incomplete")
TAX_ID_TYPE = re.compile(r"^[a-z]{2,3}_[a-z]+(_[a-z]+)*$")
# localstripe's Subscription._update takes these and raises TypeError (a 500) on anything else.
SUBSCRIPTION_UPDATE_PARAMS = frozenset(inspect.signature(Subscription._update).parameters) - {"self"}
HOSTED_PORTAL_PATH = "/billing.stripe.com/p/session/"


# ---------------------------------------------------------------------------------------------
# Our state beside localstripe's objects
# ---------------------------------------------------------------------------------------------


def _extra(section: str, key: str, *, create: bool = False) -> dict | None:
    """Our record `key` in `section`, looked up on each call: loading the state file replaces the store's content."""
    if not create:
        return store.get(EXTRA, {}).get(section, {}).get(key)
    if EXTRA not in store:
        store[EXTRA] = {}
    return store[EXTRA].setdefault(section, {}).setdefault(key, {})


def _now() -> int:
    return int(time.time())


# ---------------------------------------------------------------------------------------------
# Answers: localstripe's exported objects → the current shape
# ---------------------------------------------------------------------------------------------


def current(value):
    """A copy of an answer with every object in it, however deeply nested, in the current shape."""
    if isinstance(value, list):
        return [current(item) for item in value]
    if not isinstance(value, dict):
        return value
    if value.get("object") == "event":
        return value  # its object was converted when the event was made (see `_event_init`)
    converted = {key: current(item) for key, item in value.items()}  # nested objects first
    shape = SHAPES.get(converted.get("object"))
    if shape is not None and not converted.get("deleted"):
        shape(converted)
    return converted


def _drop(obj: dict, *keys: str) -> None:
    for key in keys:
        obj.pop(key, None)


def _price(plan: dict) -> dict:
    """A Plan as the Price it also is (Stripe serves every plan as a price with the same id)."""
    amount = plan.get("amount")
    return {
        "id": plan["id"],
        "object": "price",
        "active": plan.get("active", True),
        "billing_scheme": plan.get("billing_scheme", "per_unit"),
        "created": plan.get("created"),
        "currency": plan.get("currency"),
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": None,
        "metadata": plan.get("metadata") or {},
        "nickname": plan.get("nickname"),
        "product": plan.get("product"),
        "recurring": {
            "interval": plan.get("interval"),
            "interval_count": plan.get("interval_count", 1),
            "meter": None,
            "trial_period_days": plan.get("trial_period_days"),
            "usage_type": plan.get("usage_type", "licensed"),
        },
        "tax_behavior": "unspecified",
        "tiers_mode": plan.get("tiers_mode"),
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": amount,
        "unit_amount_decimal": None if amount is None else str(amount),
    }


def _plan(plan: dict) -> None:
    _drop(plan, "name", "statement_descriptor")  # on the product since 2018
    plan.setdefault("amount_decimal", None if plan.get("amount") is None else str(plan["amount"]))
    plan.setdefault("meter", None)
    plan.setdefault("transform_usage", None)


def _subscription_item(item: dict) -> None:
    plan = item.get("plan")
    if isinstance(plan, dict):
        item["price"] = _price(plan)
    stored = store.get(f"subscription_item:{item.get('id')}")
    period = {"start": None, "end": None}
    if stored is not None:
        item["subscription"] = stored._subscription
        try:
            period = stored._current_period()
        except UserError:
            pass
    # The billing period is the item's now, not the subscription's.
    item["current_period_start"], item["current_period_end"] = period["start"], period["end"]
    item.pop("invoice", None)  # localstripe marks the item with the invoice that billed it
    item.setdefault("discounts", [])


def subscription_status(subscription: Subscription) -> str:
    """localstripe's status, or paused while the pause endpoint's pause lasts."""
    extra = _extra("subscriptions", subscription.id) or {}
    if extra.get("paused") and subscription.status not in ENDED:
        return "paused"
    return subscription.status


def _pause_collection(extra: dict) -> dict | None:
    pause = extra.get("pause_collection")
    if pause and pause.get("resumes_at") and pause["resumes_at"] <= _now():
        return None  # Stripe resumes collection by itself at resumes_at
    return pause


def _subscription(subscription: dict) -> None:
    extra = _extra("subscriptions", subscription["id"]) or {}
    items = (subscription.get("items") or {}).get("data") or []
    first = items[0] if items else {}
    price = first.get("price") or {}
    _drop(subscription, "plan", "quantity", "current_period_start", "current_period_end", "tax_percent")
    _drop(subscription, "discount", "trial_period_days", "trial_from_plan")
    subscription["currency"] = price.get("currency")
    subscription["pause_collection"] = _pause_collection(extra)
    subscription["default_payment_method"] = extra.get("default_payment_method")
    if extra.get("paused") and subscription.get("status") not in ENDED:
        subscription["status"] = "paused"
        subscription["status_details"] = {
            "paused": {
                "subscription": {"type": "pause_requested"},
                "transitioned_at": extra.get("paused_at"),
                "type": "subscription",
            }
        }
    else:
        subscription["status_details"] = None
    if subscription.get("cancel_at_period_end"):
        # Stripe names the end date itself, and dates the request that set it.
        subscription["cancel_at"] = first.get("current_period_end")
        subscription["canceled_at"] = extra.get("canceled_at")
    if subscription.get("status") == "canceled":
        subscription["canceled_at"] = subscription.get("canceled_at") or subscription.get("ended_at")
    subscription.setdefault("billing_cycle_anchor", None)
    subscription["billing_cycle_anchor"] = subscription["billing_cycle_anchor"] or subscription.get("start_date")
    subscription.setdefault("collection_method", "charge_automatically")
    subscription["discounts"] = list(extra.get("discounts") or [])
    subscription["schedule"] = extra.get("schedule")
    details = extra.get("cancellation_details") or {}
    subscription["cancellation_details"] = {
        "comment": details.get("comment"),
        "feedback": details.get("feedback"),
        "reason": "cancellation_requested" if subscription.get("cancel_at_period_end") else None,
    }


def _tax(amount: dict, taxable: int) -> dict:
    return {
        "amount": amount.get("amount", 0),
        "tax_behavior": "inclusive" if amount.get("inclusive") else "exclusive",
        "tax_rate_details": {"tax_rate": amount.get("tax_rate")},
        "taxability_reason": "standard_rated",
        "taxable_amount": taxable,
        "type": "tax_rate_details",
    }


def _line_item(line: dict) -> None:
    plan = line.pop("plan", None)
    kind = line.pop("type", None)
    proration = line.pop("proration", False)
    subscription_item = line.pop("subscription_item", None)
    invoice_item = line.pop("invoice_item", None)
    tax_amounts = line.pop("tax_amounts", None) or []
    _drop(line, "tax_rates")
    if isinstance(plan, dict):
        line["pricing"] = {
            "type": "price_details",
            "price_details": {"price": plan["id"], "product": plan.get("product")},
            "unit_amount_decimal": None if plan.get("amount") is None else str(plan["amount"]),
        }
    else:
        line["pricing"] = None
    details = {
        "invoice_item": invoice_item,
        "proration": proration,
        "proration_details": {"credited_items": None},
        "subscription": line.get("subscription"),
    }
    if kind == "subscription":
        line["parent"] = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {**details, "subscription_item": subscription_item},
        }
    else:
        line["parent"] = {
            "type": "invoice_item_details",
            "invoice_item_details": details,
            "subscription_item_details": None,
        }
    amount = line.get("amount") or 0
    line["taxes"] = [_tax(tax, amount) for tax in tax_amounts]
    line.setdefault("subtotal", amount)
    line.setdefault("quantity_decimal", str(line.get("quantity") or 1))
    line.setdefault("discount_amounts", [])
    line.setdefault("discounts", [])
    line.setdefault("pretax_credit_amounts", [])


def _invoice(invoice: dict) -> None:
    subscription = invoice.pop("subscription", None)
    tax_amounts = invoice.pop("total_tax_amounts", None) or []
    legacy_tax = invoice.pop("tax", 0) or 0
    subtotal = invoice.get("subtotal") or 0
    _drop(invoice, "charge", "payment_intent", "tax_percent", "date", "application_fee", "discount")
    invoice["parent"] = (
        {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription, "subscription_proration_date": None},
        }
        if subscription
        else None
    )
    taxes = [_tax(tax, subtotal) for tax in tax_amounts]
    if legacy_tax and not taxes:  # tax_percent, from before tax rates: no rate to name
        taxes = [_tax({"amount": legacy_tax}, subtotal)]
    invoice["total_taxes"] = taxes
    transitions = {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None, "voided_at": None}
    transitions.update(invoice.get("status_transitions") or {})
    if invoice.get("status") == "paid" and not transitions["paid_at"]:
        # localstripe marks an invoice of nothing paid without saying when; Stripe says at finalization.
        transitions["paid_at"] = transitions["finalized_at"] or invoice.get("created")
    invoice["status_transitions"] = transitions
    amount_due, amount_paid = invoice.get("amount_due") or 0, invoice.get("amount_paid") or 0
    invoice.setdefault("amount_remaining", max(0, amount_due - amount_paid))
    invoice.setdefault("total_excluding_tax", subtotal)
    invoice.setdefault("subtotal_excluding_tax", subtotal)
    invoice.setdefault("total_discount_amounts", [])
    invoice.setdefault("discounts", [])


def invoice_payments(invoice: Invoice) -> dict:
    """The invoice's payments (an includable field): localstripe pays an invoice with one PaymentIntent."""
    data = []
    if invoice.payment_intent:
        intent = PaymentIntent._api_retrieve(invoice.payment_intent)
        status = {"succeeded": "paid", "canceled": "canceled"}.get(intent.status, "open")
        data.append(
            {
                "id": f"inpay_{intent.id.removeprefix('pi_')}",
                "object": "invoice_payment",
                "amount_paid": intent.amount if status == "paid" else None,
                "amount_requested": intent.amount,
                "created": intent.created,
                "currency": intent.currency,
                "invoice": invoice.id,
                "is_default": True,
                "livemode": False,
                "payment": {"type": "payment_intent", "payment_intent": intent.id},
                "status": status,
                "status_transitions": {
                    "canceled_at": invoice.status_transitions.get("voided_at") if status == "canceled" else None,
                    "paid_at": invoice.status_transitions.get("paid_at") if status == "paid" else None,
                },
            }
        )
    return {"object": "list", "data": data, "has_more": False, "url": f"/v1/invoice_payments?invoice={invoice.id}"}


def _refund(refund: dict) -> None:
    extra = _extra("refunds", refund["id"]) or {}
    refund["reason"] = extra.get("reason")
    if not refund.get("payment_intent") and refund.get("charge"):
        charge = store.get(f"charge:{refund['charge']}")
        refund["payment_intent"] = getattr(charge, "payment_intent", None)
    refund.setdefault("failure_reason", None)
    refund.setdefault("pending_reason", None)
    refund.setdefault("next_action", None)
    _drop(refund, "date")


def card_brand(number: str) -> str:
    """The card network from the number's first digits, as Stripe names it (localstripe says visa for all)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in ("34", "37"):
        return "amex"
    if "51" <= number[:2] <= "55" or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number.startswith(("6011", "65")) or "644" <= number[:3] <= "649":
        return "discover"
    if "3528" <= number[:4] <= "3589":
        return "jcb"
    if number.startswith(("36", "38", "39")) or "300" <= number[:3] <= "305":
        return "diners"
    if number.startswith("62"):
        return "unionpay"
    return "unknown"


def _payment_method(method: dict) -> None:
    card = method.get("card")
    if isinstance(card, dict):
        stored = store.get(f"payment_method:{method['id']}")
        brand = card_brand(getattr(stored, "_card_number", "")) if stored is not None else card.get("brand")
        card["brand"] = brand
        card["display_brand"] = "american_express" if brand == "amex" else brand
        card["networks"] = {"available": [brand], "preferred": None}
        card.setdefault("checks", {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"})
        card.setdefault("wallet", None)
        card.setdefault("generated_from", None)
    method.setdefault("allow_redisplay", "unspecified")


def _customer(customer: dict) -> None:
    settings = {"custom_fields": None, "default_payment_method": None, "footer": None, "rendering_options": None}
    settings.update(customer.get("invoice_settings") or {})
    customer["invoice_settings"] = settings
    customer["balance"] = -(customer.pop("account_balance", 0) or 0)
    # Includable lists, absent unless expanded (and tax IDs have their own endpoint, which we answer).
    _drop(customer, "sources", "subscriptions", "tax_ids", "business_vat_id")


def _payment_intent(intent: dict) -> None:
    charge = intent.get("latest_charge")
    if isinstance(charge, dict):
        intent["latest_charge"] = charge.get("id")
    _drop(intent, "charges")
    intent.setdefault("amount_received", intent.get("amount") if intent.get("status") == "succeeded" else 0)


def _tax_id(tax_id: dict) -> None:
    tax_id.setdefault("owner", {"type": "customer", "customer": tax_id.get("customer")})


SHAPES = {
    "customer": _customer,
    "invoice": _invoice,
    "line_item": _line_item,
    "payment_intent": _payment_intent,
    "payment_method": _payment_method,
    "plan": _plan,
    "refund": _refund,
    "subscription": _subscription,
    "subscription_item": _subscription_item,
    "tax_id": _tax_id,
}


_localstripe_event_init = Event.__init__


def _event_init(self, type, data):
    """localstripe's Event, its object in the current shape at the moment of the event."""
    _localstripe_event_init(self, type, data)
    self.data = {"object": current(self.data["object"])}
    self.api_version = API_VERSION
    self.request = {"id": None, "idempotency_key": None}


def _event(kind: str, obj) -> None:
    resources.schedule_webhook(Event(kind, obj))


# ---------------------------------------------------------------------------------------------
# Requests localstripe takes in an older form, or not at all
# ---------------------------------------------------------------------------------------------


def _answer(exported: dict) -> web.Response:
    return server.json_response(exported)


def _refuse(message: str, param: str | None = None, code: str | None = None) -> UserError:
    contents = {key: value for key, value in (("param", param), ("code", code)) if value}
    return UserError(400, message, contents or None)


def _items_price_to_plan(data: dict) -> None:
    """`items[n][price]` → `items[n][plan]`: a plan's id is its price's id."""
    for item in data.get("items") or []:
        if isinstance(item, dict) and "price" in item:
            if "plan" in item:
                raise _refuse("You may only specify one of these parameters: plan, price.", "items")
            item["plan"] = item.pop("price")


def _default_payment_method(value, customer_id: str) -> str | None:
    if value in ("", None):
        return None
    if not isinstance(value, str):
        raise _refuse("Invalid default_payment_method.", "default_payment_method")
    method = PaymentMethod._api_retrieve(value)
    if method.customer != customer_id:
        raise _refuse(
            f"The payment method {method.id} must be attached to the subscription's customer first.",
            "default_payment_method",
        )
    return method.id


def _pause_collection_param(value) -> dict | None:
    if value == "":
        return None
    if not isinstance(value, dict) or set(value) - {"behavior", "resumes_at"}:
        raise _refuse("pause_collection takes behavior and resumes_at.", "pause_collection")
    if value.get("behavior") not in PAUSE_BEHAVIORS:
        raise _refuse(f"pause_collection[behavior] must be one of {', '.join(PAUSE_BEHAVIORS)}.", "pause_collection")
    resumes_at = try_convert_to_int(value.get("resumes_at"))
    if resumes_at is not None and (not isinstance(resumes_at, int) or resumes_at <= _now()):
        raise _refuse("pause_collection[resumes_at] must be a time in the future.", "pause_collection[resumes_at]")
    return {"behavior": value["behavior"], "resumes_at": resumes_at}


def _cancel_at_param(value, subscription: Subscription) -> int | None:
    if value == "":
        return None
    if value in ("min_period_end", "max_period_end"):
        return subscription.current_period_end
    when = try_convert_to_int(value)
    if not isinstance(when, int) or when <= _now():
        raise _refuse("cancel_at must be a time in the future.", "cancel_at")
    return when


async def subscription_create(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    default_method = data.pop("default_payment_method", None)
    if default_method:
        default_method = _default_payment_method(default_method, data.get("customer"))
    _items_price_to_plan(data)
    subscription = Subscription._api_create(**data)
    if default_method:
        _extra("subscriptions", subscription.id, create=True)["default_payment_method"] = default_method
    return _answer(subscription._export(expand=expand))


async def subscription_update(request: web.Request) -> web.Response:
    subscription_id = request.match_info["id"]
    data = await server.get_post_data(request) or {}
    if not data:
        raise UserError(400, "Bad request")
    expand = data.pop("expand", None)
    subscription = Subscription._api_retrieve(subscription_id)
    if "cancel_at" in data and "cancel_at_period_end" in data:
        raise _refuse("You may only specify one of these parameters: cancel_at, cancel_at_period_end.", "cancel_at")
    schedule_id = (_extra("subscriptions", subscription_id) or {}).get("schedule")
    if schedule_id and {"cancel_at", "cancel_at_period_end"} & set(data):
        raise _refuse(
            f"The subscription is managed by the subscription schedule `{schedule_id}`, and updating any "
            "cancelation behavior directly is not allowed. Please update the schedule instead."
        )
    # Every check before any change: a refused request changes nothing, as at Stripe.
    ours = {}
    if "pause_collection" in data:
        ours["pause_collection"] = _pause_collection_param(data.pop("pause_collection"))
    if "default_payment_method" in data:
        ours["default_payment_method"] = _default_payment_method(
            data.pop("default_payment_method"), subscription.customer
        )
    if "cancel_at" in data:
        ours["cancel_at"] = _cancel_at_param(data.pop("cancel_at"), subscription)
    # A change of price: localstripe prorates by itself (it credits the last invoice and invoices a change
    # of interval at once), so these are only checked. It charges no same-interval difference at once.
    if data.pop("proration_behavior", "none") not in PRORATION_BEHAVIORS:
        raise _refuse(f"proration_behavior must be one of {', '.join(PRORATION_BEHAVIORS)}.", "proration_behavior")
    if data.pop("payment_behavior", "allow_incomplete") not in PAYMENT_BEHAVIORS:
        raise _refuse(f"payment_behavior must be one of {', '.join(PAYMENT_BEHAVIORS)}.", "payment_behavior")
    if "discounts" in data:
        ours["discounts"] = _discounts_param(data.pop("discounts"), subscription_id)
    if "cancellation_details" in data:
        details = data.pop("cancellation_details") or {}
        ours["cancellation_details"] = {k: details.get(k) or None for k in ("comment", "feedback")}
    _items_price_to_plan(data)
    unknown = sorted(set(data) - SUBSCRIPTION_UPDATE_PARAMS)
    if unknown:
        raise _refuse(f"localstripe cannot apply: {', '.join(unknown)}.", unknown[0])
    if subscription.status in ENDED and (set(ours) - {"cancellation_details"} or set(data) - {"metadata"}):
        raise _refuse("A canceled subscription can only update its cancellation_details and metadata.")
    if data:
        Subscription._api_update(subscription_id, **data)
    extra = _extra("subscriptions", subscription_id, create=True)
    if "pause_collection" in ours:
        extra["pause_collection"] = ours["pause_collection"]
    if "default_payment_method" in ours:
        extra["default_payment_method"] = ours["default_payment_method"]
    for name in ("discounts", "cancellation_details"):
        if name in ours:
            extra[name] = ours[name]
    if "cancel_at" in ours:
        subscription.cancel_at = ours["cancel_at"]
        subscription.cancel_at_period_end = False
        extra["canceled_at"] = None
    if "cancel_at_period_end" in data:
        extra["canceled_at"] = _now() if subscription.cancel_at_period_end is True else None
        subscription.cancel_at = None
    _event("customer.subscription.updated", subscription)
    return _answer(subscription._export(expand=expand))


async def invoice_create_preview(request: web.Request) -> web.Response:
    """POST /v1/invoices/create_preview in the current form: the customer may be left to the subscription,
    and `subscription_details[items]` name prices and the item they replace."""
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    details = data.get("subscription_details") or {}
    if not isinstance(details, dict):
        raise _refuse("Invalid subscription_details.", "subscription_details")
    behavior = details.pop("proration_behavior", "create_prorations")
    if behavior not in PRORATION_BEHAVIORS:
        raise _refuse(f"proration_behavior must be one of {', '.join(PRORATION_BEHAVIORS)}.", "proration_behavior")
    _items_price_to_plan(details)
    for item in details.get("items") or []:
        if isinstance(item, dict):
            item.pop("id", None)  # localstripe simulates a single-item subscription: the item is implied
    if isinstance(data.get("subscription"), str) and not data.get("customer"):
        data["customer"] = Subscription._api_retrieve(data["subscription"]).customer
    invoice = Invoice._api_create_preview_invoice(**data)
    return _answer(invoice._export(expand=expand))


def _discounts_param(value, subscription_id: str) -> list[str]:
    """`discounts=`: "" clears them, a list replaces them (discounts the subscription has, coupons to redeem)."""
    if value in ("", None):
        return []
    current = (_extra("subscriptions", subscription_id) or {}).get("discounts") or []
    entries = value.values() if isinstance(value, dict) else value  # localstripe's decoder may give {"0": …}
    ids = []
    for index, entry in enumerate(entries):
        if entry.get("discount"):
            if entry["discount"] not in current:
                raise _refuse(
                    f"No such discount: '{entry['discount']}'", f"discounts[{index}][discount]", "resource_missing"
                )
            ids.append(entry["discount"])
        elif entry.get("coupon"):
            try:
                Coupon._api_retrieve(entry["coupon"])
            except UserError:
                raise _refuse(
                    f"No such coupon: '{entry['coupon']}'", f"discounts[{index}][coupon]", "resource_missing"
                ) from None
            ids.append(f"di_{random_id(14)}")
            _extra("discounts", ids[-1], create=True).update(coupon=entry["coupon"], subscription=subscription_id)
        else:
            raise _refuse("Missing required param: discounts[0][coupon].", f"discounts[{index}][coupon]")
    return ids


async def subscriptions_list(request: web.Request) -> web.Response:
    """localstripe's list, filtered by the status we answer (it knows no `paused`)."""
    data = server.unflatten_data(request.query)
    expand = data.pop("expand", None)
    status = data.pop("status", None)
    unknown = sorted(set(data) - {"customer", "limit", "starting_after"})
    if unknown:
        raise _refuse(f"localstripe cannot filter by: {', '.join(unknown)}.", unknown[0])
    listed = Subscription._api_list_all("/v1/subscriptions", status="all", **data)
    if status is None:
        listed._list = [s for s in listed._list if subscription_status(s) not in ENDED]
    elif status != "all":
        listed._list = [s for s in listed._list if subscription_status(s) == status]
    return _answer(listed._export(expand=expand))


async def subscription_pause(request: web.Request) -> web.Response:
    """POST /v1/subscriptions/{id}/pause: the subscription itself paused (status paused) until resumed."""
    subscription = Subscription._api_retrieve(request.match_info["id"])
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    if subscription_status(subscription) not in ("active", "trialing", "past_due"):
        raise _refuse(f"A subscription with status {subscription_status(subscription)} cannot be paused.")
    extra = _extra("subscriptions", subscription.id, create=True)
    extra["paused"], extra["paused_at"] = True, _now()
    _event("customer.subscription.paused", subscription)
    return _answer(subscription._export(expand=expand))


async def subscription_resume(request: web.Request) -> web.Response:
    """POST /v1/subscriptions/{id}/resume: only a subscription whose status is paused, as at Stripe.

    localstripe has no billing clock, so the resumed subscription keeps its period and no
    resumption invoice is made, whatever `billing_cycle_anchor` says.
    """
    subscription = Subscription._api_retrieve(request.match_info["id"])
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    unknown = sorted(set(data) - {"billing_cycle_anchor", "payment_behavior", "proration_behavior", "proration_date"})
    if unknown:
        raise _refuse(f"Received unknown parameter: {unknown[0]}", unknown[0])
    if subscription_status(subscription) != "paused":
        raise _refuse(
            f"Only a subscription with status paused can be resumed; this one is {subscription_status(subscription)}."
        )
    extra = _extra("subscriptions", subscription.id, create=True)
    extra["paused"], extra["paused_at"] = False, None
    _event("customer.subscription.resumed", subscription)
    return _answer(subscription._export(expand=expand))


def _refundable_charge(data: dict) -> Charge | None:
    if isinstance(data.get("payment_intent"), str) and data.get("charge") is None:
        intent = PaymentIntent._api_retrieve(data["payment_intent"])
        if intent.latest_charge is None:
            raise _refuse(f"PaymentIntent {intent.id} has no charge to refund.", "payment_intent")
        return intent.latest_charge
    if isinstance(data.get("charge"), str):
        return Charge._api_retrieve(data["charge"])
    return None  # malformed: localstripe says so


async def refund_create(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    reason = data.pop("reason", None)
    if reason is not None and reason not in REFUND_REASONS:
        raise _refuse(f"Invalid reason: must be one of {', '.join(REFUND_REASONS)}.", "reason")
    charge = _refundable_charge(data)
    if charge is not None:
        left = charge.amount - charge.amount_refunded
        amount = try_convert_to_int(data.get("amount", left))
        if left <= 0:
            raise _refuse(f"Charge {charge.id} has already been refunded.", code="charge_already_refunded")
        if isinstance(amount, int) and amount > left:
            raise _refuse(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left}).",
                "amount",
                code="amount_too_large",
            )
    refund = Refund._api_create(**data)
    if reason:
        _extra("refunds", refund.id, create=True)["reason"] = reason
    _event("refund.created", refund)
    _event("charge.refunded", Charge._api_retrieve(refund.charge))
    return _answer(refund._export(expand=expand))


async def invoice_retrieve(request: web.Request) -> web.Response:
    """An invoice, with `payments` when asked for (`expand[]=payments`), which localstripe lacks."""
    data = server.unflatten_data(request.query)
    expand = data.pop("expand", None) or []
    if not isinstance(expand, list):
        raise UserError(400, "Bad request")
    invoice = Invoice._api_retrieve(request.match_info["id"])
    exported = invoice._export(expand=[path for path in expand if path.split(".")[0] != "payments"])
    if "payments" in expand:
        exported["payments"] = invoice_payments(invoice)
    return _answer(exported)


async def invoice_payments_list(request: web.Request) -> web.Response:
    data = server.unflatten_data(request.query)
    invoice_id = data.get("invoice")
    invoices = (
        [Invoice._api_retrieve(invoice_id)]
        if invoice_id
        else [obj for key, obj in store.items() if key.startswith("invoice:")]
    )
    payments = [payment for invoice in invoices for payment in invoice_payments(invoice)["data"]]
    limit = try_convert_to_int(data.get("limit", 10))
    if not isinstance(limit, int) or limit < 1:
        raise _refuse("Invalid limit.", "limit")
    url = f"/v1/invoice_payments?invoice={invoice_id}" if invoice_id else "/v1/invoice_payments"
    return _answer({"object": "list", "data": payments[:limit], "has_more": len(payments) > limit, "url": url})


# Tax IDs: localstripe knows eu_vat, nz_gst, au_abn and es_cif (and a length rule); Stripe about a
# hundred types. The ones it refuses are kept in our state, per customer.


def _tax_country(kind: str, value: str) -> str:
    if kind == "eu_vat":
        return {"EL": "GR"}.get(value[:2].upper(), value[:2].upper())
    return kind.split("_")[0].upper()


async def tax_id_create(request: web.Request) -> web.Response:
    customer_id = request.match_info["id"]
    data = await server.get_post_data(request) or {}
    expand = data.pop("expand", None)
    try:
        return _answer(Customer._api_add_tax_id(customer_id, **data)._export(expand=expand))
    except UserError as error:
        if error.code != 400:
            raise
    Customer._api_retrieve(customer_id)
    kind, value = data.get("type"), data.get("value")
    if set(data) - {"type", "value"} or not isinstance(kind, str) or not TAX_ID_TYPE.match(kind):
        raise _refuse("Invalid tax ID type.", "type")
    if not isinstance(value, str) or not value.strip():
        raise _refuse("Invalid tax ID value.", "value")
    tax_id = {
        "id": f"txi_{random_id(14)}",
        "object": "tax_id",
        "country": _tax_country(kind, value),
        "created": _now(),
        "customer": customer_id,
        "livemode": False,
        "type": kind,
        "value": value,
        "verification": {"status": "verified", "verified_address": None, "verified_name": None},
    }
    _extra("tax_ids", customer_id, create=True)[tax_id["id"]] = tax_id
    return _answer(tax_id)


async def tax_ids_list(request: web.Request) -> web.Response:
    customer_id = request.match_info["id"]
    data = server.unflatten_data(request.query)
    limit = try_convert_to_int(data.pop("limit", 10))
    starting_after = data.pop("starting_after", None)
    data.pop("expand", None)
    if not isinstance(limit, int) or limit < 1:
        raise _refuse("Invalid limit.", "limit")
    theirs = [tax_id._export() for tax_id in Customer._api_list_tax_ids(customer_id, **data)._list]
    tax_ids = theirs + list((_extra("tax_ids", customer_id) or {}).values())
    if starting_after:
        ids = [tax_id["id"] for tax_id in tax_ids]
        tax_ids = tax_ids[ids.index(starting_after) + 1 :] if starting_after in ids else []
    return _answer(
        {
            "object": "list",
            "data": tax_ids[:limit],
            "has_more": len(tax_ids) > limit,
            "url": f"/v1/customers/{customer_id}/tax_ids",
        }
    )


async def tax_id_retrieve(request: web.Request) -> web.Response:
    customer_id, tax_id = request.match_info["id"], request.match_info["tax_id"]
    ours = (_extra("tax_ids", customer_id) or {}).get(tax_id)
    if ours is not None:
        return _answer(ours)
    return _answer(Customer._api_retrieve_tax_id(customer_id, tax_id)._export())


async def tax_id_delete(request: web.Request) -> web.Response:
    customer_id, tax_id = request.match_info["id"], request.match_info["tax_id"]
    ours = _extra("tax_ids", customer_id) or {}
    if tax_id in ours:
        del ours[tax_id]
        return _answer({"id": tax_id, "object": "tax_id", "deleted": True})
    return _answer(Customer._api_delete_tax_id(customer_id, tax_id)._export())


async def prices_list(request: web.Request) -> web.Response:
    data = server.unflatten_data(request.query)
    data.pop("expand", None)
    data.pop("type", None)  # every plan is a recurring price
    listed = Plan._api_list_all("/v1/prices", **data)._export()
    listed["data"] = [_price(plan) for plan in listed["data"]]
    return _answer(listed)


async def price_retrieve(request: web.Request) -> web.Response:
    return _answer(_price(Plan._api_retrieve(request.match_info["id"])._export()))


async def billing_portal_session_create(request: web.Request) -> web.Response:
    """A session whose page says that localstripe has no billing portal, and leads back."""
    data = await server.get_post_data(request) or {}
    customer = Customer._api_retrieve(data.get("customer") or "")
    return_url = data.get("return_url")
    if return_url is not None and not (isinstance(return_url, str) and return_url.startswith(("http://", "https://"))):
        raise _refuse("Invalid return_url.", "return_url")
    flow = data.get("flow_data")
    session_id = f"bps_{random_id(24)}"
    _extra("billing_portal_sessions", session_id, create=True).update(customer=customer.id, return_url=return_url)
    return _answer(
        {
            "id": session_id,
            "object": "billing_portal.session",
            "configuration": "bpc_localstripe",
            "created": _now(),
            "customer": customer.id,
            "flow": {"type": flow["type"]} if isinstance(flow, dict) and flow.get("type") else None,
            "livemode": False,
            "locale": None,
            "on_behalf_of": None,
            "return_url": return_url,
            "url": f"{request.scheme}://{request.host}{HOSTED_PORTAL_PATH}{session_id}",
        }
    )


def billing_portal_page(request: web.Request) -> web.Response:
    session = _extra("billing_portal_sessions", request.path.removeprefix(HOSTED_PORTAL_PATH))
    if session is None:
        return web.Response(status=404, text="No such billing portal session.\n")
    back = session.get("return_url")
    link = f'<p><a href="{html.escape(back)}">Back</a></p>' if back else ""
    return web.Response(
        content_type="text/html",
        text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            "<title>Billing portal (localstripe)</title></head>"
            "<body><h1>Billing portal</h1><p>On Stripe, this page lets the customer change the card they pay with. "
            "localstripe has no billing portal, so nothing can be changed here.</p>"
            f"{link}</body></html>\n"
        ),
    )


# ---------------------------------------------------------------------------------------------
# Subscription schedules: made from a subscription, given phases, released (all ours)
# ---------------------------------------------------------------------------------------------


def _schedule_phase(*, start: int, end: int, currency: str, items: list[tuple[str, int]], discounts=()) -> dict:
    return {
        "add_invoice_items": [],
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": None,
        "billing_thresholds": None,
        "collection_method": "charge_automatically",
        "currency": currency,
        "default_payment_method": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [{"coupon": None, "discount": d, "promotion_code": None} for d in discounts],
        "end_date": end,
        "invoice_settings": None,
        "items": [
            {
                "billing_thresholds": None,
                "discounts": [],
                "metadata": {},
                "plan": price,
                "price": price,
                "quantity": quantity,
                "tax_rates": [],
            }
            for price, quantity in items
        ],
        "metadata": {},
        "on_behalf_of": None,
        "proration_behavior": "create_prorations",
        "start_date": start,
        "transfer_data": None,
        "trial_end": None,
    }


def _schedule(schedule_id: str) -> dict:
    schedule = _extra("schedules", schedule_id)
    if not schedule:
        raise UserError(404, f"No such subscription_schedule: '{schedule_id}'")
    return schedule


async def subscription_schedule_create(request: web.Request) -> web.Response:
    data = await server.get_post_data(request) or {}
    subscription_id = data.get("from_subscription")
    if not subscription_id:
        raise _refuse("localstripe makes schedules from a subscription only.", "from_subscription")
    subscription = current(Subscription._api_retrieve(subscription_id)._export())
    extra = _extra("subscriptions", subscription_id, create=True)
    if extra.get("schedule"):
        raise _refuse(
            f"You cannot migrate a subscription that is already attached to a schedule: `{extra['schedule']}`.",
            "from_subscription",
        )
    items = subscription["items"]["data"]
    start, end = items[0]["current_period_start"], items[0]["current_period_end"]
    schedule_id = f"sub_sched_{random_id(14)}"
    phase = _schedule_phase(
        start=start,
        end=end,
        currency=subscription["currency"],
        items=[(item["price"]["id"], item["quantity"] or 1) for item in items],
        discounts=subscription["discounts"],
    )
    schedule = _extra("schedules", schedule_id, create=True)
    schedule.update(
        id=schedule_id,
        object="subscription_schedule",
        application=None,
        billing_mode={"flexible": None, "type": "classic", "updated_at": None},
        canceled_at=None,
        completed_at=None,
        created=_now(),
        current_phase={"start_date": start, "end_date": end},
        customer=subscription["customer"],
        customer_account=None,
        default_settings={
            "application_fee_percent": None,
            "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
            "billing_cycle_anchor": "automatic",
            "billing_thresholds": None,
            "collection_method": "charge_automatically",
            "default_payment_method": None,
            "description": None,
            "invoice_settings": {"account_tax_ids": None, "days_until_due": None, "issuer": {"type": "self"}},
            "on_behalf_of": None,
            "transfer_data": None,
        },
        end_behavior="release",
        livemode=False,
        metadata={},
        pause_schedules=[],
        phases=[phase],
        released_at=None,
        released_subscription=None,
        status="active",
        subscription=subscription_id,
        test_clock=None,
    )
    extra["schedule"] = schedule_id
    return _answer(schedule)


async def subscription_schedule_retrieve(request: web.Request) -> web.Response:
    return _answer(_schedule(request.match_info["id"]))


def _managing(schedule: dict, verb: str) -> None:
    if schedule["status"] not in ("not_started", "active"):
        raise _refuse(
            f"You cannot {verb} a subscription schedule that is currently in the `{schedule['status']}` status."
        )


async def subscription_schedule_update(request: web.Request) -> web.Response:
    schedule = _schedule(request.match_info["id"])
    _managing(schedule, "update")
    data = await server.get_post_data(request) or {}
    phases = []
    previous_end = None
    for index, phase in enumerate(data.get("phases") or []):
        items = [(item.get("price") or item.get("plan"), int(item.get("quantity") or 1)) for item in phase["items"]]
        start = int(phase["start_date"]) if phase.get("start_date") not in (None, "now") else previous_end or _now()
        if index == 0 and start != schedule["current_phase"]["start_date"]:
            raise _refuse("You can not modify the start date of the current phase.", "phases[0][start_date]")
        if phase.get("end_date") is not None:
            end = int(phase["end_date"])
        else:
            plan = Plan._api_retrieve(items[0][0])
            end = start + (365 if plan.interval == "year" else 30) * 86400 * (plan.interval_count or 1)
        discounts = [d.get("discount") for d in phase.get("discounts") or [] if d.get("discount")]
        row = _schedule_phase(
            start=start, end=end, currency=schedule["phases"][0]["currency"], items=items, discounts=discounts
        )
        row["proration_behavior"] = phase.get("proration_behavior") or "create_prorations"
        phases.append(row)
        previous_end = end
    if phases:
        schedule["phases"] = phases
    if data.get("end_behavior"):
        schedule["end_behavior"] = data["end_behavior"]
    return _answer(schedule)


async def subscription_schedule_release(request: web.Request) -> web.Response:
    schedule = _schedule(request.match_info["id"])
    _managing(schedule, "release")
    subscription_id = schedule["subscription"]
    (_extra("subscriptions", subscription_id, create=True))["schedule"] = None
    schedule.update(
        status="released",
        released_at=_now(),
        released_subscription=subscription_id,
        subscription=None,
        current_phase=None,
    )
    return _answer(schedule)


# The requests answered here instead of by localstripe, by method and route.
OVERRIDES = {
    ("POST", "/v1/subscriptions"): subscription_create,
    ("GET", "/v1/subscriptions"): subscriptions_list,
    ("POST", "/v1/subscriptions/{id}"): subscription_update,
    ("POST", "/v1/refunds"): refund_create,
    ("POST", "/v1/invoices/create_preview"): invoice_create_preview,
    ("GET", "/v1/invoices/{id}"): invoice_retrieve,
    ("POST", "/v1/customers/{id}/tax_ids"): tax_id_create,
    ("GET", "/v1/customers/{id}/tax_ids"): tax_ids_list,
    ("GET", "/v1/customers/{id}/tax_ids/{tax_id}"): tax_id_retrieve,
    ("DELETE", "/v1/customers/{id}/tax_ids/{tax_id}"): tax_id_delete,
}
# The endpoints localstripe lacks.
ROUTES = (
    ("POST", "/v1/subscriptions/{id}/pause", subscription_pause),
    ("POST", "/v1/subscriptions/{id}/resume", subscription_resume),
    ("GET", "/v1/invoice_payments", invoice_payments_list),
    ("GET", "/v1/prices", prices_list),
    ("GET", "/v1/prices/{id}", price_retrieve),
    ("POST", "/v1/billing_portal/sessions", billing_portal_session_create),
    ("POST", "/v1/subscription_schedules", subscription_schedule_create),
    ("GET", "/v1/subscription_schedules/{id}", subscription_schedule_retrieve),
    ("POST", "/v1/subscription_schedules/{id}", subscription_schedule_update),
    ("POST", "/v1/subscription_schedules/{id}/release", subscription_schedule_release),
)


def _route(request: web.Request) -> str | None:
    resource = getattr(request.match_info.route, "resource", None)
    return resource.canonical if resource is not None else None


@web.middleware
async def current_api(request: web.Request, handler):
    """Answer what localstripe cannot, and put every JSON answer in the current shape."""
    own = OVERRIDES.get((request.method, _route(request)))
    response = await (own(request) if own is not None else handler(request))
    if not isinstance(response, web.Response) or response.content_type != "application/json" or not response.body:
        return response
    return server.json_response(current(json.loads(response.body)), status=response.status)


@web.middleware
async def hosted_pages(request: web.Request, handler):
    """The billing portal's page is opened by a browser, which has no API key: served before the key check."""
    if request.method == "GET" and request.path.startswith(HOSTED_PORTAL_PATH):
        return billing_portal_page(request)
    return await handler(request)


def install(app: web.Application) -> None:
    """Put the layer in front of localstripe's app (before it starts) and its events in the current shape."""
    if current_api in app.middlewares:
        return
    # Inside localstripe's store-saving middleware, so what we record is saved with its objects.
    app.middlewares.append(current_api)
    app.middlewares.insert(0, hosted_pages)
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    Event.__init__ = _event_init
