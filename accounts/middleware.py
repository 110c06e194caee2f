import zoneinfo

from django.conf import settings
from django.utils import timezone, translation

from .models import Customer
from .services import customer_record_activity

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
