"""Reads that span the domain apps, for the console: the admin dashboard, the contact list's totals and the
sign-ups nobody verified (which must hold nothing in any app)."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Count, Exists, F, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, TruncMonth
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Customer, User
from billing.models import CancellationFeedback, CancellationReason, Card, Subscription, SubscriptionStatus
from portal.models import AuditEntry
from purchases.models import AccessGrant, Purchase, PurchaseStatus

# --- The admin dashboard ------------------------------------------------------------------------------

DASHBOARD_WINDOW_DAYS = 30
CHART_MONTHS = 12
# What one billing interval's amount comes to per month.
MONTHLY_FACTOR = {"day": Decimal(365) / 12, "week": Decimal(52) / 12, "month": Decimal(1), "year": Decimal(1) / 12}


# The chart's geometry in SVG units: bars of BAR_STEP per month, the tallest PLOT_HEIGHT high.
BAR_STEP, PLOT_TOP, PLOT_HEIGHT = 50, 20, 100


@dataclass(frozen=True)
class MonthBar:
    month: date
    amount: int  # minor units
    x: int
    y: int
    height: int


@dataclass(frozen=True)
class RevenueChart:
    currency: str
    bars: list[MonthBar]
    total: int


@dataclass(frozen=True)
class ChurnMonth:
    month: date
    active_at_start: int
    cancelled: int
    rate: Decimal | None  # per cent of the subscriptions live at the month's start; None when there were none
    x: int
    y: int
    height: int


@dataclass(frozen=True)
class CancellationReasons:
    """Why customers cancelled in the last twelve months, when subscriptions keep a reason."""

    counts: list[tuple[str, int]]  # (reason as shown, how many), most given first
    feedback: list[tuple[datetime, str]]  # the latest words customers left, newest first


@dataclass(frozen=True)
class Dashboard:
    active_subscriptions: int
    mrr: list[tuple[str, int]]  # (currency, minor units a month), largest first
    cancellations: int
    failed_payments: int
    charts: list[RevenueChart]  # one per currency sold in, largest first
    # Why customers cancelled in the window: (reason's label, count), most given first; and how many stayed
    # for the retention offer instead.
    cancellation_reasons: list[tuple[str, int]] = field(default_factory=list)
    retention_offers_taken: int = 0
    mrr_charts: list[RevenueChart] = field(default_factory=list)  # MRR at each month's end, per currency
    churn: list[ChurnMonth] = field(default_factory=list)
    reasons: CancellationReasons | None = None  # the twelve months' reasons and the latest words
    window_days: int = DASHBOARD_WINDOW_DAYS


def _month_starts(today: date, count: int) -> list[date]:
    year, month = today.year, today.month
    starts = []
    for _ in range(count):
        starts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return starts[::-1]


def dashboard_metrics(*, now: datetime | None = None) -> Dashboard:
    """The admin index's figures, in five queries whatever the number of customers."""
    now = now or timezone.now()
    since = now - timedelta(days=DASHBOARD_WINDOW_DAYS)
    active = (
        Subscription.objects.filter(status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING], paused=False)
        .order_by()
        .values("currency", "interval")
        .annotate(count=Count("pk"), total=Sum("amount"))
    )
    mrr: dict[str, Decimal] = defaultdict(Decimal)
    active_count = 0
    for row in active:
        active_count += row["count"]
        mrr[row["currency"]] += row["total"] * MONTHLY_FACTOR.get(row["interval"], Decimal(0))
    cancellations = Subscription.objects.filter(canceled_at__gte=since, canceled_at__lte=now).count()
    failed_payments = AuditEntry.objects.filter(action="payment.failed", created_at__gte=since).count()
    reasons, offers_taken = cancellation_reasons_count(since=since, until=now)

    months = _month_starts(timezone.localdate(now), CHART_MONTHS)
    first = timezone.make_aware(datetime.combine(months[0], time.min))
    revenue = (
        Purchase.objects.filter(purchased_at__gte=first, purchased_at__lte=now)
        .exclude(status=PurchaseStatus.CANCELLED)
        .order_by()
        .annotate(month=TruncMonth("purchased_at"))
        .values("month", "currency")
        .annotate(total=Sum(F("amount") - F("amount_refunded")))
    )
    by_currency: dict[str, dict[date, int]] = defaultdict(dict)
    for row in revenue:
        month = row["month"].date() if isinstance(row["month"], datetime) else row["month"]
        by_currency[row["currency"]][month] = row["total"]
    charts = []
    for currency, totals in by_currency.items():
        tallest = max(totals.values(), default=0) or 1
        bars = []
        for index, month in enumerate(months):
            amount = totals.get(month, 0)
            height = round(max(amount, 0) * PLOT_HEIGHT / tallest)
            bars.append(
                MonthBar(
                    month=month, amount=amount, x=index * BAR_STEP, y=PLOT_TOP + PLOT_HEIGHT - height, height=height
                )
            )
        charts.append(RevenueChart(currency=currency, bars=bars, total=sum(totals.values())))
    charts.sort(key=lambda chart: -chart.total)
    mrr_charts, churn = subscription_history(months=months, now=now)
    return Dashboard(
        active_subscriptions=active_count,
        mrr=sorted(((c, int(amount.to_integral_value())) for c, amount in mrr.items()), key=lambda pair: -pair[1]),
        cancellations=cancellations,
        failed_payments=failed_payments,
        charts=charts,
        cancellation_reasons=reasons,
        retention_offers_taken=offers_taken,
        mrr_charts=mrr_charts,
        churn=churn,
        reasons=cancellation_reasons(since=first, until=now),
    )


def cancellation_reasons_count(*, since: datetime, until: datetime) -> tuple[list[tuple[str, int]], int]:
    """Reasons given for cancellations between the two times, counted (label, count), most given first, and
    how many customers took the retention offer instead; one query."""
    rows = (
        CancellationFeedback.objects.filter(created_at__gte=since, created_at__lte=until)
        .order_by()
        .values("reason", "offer_accepted")
        .annotate(count=Count("pk"))
    )
    labels = dict(CancellationReason.choices)
    counts: dict[str, int] = defaultdict(int)
    taken = 0
    for row in rows:
        if row["offer_accepted"]:
            taken += row["count"]
        else:
            counts[row["reason"]] += row["count"]
    named = [(str(labels.get(reason, gettext("No reason given"))), count) for reason, count in counts.items()]
    return sorted(named, key=lambda pair: (-pair[1], pair[0])), taken


# --- The contacts console (Django admin) --------------------------------------------------------


def active_subscriptions_of(customer_ref) -> QuerySet:
    """Subscriptions that count as active (active or trialing, not paused) of the customer `customer_ref` names."""
    return Subscription.objects.filter(
        customer=customer_ref,
        status__in=[SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING],
        paused=False,
    )


CUSTOMER_TOTALS = ("active_subscriptions", "lifetime_value", "lifetime_currency", "lifetime_currency_count")


def customers_with_totals(
    queryset: QuerySet[Customer], *, names: Iterable[str] = CUSTOMER_TOTALS
) -> QuerySet[Customer]:
    """Annotate each customer with active subscriptions and lifetime value (those of CUSTOMER_TOTALS in `names`).

    They are correlated subqueries, computed for every row the query reads: annotate a page of rows
    (filtered by a sliced subquery of ids), not a queryset that is then sliced, or the database computes
    them for every row an OFFSET skips as well. A page costs one query however long."""
    purchases = Purchase.objects.filter(customer=OuterRef("pk")).exclude(status=PurchaseStatus.CANCELLED).order_by()
    per_customer = purchases.values("customer")
    totals = {
        "active_subscriptions": lambda: Coalesce(
            Subquery(
                active_subscriptions_of(OuterRef("pk"))
                .order_by()
                .values("customer")
                .annotate(n=Count("pk"))
                .values("n")
            ),
            0,
        ),
        "lifetime_value": lambda: Coalesce(
            Subquery(per_customer.annotate(total=Sum(F("amount") - F("amount_refunded"))).values("total")), 0
        ),
        "lifetime_currency": lambda: Subquery(
            per_customer.annotate(currency_min=Min("currency")).values("currency_min")
        ),
        "lifetime_currency_count": lambda: Coalesce(
            Subquery(per_customer.annotate(n=Count("currency", distinct=True)).values("n")), 0
        ),
    }
    return queryset.annotate(**{name: totals[name]() for name in CUSTOMER_TOTALS if name in names})


def customer_lifetime_values(*, customer: Customer) -> list[tuple[str, int]]:
    """The customer's paid amounts less refunds, per currency, largest first."""
    rows = (
        Purchase.objects.filter(customer=customer)
        .exclude(status=PurchaseStatus.CANCELLED)
        .order_by()
        .values("currency")
        .annotate(total=Sum(F("amount") - F("amount_refunded")))
    )
    return sorted(((row["currency"], row["total"]) for row in rows), key=lambda pair: -pair[1])


# --- Sign-ups nobody verified ------------------------------------------------------------------------


def unverified_signups(*, joined_before) -> QuerySet[User]:
    """Accounts made on the sign-up page whose address nobody verified by `joined_before` and that hold nothing.

    Made on the sign-up page: a password and no "customer.created" audit entry (staff, imports and the
    payment processor make accounts without a password, through accounts.services.customer_create or
    billing). Holding nothing: never signed in, not staff, and no processor customer, purchase, receipt,
    subscription, card or access grant. Such an account is only a claim on an address (anyone may make one
    with anyone's address), so it is removed after a while (manage.py remove_unverified_signups)."""
    return (
        User.objects.filter(date_joined__lt=joined_before, is_staff=False, is_superuser=False, last_login=None)
        .exclude(password__startswith=UNUSABLE_PASSWORD_PREFIX)
        .exclude(Exists(EmailAddress.objects.filter(user=OuterRef("pk"), verified=True)))
        .exclude(customer__stripe_customer_id__gt="")
        .exclude(Exists(AuditEntry.objects.filter(customer__user=OuterRef("pk"), action="customer.created")))
        .exclude(Exists(Purchase.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(Subscription.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(Card.objects.filter(customer__user=OuterRef("pk"))))
        .exclude(Exists(AccessGrant.objects.filter(customer__user=OuterRef("pk"))))
        .order_by("pk")
    )


def _bars(months: list[date], amounts: list[int]) -> list[MonthBar]:
    tallest = max(amounts, default=0) or 1
    bars = []
    for index, (month, amount) in enumerate(zip(months, amounts, strict=True)):
        height = round(max(amount, 0) * PLOT_HEIGHT / tallest)
        bars.append(
            MonthBar(month=month, amount=amount, x=index * BAR_STEP, y=PLOT_TOP + PLOT_HEIGHT - height, height=height)
        )
    return bars


# Subscriptions that never started (the first payment failed) count neither for MRR nor for churn.
NEVER_STARTED = (SubscriptionStatus.INCOMPLETE, SubscriptionStatus.INCOMPLETE_EXPIRED)


def subscription_history(*, months: list[date], now: datetime) -> tuple[list[RevenueChart], list[ChurnMonth]]:
    """MRR at the end of each month (now, for this one) per currency, and each month's churn: cancellations
    over the subscriptions live at its start. One query; read from the mirror's own dates (created here,
    cancelled), so it starts when the portal started mirroring."""
    starts = [timezone.make_aware(datetime.combine(month, time.min)) for month in months]
    ends = [*starts[1:], now]
    rows = list(
        Subscription.objects.filter(created_at__lte=now)
        .exclude(status__in=NEVER_STARTED)
        .exclude(canceled_at__lt=starts[0])
        .values_list("currency", "interval", "amount", "created_at", "canceled_at")
    )

    def live_at(moment: datetime, created: datetime, canceled: datetime | None) -> bool:
        return created <= moment and (canceled is None or canceled > moment)

    by_currency: dict[str, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * len(months))
    for currency, interval, amount, created, canceled in rows:
        monthly = amount * MONTHLY_FACTOR.get(interval, Decimal(0))
        for index, end in enumerate(ends):
            if live_at(end, created, canceled):
                by_currency[currency][index] += monthly
    mrr_charts = []
    for currency, totals in by_currency.items():
        amounts = [int(total.to_integral_value()) for total in totals]
        mrr_charts.append(RevenueChart(currency=currency, bars=_bars(months, amounts), total=amounts[-1]))
    mrr_charts.sort(key=lambda chart: -chart.total)

    churn = []
    rates = []
    for start, end in zip(starts, ends, strict=True):
        active = sum(1 for _, _, _, created, canceled in rows if live_at(start, created, canceled))
        cancelled = sum(1 for *_, canceled in rows if canceled is not None and start <= canceled < end)
        rates.append((Decimal(cancelled * 100) / active).quantize(Decimal("0.1")) if active else None)
        churn.append((start.date(), active, cancelled))
    tallest = max((rate for rate in rates if rate is not None), default=Decimal(0)) or Decimal(1)
    months_churn = []
    for index, ((month, active, cancelled), rate) in enumerate(zip(churn, rates, strict=True)):
        height = round((rate or 0) * PLOT_HEIGHT / tallest)
        months_churn.append(
            ChurnMonth(
                month=month,
                active_at_start=active,
                cancelled=cancelled,
                rate=rate,
                x=index * BAR_STEP,
                y=PLOT_TOP + PLOT_HEIGHT - height,
                height=height,
            )
        )
    return mrr_charts, months_churn


CANCELLATION_FEEDBACK_SHOWN = 5


def cancellation_reasons(*, since: datetime, until: datetime) -> CancellationReasons:
    """The reasons customers gave for cancelling in that time, counted, and the latest words they left."""
    counts, _ = cancellation_reasons_count(since=since, until=until)
    feedback = list(
        CancellationFeedback.objects.filter(created_at__gte=since, created_at__lte=until, offer_accepted=False)
        .exclude(comment="")
        .order_by("-created_at")
        .values_list("created_at", "comment")[:CANCELLATION_FEEDBACK_SHOWN]
    )
    return CancellationReasons(counts=counts, feedback=feedback)
