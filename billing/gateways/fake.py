"""An in-memory gateway for fast tests: succeeds by default, fails on magic values.

Magic payment-method ids: `pm_card_declined` → CardDeclined, `pm_card_3ds` → AuthenticationRequired,
`pm_timeout` → TemporarilyUnavailable. A customer named `timeout` makes customer calls time out.
"""

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from .base import (
    AuthenticationRequired,
    CardDeclined,
    CustomerDetails,
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
    InvalidRequest,
    NotFound,
    TemporarilyUnavailable,
)

DECLINE_MESSAGE = "Your card was declined."
_ids = itertools.count(1)


def _new_id(prefix: str) -> str:
    return f"{prefix}_fake{next(_ids):06d}"


class FakeGateway:
    """State is per class, so every `get_gateway()` in a test sees the same world; call reset()."""

    customers: dict[str, GatewayCustomer] = {}
    cards: dict[str, GatewayCard] = {}
    subscriptions: dict[str, GatewaySubscription] = {}
    refunds: dict[str, GatewayRefund] = {}
    setup_intents: dict[str, GatewaySetupIntent] = {}
    # The status a new refund gets; a test sets "pending" to see a refund that is not yet made.
    refund_status = "succeeded"
    invoices: dict[str, GatewayInvoice] = {}
    # Recurring prices a change of plan may move to: id → (amount, interval); a test adds its own.
    prices: dict[str, tuple[int, str]] = {}
    # A test sets this to have the card refuse the next charge a change of plan makes.
    charge_declines = False
    calls: list[tuple[str, dict[str, Any]]] = []
    schedules: dict[str, GatewaySchedule] = {}
    # Idempotency keys seen by schedule calls → the answer given, replayed for the same key as Stripe does.
    schedule_keys: dict[str, GatewaySchedule] = {}

    @classmethod
    def reset(cls) -> None:
        cls.customers, cls.cards, cls.subscriptions, cls.refunds, cls.calls = {}, {}, {}, {}, []
        cls.setup_intents, cls.invoices, cls.prices = {}, {}, {}
        cls.schedules, cls.schedule_keys = {}, {}
        cls.refund_status = "succeeded"
        cls.charge_declines = False

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))

    def _customer(self, customer_id: str) -> GatewayCustomer:
        try:
            return self.customers[customer_id]
        except KeyError:
            raise NotFound(f"no customer {customer_id}") from None

    def customer_create(self, *, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer:
        self._record("customer_create", details=details, idempotency_key=idempotency_key)
        if details.name == "timeout":
            raise TemporarilyUnavailable("timeout")
        customer = GatewayCustomer(id=_new_id("cus"), email=details.email, name=details.name)
        self.customers[customer.id] = customer
        return customer

    def customer_update(self, *, customer_id: str, details: CustomerDetails, idempotency_key: str) -> GatewayCustomer:
        self._record("customer_update", customer_id=customer_id, details=details, idempotency_key=idempotency_key)
        if details.name == "timeout":
            raise TemporarilyUnavailable("timeout")
        customer = replace(self._customer(customer_id), email=details.email, name=details.name)
        self.customers[customer_id] = customer
        return customer

    def customer_delete(self, *, customer_id: str) -> None:
        self._record("customer_delete", customer_id=customer_id)
        self._customer(customer_id)
        self.customers[customer_id] = replace(self.customers[customer_id], deleted=True)
        for subscription in [s for s in self.subscriptions.values() if s.customer_id == customer_id]:
            self.subscriptions[subscription.id] = replace(subscription, status="canceled")

    def customer_retrieve(self, *, customer_id: str) -> GatewayCustomer:
        return self._customer(customer_id)

    def setup_intent_create(self, *, customer_id: str, idempotency_key: str) -> GatewaySetupIntent:
        self._record("setup_intent_create", customer_id=customer_id)
        self._customer(customer_id)
        intent_id = _new_id("seti")
        intent = GatewaySetupIntent(
            id=intent_id,
            client_secret=f"{intent_id}_secret",
            status="requires_payment_method",
            customer_id=customer_id,
        )
        self.setup_intents[intent_id] = intent
        return intent

    def setup_intent_confirm(self, *, setup_intent_id: str, payment_method_id: str) -> GatewaySetupIntent:
        """Test helper (not in the protocol): what Stripe.js's confirmCardSetup does in the browser."""
        intent = replace(self.setup_intents[setup_intent_id], status="succeeded", payment_method_id=payment_method_id)
        self.setup_intents[setup_intent_id] = intent
        return intent

    def setup_intent_retrieve(self, *, setup_intent_id: str) -> GatewaySetupIntent:
        try:
            return self.setup_intents[setup_intent_id]
        except KeyError:
            raise NotFound(setup_intent_id) from None

    def card_attach_as_default(
        self, *, customer_id: str, payment_method_id: str, subscription_ids: list[str], idempotency_key: str
    ) -> GatewayCard:
        self._record(
            "card_attach_as_default",
            customer_id=customer_id,
            payment_method_id=payment_method_id,
            idempotency_key=idempotency_key,
        )
        if payment_method_id == "pm_card_declined":
            raise CardDeclined(DECLINE_MESSAGE, code="card_declined")
        if payment_method_id == "pm_card_3ds":
            raise AuthenticationRequired("", code="authentication_required")
        if payment_method_id == "pm_timeout":
            raise TemporarilyUnavailable("timeout")
        card = self.cards.get(payment_method_id) or GatewayCard(
            id=payment_method_id, brand="visa", last4="4242", exp_month=12, exp_year=datetime.now(UTC).year + 3
        )
        card = replace(card, customer_id=customer_id)
        self.cards[card.id] = card
        self.customers[customer_id] = replace(self._customer(customer_id), default_payment_method_id=card.id)
        for subscription_id in subscription_ids:
            self.subscriptions[subscription_id] = replace(
                self.subscriptions[subscription_id], default_payment_method_id=card.id
            )
        return card

    def card_retrieve(self, *, payment_method_id: str) -> GatewayCard:
        try:
            return self.cards[payment_method_id]
        except KeyError:
            raise NotFound(payment_method_id) from None

    def cards_list(self, *, customer_id: str) -> list[GatewayCard]:
        return [card for card in self.cards.values() if card.customer_id == customer_id]

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        self._record("card_detach", payment_method_id=payment_method_id)
        self.cards.pop(payment_method_id, None)

    def subscription_create(
        self,
        *,
        customer_id: str,
        amount: int,
        currency: str = "gbp",
        interval: str = "month",
        price_id: str = "price_fake",
    ) -> GatewaySubscription:
        """Test helper (not in the protocol): an active subscription as a checkout would create it."""
        subscription = GatewaySubscription(
            id=_new_id("sub"),
            customer_id=customer_id,
            status="active",
            amount=amount,
            currency=currency,
            interval=interval,
            price_id=price_id,
            current_period_end=datetime.now(UTC) + timedelta(days=30),
            cancel_at_period_end=False,
            item_id=_new_id("si"),
        )
        self.subscriptions[subscription.id] = subscription
        return subscription

    def subscription_retrieve(self, *, subscription_id: str) -> GatewaySubscription:
        try:
            return self.subscriptions[subscription_id]
        except KeyError:
            raise NotFound(subscription_id) from None

    def subscriptions_list(self, *, customer_id: str) -> list[GatewaySubscription]:
        return [s for s in self.subscriptions.values() if s.customer_id == customer_id]

    def subscription_set_cancel_at_period_end(
        self, *, subscription_id: str, cancel: bool, idempotency_key: str, feedback: str = "", comment: str = ""
    ) -> GatewaySubscription:
        self._record(
            "subscription_set_cancel_at_period_end",
            subscription_id=subscription_id,
            cancel=cancel,
            feedback=feedback,
            comment=comment,
        )
        current = self.subscription_retrieve(subscription_id=subscription_id)
        if current.schedule_id:
            raise InvalidRequest(
                f"The subscription is managed by the subscription schedule `{current.schedule_id}`, and updating"
                " any cancelation behavior directly is not allowed. Please update the schedule instead."
            )
        subscription = replace(current, cancel_at_period_end=cancel)
        self.subscriptions[subscription_id] = subscription
        return subscription

    def subscription_coupon_add(
        self, *, subscription_id: str, coupon_id: str, idempotency_key: str
    ) -> GatewaySubscription:
        """Coupons named `missing...` do not exist, as Stripe would answer for a deleted one."""
        self._record(
            "subscription_coupon_add",
            subscription_id=subscription_id,
            coupon_id=coupon_id,
            idempotency_key=idempotency_key,
        )
        if coupon_id.startswith("missing"):
            raise InvalidRequest(f"No such coupon: '{coupon_id}'", code="resource_missing")
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        discount = f"di_{coupon_id}"
        if discount in subscription.discount_ids:
            return subscription  # the same key again: Stripe replays the first answer
        return self.subscription_update(
            subscription_id=subscription_id, discount_ids=(*subscription.discount_ids, discount)
        )

    def subscription_cancel_now(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        self._record("subscription_cancel_now", subscription_id=subscription_id)
        schedule_id = self.subscription_retrieve(subscription_id=subscription_id).schedule_id
        if schedule_id:  # Stripe cancels the schedule with the subscription
            self.schedules[schedule_id] = replace(
                self.schedules[schedule_id], status="canceled", next_price_id="", next_phase_at=None
            )
            self.subscription_update(subscription_id=subscription_id, schedule_id="")
        subscription = replace(
            self.subscription_retrieve(subscription_id=subscription_id),
            status="canceled",
            canceled_at=datetime.now(UTC),
        )
        self.subscriptions[subscription_id] = subscription
        return subscription

    def subscription_update(self, *, subscription_id: str, **changes: Any) -> GatewaySubscription:
        """Test helper (not in the protocol): change a subscription as Stripe would on its own."""
        subscription = replace(self.subscription_retrieve(subscription_id=subscription_id), **changes)
        self.subscriptions[subscription_id] = subscription
        return subscription

    def subscription_pause(
        self, *, subscription_id: str, resumes_at: datetime | None, idempotency_key: str
    ) -> GatewaySubscription:
        self._record("subscription_pause", subscription_id=subscription_id, resumes_at=resumes_at)
        return self.subscription_update(subscription_id=subscription_id, paused=True, resumes_at=resumes_at)

    def subscription_cancel_at_clear(self, *, subscription_id: str, idempotency_key: str) -> GatewaySubscription:
        self._record("subscription_cancel_at_clear", subscription_id=subscription_id)
        return self.subscription_update(subscription_id=subscription_id, cancel_at=None, cancel_at_period_end=False)

    def subscription_resume(
        self, *, subscription_id: str, status_paused: bool, idempotency_key: str
    ) -> GatewaySubscription:
        self._record("subscription_resume", subscription_id=subscription_id, status_paused=status_paused)
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        if status_paused != (subscription.status == "paused"):
            raise InvalidRequest("resume: the subscription is not paused that way")
        status = "active" if status_paused else subscription.status
        return self.subscription_update(subscription_id=subscription_id, status=status, paused=False, resumes_at=None)

    def _price_change_lines(
        self, subscription: GatewaySubscription, price_id: str, moment: datetime
    ) -> tuple[GatewayInvoiceLine, ...]:
        """Stripe's proration, simplified to a 30-day period: credit the unused old, charge the new."""
        if price_id not in self.prices:
            raise InvalidRequest(f"No such price: '{price_id}'")
        amount, interval = self.prices[price_id]
        end = subscription.current_period_end or moment
        left = max((end - moment).total_seconds(), 0) / timedelta(days=30).total_seconds()
        credit = GatewayInvoiceLine(price_id=subscription.price_id, amount=-round(subscription.amount * left))
        if interval != subscription.interval:
            return credit, GatewayInvoiceLine(price_id=price_id, amount=amount)
        return credit, GatewayInvoiceLine(price_id=price_id, amount=round(amount * left))

    def subscription_price_change_preview(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime
    ) -> GatewayInvoice:
        self._record("subscription_price_change_preview", subscription_id=subscription_id, price_id=price_id)
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        lines = self._price_change_lines(subscription, price_id, proration_date)
        return GatewayInvoice(
            id="upcoming_fake",
            customer_id=subscription.customer_id,
            status="draft",
            amount_paid=0,
            amount_due=max(sum(line.amount for line in lines), 0),
            currency=subscription.currency,
            subscription_id=subscription_id,
            lines=lines,
        )

    def subscription_renewal_preview(self, *, subscription_id: str, schedule_id: str = "") -> GatewayInvoice:
        """The renewal at the current price, or at the schedule's next one when its phase starts then;
        unlike Stripe, without discounts or tax (the wire tests check those against the stand-in)."""
        self._record("subscription_renewal_preview", subscription_id=subscription_id, schedule_id=schedule_id)
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        schedule = self.subscription_schedule_retrieve(schedule_id=schedule_id) if schedule_id else None
        price_id, amount = subscription.price_id, subscription.amount
        if schedule and schedule.next_price_id and schedule.next_phase_at == subscription.current_period_end:
            price_id, (amount, _interval) = schedule.next_price_id, self.prices[schedule.next_price_id]
        return GatewayInvoice(
            id="upcoming_fake",
            customer_id=subscription.customer_id,
            status="draft",
            amount_paid=0,
            amount_due=amount,
            currency=subscription.currency,
            subscription_id=subscription_id,
            lines=(GatewayInvoiceLine(price_id=price_id, amount=amount),),
        )

    def subscription_price_change(
        self, *, subscription_id: str, item_id: str, price_id: str, proration_date: datetime, idempotency_key: str
    ) -> GatewaySubscription:
        self._record(
            "subscription_price_change",
            subscription_id=subscription_id,
            price_id=price_id,
            proration_date=proration_date,
            idempotency_key=idempotency_key,
        )
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        lines = self._price_change_lines(subscription, price_id, proration_date)
        if self.charge_declines and sum(line.amount for line in lines) > 0:
            raise CardDeclined(DECLINE_MESSAGE, code="card_declined")
        amount, interval = self.prices[price_id]
        period_end = subscription.current_period_end
        if interval != subscription.interval:  # Stripe restarts the billing cycle on another interval
            period_end = proration_date + (timedelta(days=365) if interval == "year" else timedelta(days=30))
        return self.subscription_update(
            subscription_id=subscription_id,
            price_id=price_id,
            amount=amount,
            interval=interval,
            current_period_end=period_end,
        )

    def subscription_schedule_change(
        self, *, subscription_id: str, price_id: str, idempotency_key: str
    ) -> GatewaySchedule:
        """A schedule made from the subscription, its next phase on `price_id` from the period's end."""
        self._record(
            "subscription_schedule_change",
            subscription_id=subscription_id,
            price_id=price_id,
            idempotency_key=idempotency_key,
        )
        if idempotency_key in self.schedule_keys:
            return self.schedule_keys[idempotency_key]
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        if subscription.schedule_id:
            raise InvalidRequest(
                "You cannot migrate a subscription that is already attached to a schedule:"
                f" `{subscription.schedule_id}`."
            )
        if subscription.status == "canceled":
            raise InvalidRequest("You cannot migrate a canceled subscription.")
        if price_id not in self.prices:
            raise InvalidRequest(f"No such price: '{price_id}'")
        schedule = GatewaySchedule(
            id=_new_id("sub_sched"),
            subscription_id=subscription_id,
            status="active",
            next_price_id=price_id,
            next_phase_at=subscription.current_period_end,
        )
        self.schedules[schedule.id] = schedule
        self.subscription_update(subscription_id=subscription_id, schedule_id=schedule.id)
        self.schedule_keys[idempotency_key] = schedule
        return schedule

    def subscription_schedule_retrieve(self, *, schedule_id: str) -> GatewaySchedule:
        try:
            return self.schedules[schedule_id]
        except KeyError:
            raise NotFound(schedule_id) from None

    def subscription_schedule_release(self, *, schedule_id: str, idempotency_key: str) -> GatewaySchedule:
        self._record("subscription_schedule_release", schedule_id=schedule_id, idempotency_key=idempotency_key)
        if idempotency_key in self.schedule_keys:
            return self.schedule_keys[idempotency_key]
        schedule = self.subscription_schedule_retrieve(schedule_id=schedule_id)
        if not schedule.manages_subscription:
            raise InvalidRequest(f"You cannot release a subscription schedule that is currently `{schedule.status}`.")
        released = replace(schedule, status="released", next_price_id="", next_phase_at=None)
        self.schedules[schedule_id] = released
        self.subscription_update(subscription_id=schedule.subscription_id, schedule_id="")
        self.schedule_keys[idempotency_key] = released
        return released

    def advance_to_renewal(self, *, subscription_id: str) -> GatewaySubscription:
        """Test helper (not in the protocol): the period ends and the subscription renews, as Stripe would.

        A schedule's next phase starts: the first item moves to its price without proration, and the
        schedule, now in its last phase, keeps managing the subscription until that phase ends.
        """
        subscription = self.subscription_retrieve(subscription_id=subscription_id)
        start = subscription.current_period_end or datetime.now(UTC)
        schedule = self.schedules.get(subscription.schedule_id)
        price_id, amount, interval = subscription.price_id, subscription.amount, subscription.interval
        if schedule is not None and schedule.next_price_id:
            price_id = schedule.next_price_id
            amount, interval = self.prices[price_id]
            self.schedules[schedule.id] = replace(schedule, next_price_id="", next_phase_at=None)
        return self.subscription_update(
            subscription_id=subscription_id,
            price_id=price_id,
            amount=amount,
            interval=interval,
            current_period_end=start + (timedelta(days=365) if interval == "year" else timedelta(days=30)),
        )

    def invoice_create(
        self,
        *,
        customer_id: str,
        amount: int,
        status: str = "paid",
        price_id: str = "",
        charge_id: str | None = None,
        payment_intent_id: str | None = None,
        card_brand: str = "visa",
        card_last4: str = "4242",
        **fields: Any,
    ) -> GatewayInvoice:
        """Test helper (not in the protocol): an invoice as a subscription renewal would create it."""
        paid = status == "paid"
        payments = (
            GatewayInvoicePayment(
                status="paid",
                amount_paid=amount,
                charge_id=_new_id("ch") if charge_id is None else charge_id,
                payment_intent_id=_new_id("pi") if payment_intent_id is None else payment_intent_id,
                is_default=True,
                card_brand=card_brand,
                card_last4=card_last4,
            ),
        )
        invoice = GatewayInvoice(
            id=_new_id("in"),
            customer_id=customer_id,
            status=status,
            amount_paid=amount if paid else 0,
            amount_due=amount,
            currency=fields.pop("currency", "gbp"),
            paid_at=datetime.now(UTC) if paid else None,
            lines=(GatewayInvoiceLine(price_id=price_id, amount=amount),) if price_id else (),
            payments=payments if paid else (),
            **fields,
        )
        self.invoices[invoice.id] = invoice
        return invoice

    def invoice_retrieve(self, *, invoice_id: str) -> GatewayInvoice:
        try:
            return self.invoices[invoice_id]
        except KeyError:
            raise NotFound(invoice_id) from None

    def invoice_pay(self, *, invoice_id: str, idempotency_key: str) -> GatewayInvoice:
        """Charge the customer's default card: `pm_card_declined` declines; a paid subscription is active again."""
        self._record("invoice_pay", invoice_id=invoice_id, idempotency_key=idempotency_key)
        invoice = self.invoice_retrieve(invoice_id=invoice_id)
        if invoice.status != "open":
            raise InvalidRequest(f"Invoice is {invoice.status}; only an open invoice can be paid")
        card = self._customer(invoice.customer_id).default_payment_method_id
        if not card:
            raise InvalidRequest("This customer has no default payment method")
        if card == "pm_card_declined":
            self.invoices[invoice_id] = replace(invoice, attempt_count=invoice.attempt_count + 1)
            raise CardDeclined(DECLINE_MESSAGE, code="card_declined")
        payment = GatewayInvoicePayment(
            status="paid",
            amount_paid=invoice.amount_due,
            charge_id=_new_id("ch"),
            payment_intent_id=_new_id("pi"),
            is_default=True,
        )
        paid = replace(
            invoice,
            status="paid",
            amount_paid=invoice.amount_due,
            paid_at=datetime.now(UTC),
            payments=(payment,),
            attempt_count=invoice.attempt_count + 1,
        )
        self.invoices[invoice_id] = paid
        if invoice.subscription_id in self.subscriptions:
            self.subscription_update(subscription_id=invoice.subscription_id, status="active")
        return paid

    def refunds_list(self, *, charge_id: str = "", payment_intent_id: str = "") -> list[GatewayRefund]:
        return [
            refund
            for refund in self.refunds.values()
            if (charge_id and refund.charge_id == charge_id)
            or (payment_intent_id and refund.payment_intent_id == payment_intent_id)
        ]

    def refund_retrieve(self, *, refund_id: str) -> GatewayRefund:
        refund = next((r for r in self.refunds.values() if r.id == refund_id), None)
        if refund is None:
            raise NotFound(refund_id)
        return refund

    def refund_create(
        self, *, charge_id: str, payment_intent_id: str, amount: int, reason: str, idempotency_key: str
    ) -> GatewayRefund:
        self._record(
            "refund_create",
            charge_id=charge_id,
            payment_intent_id=payment_intent_id,
            amount=amount,
            idempotency_key=idempotency_key,
        )
        if not (charge_id or payment_intent_id):
            raise InvalidRequest("a refund needs the charge or payment intent it returns")
        existing = self.refunds.get(idempotency_key)
        if existing:
            return existing  # an idempotent retry returns the same refund
        refund = GatewayRefund(
            id=_new_id("re"),
            amount=amount,
            currency="gbp",
            status=self.refund_status,
            charge_id=charge_id,
            payment_intent_id=payment_intent_id,
        )
        self.refunds[idempotency_key] = refund
        return refund

    def refund_update(self, *, refund_id: str, **changes: Any) -> GatewayRefund:
        """Test helper (not in the protocol): a refund moves on at the processor (pending → failed …)."""
        for key, refund in self.refunds.items():
            if refund.id == refund_id:
                self.refunds[key] = replace(refund, **changes)
                return self.refunds[key]
        raise NotFound(refund_id)

    def billing_portal_url(self, *, customer_id: str, return_url: str) -> str:
        return f"https://billing.example.com/p/session/{customer_id}?return={return_url}"

    def event_construct(self, *, payload: bytes, signature: str, secret: str) -> GatewayEvent:
        """Webhook signatures are verified exactly as in production: the fake only replaces the API."""
        from .stripe import event_construct

        return event_construct(payload=payload, signature=signature, secret=secret)
