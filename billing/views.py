import logging
import re
import uuid
from functools import wraps

from allauth.core import ratelimit
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from accounts.services import customer_get_or_create
from portal.fragments import stored_values
from portal.selectors import site_settings_for_request, site_settings_get
from purchases.money import format_money

from . import plans, selectors
from .forms import CancelForm, PauseForm, PlanChangeForm
from .gateways.base import CardDeclined, PaymentError, SignatureInvalid, get_gateway
from .models import Card, Subscription
from .recovery import subscription_invoice_pay
from .retention import retention_offer_accept, subscription_cancel_with_reason
from .services import (
    PROCESSOR_DETACHED,
    BillingError,
    card_remove,
    card_save_from_setup,
    card_set_default,
    card_setup_start,
    stripe_customer_ensure,
    subscription_cancel_undo,
)
from .webhooks import webhook_receive

logger = logging.getLogger(__name__)

SETUP_ID_MISSING = gettext_lazy("Your card details did not arrive. Please enter your card again.")
CARD_SETUP_RATE_LIMITED = gettext_lazy("Too many card attempts in a short time. Wait a few minutes, then try again.")


def processor_attached_required(view):
    """When the creator detached the processor, every billing view shows whom to contact and changes nothing."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not site_settings_for_request(request).processor_attached:
            wants_json = request.headers.get("Accept", "").startswith("application/json")
            if wants_json or view.__name__ == "card_setup":
                return JsonResponse({"error": str(PROCESSOR_DETACHED)}, status=409)
            return render(request, "billing/detached.html", status=409 if request.method == "POST" else 200)
        return view(request, *args, **kwargs)

    return wrapper


def _attempt(request, action, success):
    """Run one service call; show its success, or the refusal in the customer's words. Return its result."""
    try:
        result = action()
    except BillingError as failure:
        messages.error(request, failure.message)
    except PaymentError as failure:
        messages.error(request, failure.user_message)
    else:
        messages.success(request, success(result) if callable(success) else success)
        return result
    return None


# The attempt id a form carries: one intention, however often it is submitted (see billing.services.common._key).
ATTEMPT_ID = re.compile(r"[0-9a-f]{32}")
# The customer's last SetupIntent, handed out again while it is open.
SETUP_INTENT_SESSION_KEY = "billing_setup_intent"


def _attempt_id(request) -> str:
    attempt = request.POST.get("attempt", "")
    return attempt if ATTEMPT_ID.fullmatch(attempt) else ""


def _customer_object(getter, **kwargs):
    try:
        return getter(**kwargs)
    except (Card.DoesNotExist, Subscription.DoesNotExist, ValueError):
        raise Http404 from None


def _cards_shown_key(cards: list[Card], *, has_live: bool) -> str:
    """Everything the card list shows, its buttons included, as its {% cache %} key (the template adds the
    language): the rows, today's expiry and what decides which buttons a card has."""
    return repr(([(stored_values(card), card.is_expired) for card in cards], has_live))


def _subscriptions_shown_key(rows: list[dict], site) -> str:
    """Everything the subscriptions table's rows show, their actions included, as its {% cache %} key (the
    template adds the language and time zone): each row's subscription, its offer and scheduled offer, its
    card and the choices worked out for it, and the site settings the actions and the cancel instructions
    read."""
    return repr(
        (
            [
                (
                    stored_values(row["subscription"]),
                    stored_values(row["subscription"].offer),
                    stored_values(row["subscription"].scheduled_offer),
                    stored_values(row["card"]),
                    row["can_pause"],
                    row["can_change_plan"],
                )
                for row in rows
            ],
            site.self_cancel_enabled,
            site.self_cancel_instructions,
            site.business_email,
        )
    )


@login_required
@processor_attached_required
def index(request):
    customer = customer_get_or_create(user=request.user)
    subscriptions = selectors.subscriptions_for_customer(customer=customer)
    cards = selectors.cards_for_customer(customer=customer)
    cards_by_id = {card.stripe_payment_method_id: card for card in cards}
    default_card = next((card for card in cards if card.is_default), None)
    rows = []
    site = site_settings_for_request(request)
    self_pause = site.self_pause_enabled
    switchable = plans.switchable_offers() if site.plan_changes_enabled else []
    for subscription in subscriptions:
        offer = subscription.offer
        installments_left = None
        if offer and offer.installments:
            installments_left = max(offer.installments - subscription.payments_recorded, 0)
        card = cards_by_id.get(subscription.default_payment_method_id) or default_card
        rows.append(
            {
                "subscription": subscription,
                "card": card,
                "installments_left": installments_left,
                "can_pause": self_pause and plans.subscription_can_self_pause(subscription=subscription),
                "can_change_plan": bool(
                    switchable and plans.subscription_plan_switches(subscription=subscription, offers=switchable)
                ),
            }
        )
    has_live = any(subscription.is_live for subscription in subscriptions)
    return render(
        request,
        "billing/index.html",
        {
            "cards": cards,
            "cards_shown_key": _cards_shown_key(cards, has_live=has_live),
            "rows": rows,
            "rows_shown_key": _subscriptions_shown_key(rows, site),
            "has_live_subscription": has_live,
            "single_card": len(cards) == 1,
            "attempt": uuid.uuid4().hex,
        },
    )


@login_required
@processor_attached_required
def card_new(request):
    """The card form (GET) and the finish of a card update the browser confirmed (POST)."""
    customer = customer_get_or_create(user=request.user)
    error = ""
    offer_hosted_page = False
    if request.method == "POST":
        setup_intent_id = request.POST.get("setup_intent", "").strip()
        if not setup_intent_id.startswith("seti_"):
            error = SETUP_ID_MISSING
        else:
            try:
                card = card_save_from_setup(customer=customer, setup_intent_id=setup_intent_id, by=request.user)
            except BillingError as failure:
                error = failure.message
            except CardDeclined as failure:
                error = failure.user_message
            except PaymentError as failure:
                error = failure.user_message
                offer_hosted_page = True
            else:
                messages.success(request, _("Your card ending in %(last4)s is now your default card.") % card.__dict__)
                return redirect("billing:index")
    return render(
        request,
        "billing/card_new.html",
        {
            "error": error,
            "offer_hosted_page": offer_hosted_page,
            "stripe_js_url": settings.STRIPE_JS_URL,
            "stripe_publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
        },
        status=400 if error else 200,
    )


@login_required
@processor_attached_required
@require_POST
def card_setup(request):
    """Open a SetupIntent for Stripe.js (called by card.js when the customer submits the card form)."""
    # Each SetupIntent (new, or an open one reused) lets its holder try a card against the business's
    # Stripe account, which is what card testers want: counted per account and per client first.
    if not ratelimit.consume(request, action="card_setup"):
        return JsonResponse({"error": str(CARD_SETUP_RATE_LIMITED)}, status=429)
    customer = customer_get_or_create(user=request.user)
    try:
        intent = card_setup_start(customer=customer, reuse_id=request.session.get(SETUP_INTENT_SESSION_KEY, ""))
    except PaymentError as failure:
        return JsonResponse({"error": failure.user_message}, status=503)
    request.session[SETUP_INTENT_SESSION_KEY] = intent.id
    return JsonResponse({"client_secret": intent.client_secret})


@login_required
@processor_attached_required
@require_POST
def card_make_default(request, pk):
    customer = customer_get_or_create(user=request.user)
    card = _customer_object(selectors.card_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: card_set_default(
            customer=customer,
            payment_method_id=card.stripe_payment_method_id,
            by=request.user,
            attempt=_attempt_id(request),
        ),
        _("Your card ending in %(last4)s is now your default card.") % {"last4": card.last4},
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
@require_POST
def card_delete(request, pk):
    customer = customer_get_or_create(user=request.user)
    card = _customer_object(selectors.card_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: card_remove(card=card, by=request.user),
        _("The card ending in %(last4)s was removed.") % {"last4": card.last4},
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
def subscription_cancel_confirm(request, pk):
    """The one page of leaving: why (optional), the creator's retention offer if any, and the cancellation."""
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    offer_text = selectors.retention_offer_text(
        customer=customer, subscription=subscription, site=site_settings_for_request(request)
    )
    form = CancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        reason, comment = form.cleaned_data["reason"], form.cleaned_data["comment"]
        if offer_text and request.POST.get("action") == "offer":
            _attempt(
                request,
                lambda: retention_offer_accept(
                    subscription=subscription, by=request.user, reason=reason, comment=comment
                ),
                _("Thank you for staying. Your offer is applied: %(offer)s") % {"offer": offer_text},
            )
            return redirect("billing:index")
        _attempt(
            request,
            lambda: subscription_cancel_with_reason(
                subscription=subscription,
                by=request.user,
                reason=reason,
                comment=comment,
                attempt=_attempt_id(request),
            ),
            lambda cancelled: (
                _("Your subscription will end on %(date)s. You keep access until then.")
                % {"date": _local_date(cancelled.ends_at)}
            ),
        )
        return redirect("billing:index")
    return render(
        request,
        "billing/subscription_cancel.html",
        {"subscription": subscription, "attempt": uuid.uuid4().hex, "form": form, "offer_text": offer_text},
        status=400 if form.is_bound else 200,
    )


@login_required
@processor_attached_required
@require_POST
def subscription_pay(request, pk):
    """ "Pay now": retry the failed invoice with the card that pays the subscription."""
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: subscription_invoice_pay(subscription=subscription, by=request.user, attempt=_attempt_id(request)),
        lambda paid: (
            _("Thank you: your payment of %(amount)s went through.")
            % {"amount": format_money(subscription.unpaid_amount, subscription.currency)}
        ),
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
@require_POST
def subscription_keep(request, pk):
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: subscription_cancel_undo(subscription=subscription, by=request.user, attempt=_attempt_id(request)),
        _("Your subscription continues. Nothing more to do."),
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
def subscription_pause(request, pk):
    """Choose how many billing periods to pause for (GET), and pause (POST); only when the creator allows it."""
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    form = PauseForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            paused = _attempt(
                request,
                lambda: plans.subscription_pause_by_customer(
                    subscription=subscription,
                    by=request.user,
                    cycles=form.cleaned_data["cycles"],
                    attempt=_attempt_id(request),
                ),
                lambda paused: (
                    _("Your subscription is paused. It resumes on %(date)s; you can resume it earlier here.")
                    % {"date": _local_date(paused.resumes_at)}
                ),
            )
            if paused is not None:
                return redirect("billing:index")
        else:
            messages.error(request, form.errors["cycles"][0])
    choices = [
        {"cycles": n, "resumes_at": plans.pause_resumes_at(subscription=subscription, cycles=n)}
        for n in plans.PAUSE_CYCLES
    ]
    return render(
        request,
        "billing/subscription_pause.html",
        {
            "subscription": subscription,
            "choices": choices,
            "can_pause": site_settings_get().self_pause_enabled
            and plans.subscription_can_self_pause(subscription=subscription),
            "attempt": _attempt_id(request) or uuid.uuid4().hex,
        },
    )


@login_required
@processor_attached_required
@require_POST
def subscription_resume(request, pk):
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: plans.subscription_resume_by_customer(
            subscription=subscription, by=request.user, attempt=_attempt_id(request)
        ),
        _("Your subscription is active again, and payments continue as before."),
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
def subscription_plan_change(request, pk):
    """The plans this subscription may switch to (GET), one's preview (GET ?offer=), and the change (POST)."""
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    allowed = site_settings_get().plan_changes_enabled
    switches = plans.subscription_plan_switches(subscription=subscription) if allowed else []
    if request.method == "POST":
        form = PlanChangeForm(request.POST, offers=switches)
        if not form.is_valid():
            messages.error(request, next(iter(form.errors.values()))[0])
            return redirect("billing:subscription_plan", pk=subscription.pk)
        offer = form.cleaned_data["offer"]
        at_period_end = request.POST.get("when") == "period_end"
        change = plans.subscription_plan_schedule if at_period_end else plans.subscription_plan_change
        changed = _attempt(
            request,
            lambda: change(
                subscription=subscription,
                offer=offer,
                token=form.cleaned_data["token"],
                by=request.user,
                attempt=_attempt_id(request),
            ),
            lambda result: _plan_change_done(result, offer=offer, at_period_end=at_period_end),
        )
        if changed is not None:
            return redirect("billing:index")
        return redirect("billing:subscription_plan", pk=subscription.pk)
    preview = None
    chosen = next((offer for offer in switches if str(offer.pk) == request.GET.get("offer")), None)
    if chosen is not None:
        try:
            preview = plans.subscription_plan_change_preview(subscription=subscription, offer=chosen)
        except BillingError as failure:
            messages.error(request, failure.message)
        except PaymentError as failure:
            messages.error(request, failure.user_message)
    return render(
        request,
        "billing/subscription_plan.html",
        {
            "subscription": subscription,
            "switches": switches,
            "allowed": allowed,
            "preview": preview,
            "downgrade": preview is not None
            and plans.offer_is_downgrade(subscription=subscription, offer=preview.offer),
            "attempt": uuid.uuid4().hex,
        },
    )


def _plan_change_done(subscription: Subscription, *, offer, at_period_end: bool) -> str:
    if at_period_end:
        return _("Your plan changes to %(offer)s on %(date)s. Nothing is charged now.") % {
            "offer": offer.name,
            "date": _local_date(subscription.scheduled_change_at),
        }
    return _("Your plan is now %(offer)s.") % {"offer": offer.name}


@login_required
@processor_attached_required
@require_POST
def subscription_scheduled_change_cancel(request, pk):
    """Keep the current plan: the change scheduled for the end of the period does not happen."""
    customer = customer_get_or_create(user=request.user)
    subscription = _customer_object(selectors.subscription_for_customer, customer=customer, pk=pk)
    _attempt(
        request,
        lambda: plans.subscription_scheduled_change_cancel(
            subscription=subscription, by=request.user, attempt=_attempt_id(request)
        ),
        _("The change of plan is cancelled. Your subscription renews as it is."),
    )
    return redirect("billing:index")


@login_required
@processor_attached_required
@require_POST
def hosted_update(request):
    """Fallback: the processor's own card-update page, when our update was refused."""
    customer = customer_get_or_create(user=request.user)
    try:
        url = get_gateway().billing_portal_url(
            customer_id=stripe_customer_ensure(customer=customer),
            return_url=request.build_absolute_uri(reverse("billing:index")),
        )
    except PaymentError:
        messages.error(
            request,
            _("The card update page is not available right now. Please contact %(email)s.")
            % {"email": site_settings_get().business_email or _("us")},
        )
        return redirect("billing:index")
    return redirect(url)


def _local_date(value):
    from django.utils import formats, timezone

    return formats.date_format(timezone.localtime(value), "DATE_FORMAT") if value else ""


@csrf_exempt
@require_POST
def stripe_webhook(request):
    """Stripe's webhook endpoint: signed by Stripe, so it is the one view without a CSRF token.

    It answers as soon as the event is stored and its application queued (billing.webhooks); only a
    bad signature (400) or a failure to store (500, so Stripe delivers it again) answers otherwise."""
    try:
        webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except SignatureInvalid:
        logger.warning("webhook refused: signature did not verify")
        return HttpResponseBadRequest("signature did not verify")
    return HttpResponse("ok")
