import functools
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from billing.models import Subscription, SubscriptionStatus
from purchases.models import Purchase, PurchaseStatus

from .models import AuditEntry, SiteSettings

# Long enough that pages rarely read the row, short enough to end any copy a race left behind (a page
# caching the row it read just before a save committed).
SITE_SETTINGS_CACHE_SECONDS = 300


@functools.cache
def site_settings_cache_key() -> str:
    """The shared cache's key for the settings row: it names the model's columns, so a copy cached by code
    with other columns (during a deployment) is never read as this code's."""
    columns = ",".join(field.attname for field in SiteSettings._meta.concrete_fields)
    return f"portal:site-settings:{hashlib.sha256(columns.encode()).hexdigest()[:12]}"


def site_settings_get() -> SiteSettings:
    """Return the one SiteSettings row, creating it with defaults the first time.

    The row is kept in the shared cache, which every node and worker reads, and dropped from it whenever
    it is saved (portal.receivers): with Redis a page reads no settings from the database."""
    key = site_settings_cache_key()
    site = cache.get(key)
    if site is None:
        site = SiteSettings.objects.get_or_create(pk=1, defaults={"business_name": settings.PORTAL_BUSINESS_NAME})[0]
        cache.set(key, site, timeout=SITE_SETTINGS_CACHE_SECONDS)
    return site


def site_settings_for_request(request) -> SiteSettings:
    """The settings row, read once per request however many templates and views ask for it."""
    cached = getattr(request, "_portal_site_settings", None)
    if cached is None:
        cached = request._portal_site_settings = site_settings_get()
    return cached


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
    mrr_charts: list[RevenueChart] = field(default_factory=list)  # MRR at each month's end, per currency
    churn: list[ChurnMonth] = field(default_factory=list)
    # None: subscriptions keep no cancellation reason (yet); the dashboard says where they will appear.
    reasons: CancellationReasons | None = None
    window_days: int = DASHBOARD_WINDOW_DAYS


def _month_starts(today: date, count: int) -> list[date]:
    year, month = today.year, today.month
    starts = []
    for _ in range(count):
        starts.append(date(year, month, 1))
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return starts[::-1]


def dashboard_metrics(*, now: datetime | None = None) -> Dashboard:
    """The admin index's figures, in four queries whatever the number of customers."""
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
        mrr_charts=mrr_charts,
        churn=churn,
        reasons=cancellation_reasons(since=first),
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


def cancellation_reasons(*, since: datetime) -> CancellationReasons | None:
    """Counts of the reasons given for cancelling since then, and the latest feedback, or None while
    Subscription keeps no `cancel_reason` (the hook: the figures appear once the field exists)."""
    names = {model_field.name for model_field in Subscription._meta.get_fields()}
    if "cancel_reason" not in names:
        return None
    reason_field = Subscription._meta.get_field("cancel_reason")
    labels = dict(reason_field.choices or [])
    cancelled = Subscription.objects.filter(canceled_at__gte=since)
    counts = [
        (str(labels.get(row["cancel_reason"], row["cancel_reason"])), row["count"])
        for row in cancelled.exclude(cancel_reason="")
        .order_by()
        .values("cancel_reason")
        .annotate(count=Count("pk"))
        .order_by("-count", "cancel_reason")
    ]
    feedback: list[tuple[datetime, str]] = []
    if "cancel_feedback" in names:
        feedback = list(
            cancelled.exclude(cancel_feedback="")
            .order_by("-canceled_at")
            .values_list("canceled_at", "cancel_feedback")[:CANCELLATION_FEEDBACK_SHOWN]
        )
    return CancellationReasons(counts=counts, feedback=feedback)
