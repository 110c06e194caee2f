from types import SimpleNamespace
from urllib.parse import quote, urlsplit

from allauth.account.adapter import DefaultAccountAdapter
from allauth.usersessions.adapter import DefaultUserSessionsAdapter
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation

from portal.links import absolute_url
from portal.outbox import email_branding, email_from_address
from portal.selectors import site_settings_get

from .models import Customer
from .services import SIGNED_UP_SESSION_KEY, customer_get_or_create, hub_link_nonce_rotate


class AccountAdapter(DefaultAccountAdapter):
    """The one place where allauth's behaviour is adapted to the portal."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            customer_get_or_create(user=user)
            # This browser chose the password: proving the address here later keeps it (address_first_proven).
            request.session[SIGNED_UP_SESSION_KEY] = user.pk
        return user

    def login(self, request, user):
        # Proving an address may have just removed the password (accounts.services.address_first_proven)
        # through another copy of this user: the session must carry the current password's hash, or the
        # next request would find it stale and sign the owner out again.
        if user.pk is not None:
            user.refresh_from_db(fields=["password"])
        return super().login(request, user)

    # Links in allauth's emails lead to PORTAL_SITE_URL, never to whatever Host the request named: a
    # request with a forged Host header would otherwise mail a victim a working link to another site.

    def get_email_confirmation_url(self, request, emailconfirmation):
        return absolute_url(reverse("account_confirm_email", args=[emailconfirmation.key]))

    def get_reset_password_from_key_url(self, key):
        path = reverse("account_reset_password_from_key", kwargs={"uidb36": "UID", "key": "KEY"})
        return absolute_url(path.replace("UID-KEY", quote(key)))

    def send_account_already_exists_mail(self, email):
        context = {
            "signup_url": absolute_url(reverse("account_signup")),
            "password_reset_url": absolute_url(reverse("account_reset_password")),
        }
        self.send_mail("account/email/account_already_exists", email, context)

    def send_mail(self, template_prefix, email, context):
        """allauth's emails name the business (from the site settings), not the Sites framework's placeholder,
        and share the layout of the portal's own emails."""
        site = site_settings_get()
        if "signup_url" in context:  # the unknown-account email's link (allauth builds it from the request)
            context = {**context, "signup_url": absolute_url(reverse("account_signup"))}
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


class UserSessionsAdapter(DefaultUserSessionsAdapter):
    """allauth's user sessions; signing sessions out also ends the hub links already sent."""

    def end_sessions(self, sessions):
        sessions = list(sessions)
        super().end_sessions(sessions)
        for customer in Customer.objects.filter(user__in={session.user_id for session in sessions}):
            hub_link_nonce_rotate(customer=customer)


def _recipient_language(user) -> str:
    """The customer's chosen language, else the request's (the browser's, on a signed-out page)."""
    try:
        language = user.customer.language if user is not None and user.pk else ""
    except Customer.DoesNotExist:
        language = ""
    return language or translation.get_language()


def _site_domain() -> str:
    return urlsplit(settings.PORTAL_SITE_URL).netloc
