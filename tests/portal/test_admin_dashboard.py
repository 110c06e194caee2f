"""The admin index: active subscriptions, monthly recurring revenue, cancellations, failed payments, and a chart."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from console.selectors import dashboard_metrics
from portal.models import AuditEntry
from tests.factories import CustomerFactory, OfferFactory, PurchaseFactory, SubscriptionFactory, UserFactory

pytestmark = pytest.mark.django_db

# The dashboard counts back from today, so these tests run on a fixed clock: a day after the 15th, on
# which months_ago() dates its sales (a sale dated later this month would be in the future).
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fixed_clock(time_machine):
    time_machine.move_to(NOW, tick=False)


def months_ago(n: int):
    """A moment in the middle of the month n months before this one."""
    today = timezone.localdate()
    year, month = today.year, today.month - n
    while month < 1:
        year, month = year - 1, month + 12
    return timezone.make_aware(timezone.datetime(year, month, 15, 12))


@pytest.fixture
def business(db):
    """Subscriptions of every kind, failed payments and a year of sales."""
    now = timezone.now()
    SubscriptionFactory(amount=1200, interval="month")
    SubscriptionFactory(amount=12000, interval="year")  # 1,000 a month
    SubscriptionFactory(amount=500, interval="week")  # 500 × 52 / 12 = 2,166.67 a month
    SubscriptionFactory(amount=1000, currency="usd", status="trialing")
    SubscriptionFactory(amount=999, paused=True)  # paused: not active
    SubscriptionFactory(amount=777, status="past_due")  # not active
    SubscriptionFactory(status="canceled", canceled_at=now - timedelta(days=10))
    SubscriptionFactory(status="canceled", canceled_at=now - timedelta(days=45))
    customer = CustomerFactory()
    for days in (2, 29, 31):
        entry = AuditEntry.objects.create(action="payment.failed", actor_kind="stripe", customer=customer)
        AuditEntry.objects.filter(pk=entry.pk).update(created_at=now - timedelta(days=days))
    offer = OfferFactory(price_amount=4900)
    PurchaseFactory(customer=customer, offer=offer, purchased_at=months_ago(0))
    PurchaseFactory(customer=customer, offer=offer, amount=2000, amount_refunded=500, purchased_at=months_ago(3))
    PurchaseFactory(customer=customer, offer=offer, purchased_at=months_ago(13))  # older than the chart
    PurchaseFactory(customer=customer, offer=offer, status="cancelled", purchased_at=months_ago(1))
    return customer


def test_the_figures(business):
    dashboard = dashboard_metrics()

    assert dashboard.active_subscriptions == 4
    assert dashboard.mrr == [("gbp", 1200 + 1000 + 2167), ("usd", 1000)]
    assert dashboard.cancellations == 1
    assert dashboard.failed_payments == 2


def test_the_chart_has_twelve_months_of_revenue_less_refunds(business):
    [chart] = dashboard_metrics().charts

    assert chart.currency == "gbp"
    assert len(chart.bars) == 12
    assert chart.bars[0].month == date(2025, 4, 1) and chart.bars[-1].month == date(2026, 3, 1)
    assert [bar.amount for bar in chart.bars] == [0] * 8 + [1500, 0, 0, 4900]
    assert chart.bars[-1].height == 100 and chart.bars[8].height == 31
    assert chart.bars[-1].y + chart.bars[-1].height == chart.bars[0].y + chart.bars[0].height  # one baseline


def test_on_the_first_of_a_month_its_sales_so_far_are_the_last_bar(time_machine):
    time_machine.move_to(datetime(2026, 4, 1, 9, 0, tzinfo=UTC), tick=False)
    PurchaseFactory(offer=OfferFactory(price_amount=4900), purchased_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC))
    PurchaseFactory(offer=OfferFactory(price_amount=1500), purchased_at=datetime(2026, 3, 31, 23, 0, tzinfo=UTC))

    [chart] = dashboard_metrics().charts

    assert chart.bars[-1].month == date(2026, 4, 1)
    assert [bar.amount for bar in chart.bars[-2:]] == [1500, 4900]


def test_with_nothing_sold_there_is_no_chart_and_every_figure_is_zero(db):
    dashboard = dashboard_metrics()

    assert (dashboard.active_subscriptions, dashboard.mrr, dashboard.cancellations, dashboard.failed_payments) == (
        0,
        [],
        0,
        0,
    )
    assert dashboard.charts == []


def test_the_index_shows_the_figures_and_a_chart_without_inline_script_or_style(creator_client, business):
    page = creator_client.get("/admin/").content.decode()

    dashboard = page[page.index('<section class="portal-dashboard"') : page.index("</section>")]
    assert "active subscriptions" in dashboard and ">4<" in dashboard
    assert "£43.67<br>$10.00" in dashboard
    assert "failed payments in the last 30 days" in dashboard
    # a year of revenue, and of MRR in each of the two currencies subscribed in
    assert len(re.findall(r'<rect class="portal-chart__bar"', dashboard)) == 12 * 3
    assert "style=" not in dashboard and "<script" not in dashboard
    assert "/static/css/admin.css" in page
    assert "Customer Portal · console" in page  # the business's name heads the admin


def test_support_sees_the_dashboard(support_client, business):
    assert support_client.get("/admin/").context["dashboard"].active_subscriptions == 4


def test_staff_who_cannot_see_subscriptions_get_no_dashboard(client, business):
    staff = UserFactory(is_staff=True, password=None)
    staff.user_permissions.add(Permission.objects.get(codename="view_customer"))
    client.force_login(staff, backend="accounts.backends.PortalAuthenticationBackend")

    response = client.get("/admin/")

    assert response.status_code == 200
    assert "dashboard" not in response.context
    assert "portal-dashboard" not in response.content.decode()


def test_the_index_costs_the_same_queries_however_much_was_sold(creator_client, django_assert_max_num_queries):
    creator_client.get("/admin/")
    customer = CustomerFactory()
    SubscriptionFactory.create_batch(20, customer=customer)
    for n in range(12):
        PurchaseFactory(customer=customer, purchased_at=months_ago(n))

    with django_assert_max_num_queries(13):
        response = creator_client.get("/admin/")

    assert response.context["dashboard"].active_subscriptions == 20


# --- MRR and churn over twelve months, cancellation reasons -------------------------------------------


def test_mrr_at_each_months_end_follows_subscriptions_starting_and_ending(db):
    started = SubscriptionFactory(amount=1200, interval="month")
    yearly = SubscriptionFactory(amount=12000, interval="year")
    ended = SubscriptionFactory(amount=3000, interval="month", status="canceled")
    from billing.models import Subscription

    Subscription.objects.filter(pk=started.pk).update(created_at=months_ago(5))
    Subscription.objects.filter(pk=yearly.pk).update(created_at=months_ago(2))
    Subscription.objects.filter(pk=ended.pk).update(created_at=months_ago(8), canceled_at=months_ago(4))

    [chart] = dashboard_metrics().mrr_charts

    by_month = [bar.amount for bar in chart.bars]
    assert len(by_month) == 12
    assert by_month[11 - 8] == 3000  # only the one that ended later
    assert by_month[11 - 5] == 3000 + 1200
    assert by_month[11 - 4] == 1200  # the 3,000 one ended in that month
    assert by_month[11 - 2] == by_month[11] == 1200 + 1000  # and the yearly one at 1,000 a month


def test_churn_is_the_months_cancellations_over_those_live_at_its_start(db):
    from billing.models import Subscription

    subscriptions = SubscriptionFactory.create_batch(4, amount=1000)
    Subscription.objects.filter(pk__in=[s.pk for s in subscriptions]).update(created_at=months_ago(6))
    Subscription.objects.filter(pk=subscriptions[0].pk).update(status="canceled", canceled_at=months_ago(1))

    churn = dashboard_metrics().churn

    last_month = churn[10]
    assert (last_month.active_at_start, last_month.cancelled, last_month.rate) == (4, 1, Decimal("25.0"))
    assert churn[11].active_at_start == 3 and churn[11].rate == Decimal("0.0")
    assert churn[0].rate is None  # nothing was live a year ago


def test_the_index_shows_mrr_and_churn_as_svg_backed_by_tables(creator_client, business):
    html = creator_client.get("/admin/").content.decode()

    assert "Monthly recurring revenue at each month" in html and "Churn by month" in html
    assert html.count('<svg class="portal-chart__svg"') >= 3
    assert '<th scope="col">Live at the start</th>' in html
    assert "<script" not in html.split('class="portal-dashboard"')[1].split("</section>")[0]


def test_the_twelve_months_reasons_count_each_reason_and_show_the_latest_words(creator_client, business):
    from billing.models import CancellationFeedback

    subscription = SubscriptionFactory()
    for reason, comment in (("too_expensive", "Money is tight this year."), ("too_expensive", ""), ("unused", "")):
        CancellationFeedback.objects.create(
            customer=subscription.customer, subscription=subscription, reason=reason, comment=comment
        )
    CancellationFeedback.objects.create(
        customer=subscription.customer, subscription=subscription, reason="other", offer_accepted=True
    )

    reasons = dashboard_metrics().reasons
    html = creator_client.get("/admin/").content.decode()

    assert reasons.counts == [("It is too expensive", 2), ("I do not use it enough", 1)]
    assert [words for _, words in reasons.feedback] == ["Money is tight this year."]
    section = html.split('id="reasons-heading"')[1].split("</section>")[0]
    assert "<td>2</td>" in section and "Money is tight this year." in section
