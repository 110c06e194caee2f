"""One deadline for every payment-processor call a request makes (see billing.gateways.base)."""

from django.conf import settings

from .gateways.base import payment_deadline


def payment_deadline_middleware(get_response):
    """Give each request STRIPE_REQUEST_DEADLINE_SECONDS for all its processor calls, retries included."""

    def middleware(request):
        with payment_deadline(settings.STRIPE_REQUEST_DEADLINE_SECONDS):
            return get_response(request)

    return middleware
