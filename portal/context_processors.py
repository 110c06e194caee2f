from django.conf import settings


def portal(request):
    user = getattr(request, "user", None)
    customer = getattr(user, "customer", None) if user is not None and user.is_authenticated else None
    return {"business_name": settings.PORTAL_BUSINESS_NAME, "current_customer": customer}
