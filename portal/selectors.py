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
from django.utils.translation import gettext

from billing.models import CancellationFeedback, CancellationReason, Subscription, SubscriptionStatus
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
    return Dashboard(
        active_subscriptions=active_count,
        mrr=sorted(((c, int(amount.to_integral_value())) for c, amount in mrr.items()), key=lambda pair: -pair[1]),
        cancellations=cancellations,
        failed_payments=failed_payments,
        charts=charts,
        cancellation_reasons=reasons,
        retention_offers_taken=offers_taken,
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
