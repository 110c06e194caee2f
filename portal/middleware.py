from django.utils.cache import patch_cache_control


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
