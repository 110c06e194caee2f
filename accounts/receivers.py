from allauth.account.signals import email_changed, user_logged_in
from django.core.signals import setting_changed
from django.dispatch import receiver

from .forms import country_choices_clear
from .services import customer_record_activity, customer_sync_email


@receiver(email_changed, dispatch_uid="accounts_mirror_email")
def mirror_verified_email(sender, request, user, from_email_address, to_email_address, **kwargs):
    customer_sync_email(user=user)


@receiver(user_logged_in, dispatch_uid="accounts_login_activity")
def record_login_activity(sender, request, user, **kwargs):
    customer_record_activity(user_id=user.pk)


@receiver(setting_changed, dispatch_uid="accounts_country_choices")
def clear_country_choices(sender, setting, **kwargs):
    """The contact form's country list follows django-countries' settings (changed by tests)."""
    if setting.startswith("COUNTRIES_"):
        country_choices_clear()
