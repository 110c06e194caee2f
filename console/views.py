from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST
from django.views.static import serve

from accounts.services import customer_get_or_create
from accounts.services import view_as_end as view_as_end_service
from portal import health


@login_required
def home(request):
    customer = customer_get_or_create(user=request.user)
    return render(request, "portal/home.html", {"customer": customer})


@require_GET
@never_cache
def healthz(request):
    """For load balancers and monitors: 503 when this node cannot serve pages, 200 "degraded" when the
    cache or the task worker fails (portal.health.health_report says why)."""
    body, status = health.health_report()
    return JsonResponse(body, status=status)


def media(request, path):
    """Serve an uploaded avatar or logo (only when SERVE_MEDIA is on; the URL pattern limits the paths)."""
    return serve(request, path, document_root=settings.MEDIA_ROOT)


@require_POST
def view_as_end(request):
    """Stop viewing the portal as a customer and go back to their contact page in the admin."""
    staff = getattr(request, "real_user", request.user)
    if not staff.is_authenticated:
        return redirect("account_login")
    customer = view_as_end_service(session=request.session, staff=staff)
    if customer is None:
        return redirect("admin:index")
    messages.info(request, _("You stopped viewing the portal as %(name)s.") % {"name": customer})
    return redirect("admin:accounts_customer_change", customer.pk)
