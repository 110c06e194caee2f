import zoneinfo

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseForbidden
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext_lazy as _

from .models import Customer
from .services import VIEW_AS_SESSION_KEY, customer_record_activity

ACTIVITY_SESSION_KEY = "portal_activity_at"


def _customer(request) -> Customer | None:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.customer
    except Customer.DoesNotExist:
        return None


class CustomerTimezoneMiddleware:
    """Show every date in the signed-in customer's own time zone."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        customer = _customer(request)
        if customer is not None:
            try:
                timezone.activate(zoneinfo.ZoneInfo(customer.time_zone))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


def customer_language_activate(request, customer: Customer) -> None:
    """Switch the request to the customer's chosen language; without a choice, LocaleMiddleware's stands."""
    if customer.language and translation.check_for_language(customer.language):
        translation.activate(customer.language)
        request.LANGUAGE_CODE = customer.language


class CustomerLanguageMiddleware:
    """Show the signed-in customer's pages in their language (LocaleMiddleware sets Content-Language from it)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        customer = _customer(request)
        if customer is not None:
            customer_language_activate(request, customer)
        return self.get_response(request)


class ActivityMiddleware:
    """Record portal page views as activity, writing at most once per interval per session."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.method == "GET"
            and response.status_code == 200
            and _customer(request) is not None
            and getattr(request, "viewing_as", None) is None  # staff looking, not the customer
            and not request.path.startswith(("/static/", "/media/", "/admin/", "/healthz"))
        ):
            now = timezone.now().timestamp()
            last = request.session.get(ACTIVITY_SESSION_KEY, 0)
            if now - last >= settings.ACTIVITY_INTERVAL_SECONDS:
                customer_record_activity(user_id=request.user.pk)
                request.session[ACTIVITY_SESSION_KEY] = now
        return response


ADMIN_PATH = "/admin/"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
VIEW_AS_REFUSED = _("You are viewing the portal as a customer: nothing can be changed. Stop viewing to act again.")


class ViewAsMiddleware:
    """Show a staff member the portal exactly as one customer sees it, read-only.

    While the session names a customer (accounts.services.view_as_start), portal pages run as that
    customer's user; the admin stays the staff member's. Every request but a GET is refused, except
    the one that ends the viewing."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.viewing_as = None
        customer_id = request.session.get(VIEW_AS_SESSION_KEY)
        if customer_id is None:
            return self.get_response(request)
        staff = request.user
        customer = None
        if staff.is_authenticated and staff.is_staff and staff.has_perm("accounts.view_as_customer"):
            customer = (
                Customer.objects.select_related("user")
                .filter(pk=customer_id, user__is_active=True, user__is_staff=False)
                .first()
            )
        if customer is None:  # the staff member lost the right, or the customer is gone: stop quietly
            request.session.pop(VIEW_AS_SESSION_KEY, None)
            return self.get_response(request)
        request.viewing_as, request.real_user = customer, staff
        if not request.path.startswith(ADMIN_PATH):
            customer.user.customer = customer
            request.user = customer.user
        if request.method not in SAFE_METHODS and request.path != reverse("portal:view_as_end"):
            return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request):
        if getattr(request, "htmx", False):
            # htmx swaps nothing on a 403: reload the page, which shows the message.
            messages.error(request, VIEW_AS_REFUSED)
            response = HttpResponseForbidden(VIEW_AS_REFUSED)
            response["HX-Refresh"] = "true"
        else:
            response = render(request, "portal/view_as_refused.html", {"message": VIEW_AS_REFUSED}, status=403)
        patch_cache_control(response, private=True, no_store=True)
        return response
