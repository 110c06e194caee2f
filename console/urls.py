from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from billing import views as billing_views

from . import views

portal_patterns = [path("", views.home, name="home"), path("view-as/end/", views.view_as_end, name="view_as_end")]

urlpatterns = [
    path("", include((portal_patterns, "portal"))),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}img/favicon.svg", permanent=True)),
    path("", include("accounts.urls")),
    path("purchases/", include("purchases.urls")),
    path("billing/", include("billing.urls")),
    path("stripe/webhook/", billing_views.stripe_webhook, name="stripe_webhook"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
]

if settings.PROMETHEUS_METRICS:  # portal/metrics.py; off by default
    from . import metrics

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
