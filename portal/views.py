from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.static import serve

from accounts.services import customer_get_or_create


@login_required
def home(request):
    customer = customer_get_or_create(user=request.user)
    return render(request, "portal/home.html", {"customer": customer})


@require_GET
@never_cache
def healthz(request):
    """Liveness and database check for load balancers and monitors."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception:  # noqa: BLE001 - any database failure means "not healthy"
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok", "database": "ok"})


def media(request, path):
    """Serve an uploaded avatar or logo (only when SERVE_MEDIA is on; the URL pattern limits the paths)."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)
