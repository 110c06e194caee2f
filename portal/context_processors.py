from django.utils.functional import SimpleLazyObject

from .selectors import site_settings_for_request


def portal(request):
    """The site settings (read once, when a template first uses them) and the signed-in customer."""
    user = getattr(request, "user", None)
    customer = getattr(user, "customer", None) if user is not None and user.is_authenticated else None
    return {
        "site_settings": SimpleLazyObject(lambda: site_settings_for_request(request)),
        "current_customer": customer,
        "viewing_as": getattr(request, "viewing_as", None),  # a staff member seeing the portal as this customer
    }
