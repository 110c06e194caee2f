from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from accounts.urls import urlpatterns as accounts_patterns
from billing import views as billing_views

from . import data_rights_views, views

portal_patterns = [path("", views.home, name="home"), path("view-as/end/", views.view_as_end, name="view_as_end")]
# A customer's data rights act across the apps, so their views live up here, named among the account's pages.
data_rights_patterns = [
    path("settings/data/", data_rights_views.data, name="data"),
    path("settings/data/export/", data_rights_views.data_export, name="data_export"),
    path("settings/data/delete/", data_rights_views.account_delete, name="account_delete"),
]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}img/favicon.svg", permanent=True)),
    path("", include((accounts_patterns + data_rights_patterns, "accounts"))),
    path("purchases/", include("purchases.urls")),
    path("billing/", include("billing.urls")),
    path("stripe/webhook/", billing_views.stripe_webhook, name="stripe_webhook"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

if settings.PROMETHEUS_METRICS:  # portal/metrics.py; off by default
    from portal import metrics

    urlpatterns.append(path("metrics", metrics.metrics, name="metrics"))
if settings.BENCH_ANCHORS:  # bench/run.py measures every page against these two
    urlpatterns.append(path("bench/", include("portal.bench_views")))
if settings.SERVE_MEDIA:
    urlpatterns.append(
        re_path(
            r"^media/(?P<path>(?:avatars/[0-9a-f]{32}\.webp|site/[\w.-]+\.(?:png|jpe?g|webp|gif)))$",
            views.media,
        )
    )
