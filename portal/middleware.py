from django.conf import settings
from django.shortcuts import render
from django.utils.cache import patch_cache_control

from . import observability

NUL_ENCODED = "%00"


class RequestIdMiddleware:
    """Give each request an id (the load balancer's `X-Request-ID` when sane, else a new one): on its
    log records, on its Sentry events, in the response's `X-Request-ID`, and in the logs of the tasks
    it enqueues (portal.observability).

    First in the chain, so every response carries it. The id stays set until Django's request_finished
    (portal.receivers), because Django logs a 4xx or 5xx after the middleware chain has returned."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request_id = observability.request_id_from_header(request.headers.get(observability.REQUEST_ID_HEADER))
        observability.request_id_set(request_id)
        request.request_id = request_id
        if settings.SENTRY_DSN:
            import sentry_sdk

            sentry_sdk.set_tag("request_id", request_id)
        response = self.get_response(request)
        response[observability.REQUEST_ID_HEADER] = request_id
        return response


class RefuseNulMiddleware:
    """Answer 400 to a NUL character in the path or the query string.

    No address or search of ours has a use for one, and PostgreSQL refuses it in a text parameter,
    so it would otherwise surface as a 500 from whichever query first used it. Form bodies are
    guarded field by field (Django's CharField refuses NUL with a field error).

    The 400 page is answered here rather than raised: a raised BadRequest is logged with its whole
    traceback, and anyone can send these. Django's request logger still writes its one line.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or NUL_ENCODED in query or "\x00" in query:
            return render(request, "400.html", status=400)
        return self.get_response(request)


class SessionCookieCheckMiddleware:
    """Ignore a session cookie that Django could not have made (its keys are letters and digits).

    Django's session store looks any key of eight characters or more up in the database, and PostgreSQL
    refuses a NUL in a text parameter: a crafted cookie would be a 500 instead of an anonymous visit."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.COOKIES.get(settings.SESSION_COOKIE_NAME)
        if key is not None and not (key.isascii() and key.isalnum()):
            del request.COOKIES[settings.SESSION_COOKIE_NAME]
        return self.get_response(request)


class PrivateCacheMiddleware:
    """Keep pages with personal data out of shared and browser caches."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if (user is not None and user.is_authenticated) or request.path.startswith("/accounts/"):
            if not request.path.startswith("/static/"):
                patch_cache_control(response, private=True, no_store=True)
        return response
