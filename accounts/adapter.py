from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

from portal.selectors import site_settings_get

from .services import customer_get_or_create


class AccountAdapter(DefaultAccountAdapter):
    """The one place where allauth's behaviour is adapted to the portal."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            customer_get_or_create(user=user)
        return user

    def send_mail(self, template_prefix, email, context):
        """allauth's emails name the business (from the site settings), not the Sites framework's placeholder."""
        site = site_settings_get()
        context = {**context, "current_site": SimpleNamespace(name=site.business_name, domain=_site_domain())}
        return super().send_mail(template_prefix, email, context)

    def get_from_email(self):
        return settings.DEFAULT_FROM_EMAIL

    def is_open_for_signup(self, request):
        return settings.ACCOUNT_SIGNUP_OPEN


def _site_domain() -> str:
    return urlsplit(settings.PORTAL_SITE_URL).netloc
