from allauth.account.models import EmailAddress
from allauth.account.signals import email_changed, email_confirmed, user_logged_in
from django.contrib import messages
from django.core.signals import setting_changed
from django.dispatch import receiver

from .forms import country_choices_clear
from .services import (
    ADDRESS_PROVEN_SET_PASSWORD,
    address_first_proven,
    customer_record_activity,
    customer_sync_email,
)


@receiver(email_changed, dispatch_uid="accounts_mirror_email")
def mirror_verified_email(sender, request, user, from_email_address, to_email_address, **kwargs):
    customer_sync_email(user=user)


@receiver(email_confirmed, dispatch_uid="accounts_first_address_proven")
def secure_account_on_first_proven_address(sender, request, email_address, **kwargs):
    """allauth verified an address (a verification link, or a sign-in code); the first on an account
    decides who owns it."""
    others = EmailAddress.objects.filter(user_id=email_address.user_id, verified=True).exclude(pk=email_address.pk)
    if others.exists():
        return
    if address_first_proven(request=request, user=email_address.user) and request is not None:
        messages.info(request, ADDRESS_PROVEN_SET_PASSWORD, fail_silently=True)


@receiver(user_logged_in, dispatch_uid="accounts_login_activity")
def record_login_activity(sender, request, user, **kwargs):
    customer_record_activity(user_id=user.pk)


@receiver(setting_changed, dispatch_uid="accounts_country_choices")
def clear_country_choices(sender, setting, **kwargs):
    """The contact form's country list follows django-countries' settings (changed by tests)."""
    if setting.startswith("COUNTRIES_"):
        country_choices_clear()
