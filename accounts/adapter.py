from allauth.account.adapter import DefaultAccountAdapter
from django.conf import settings

from .services import customer_get_or_create


class AccountAdapter(DefaultAccountAdapter):
    """The one place where allauth's behaviour is adapted to the portal."""

    def save_user(self, request, user, form, commit=True):
        user = super().save_user(request, user, form, commit=commit)
        if commit:
            customer_get_or_create(user=user)
        return user

    def get_from_email(self):
        return settings.DEFAULT_FROM_EMAIL

    def is_open_for_signup(self, request):
        return settings.ACCOUNT_SIGNUP_OPEN
