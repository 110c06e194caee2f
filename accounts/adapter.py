from types import SimpleNamespace
from urllib.parse import urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from portal.emails import email_branding, email_from_address
from portal.links import absolute_url
from portal.selectors import site_settings_get

from .models import Customer
from .services import customer_get_or_create


class AccountAdapter(DefaultAccountAdapter):
    """The one place where allauth's behaviour is adapted to the portal."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            customer_get_or_create(user=user)
        return user

    def send_mail(self, template_prefix, email, context):
        """allauth's emails name the business (from the site settings), not the Sites framework's placeholder,
        and share the layout of the portal's own emails."""
        site = site_settings_get()
        context = {
            # allauth's own variables (such as password_reset_url in the reset email) win over ours.
            **email_branding(),
            "reset_password_page_url": absolute_url(reverse("account_reset_password")),
            **context,
            "current_site": SimpleNamespace(name=site.business_name, domain=_site_domain()),
        }
        with translation.override(_recipient_language(context.get("user"))):
            return super().send_mail(template_prefix, email, context)

    def render_mail(self, template_prefix, email, context, headers=None):
        """Give allauth's text-only emails an HTML part: their text in the portal's email layout."""
        message = super().render_mail(template_prefix, email, context, headers=headers)
        if isinstance(message, EmailMultiAlternatives) and not message.alternatives:
            message.attach_alternative(
                render_to_string("emails/allauth.html", {**context, "body": message.body}), "text/html"
            )
        return message

    def get_from_email(self):
        return email_from_address()

    def is_open_for_signup(self, request):
        return settings.ACCOUNT_SIGNUP_OPEN


def _recipient_language(user) -> str:
    """The customer's chosen language, else the request's (the browser's, on a signed-out page)."""
    try:
        language = user.customer.language if user is not None and user.pk else ""
    except Customer.DoesNotExist:
        language = ""
    return language or translation.get_language()


def _site_domain() -> str:
    return urlsplit(settings.PORTAL_SITE_URL).netloc
