from allauth.account.signals import email_changed, user_logged_in
from django.dispatch import receiver

from .services import customer_record_activity, customer_sync_email


@receiver(email_changed, dispatch_uid="accounts_mirror_email")
def mirror_verified_email(sender, request, user, from_email_address, to_email_address, **kwargs):
    customer_sync_email(user=user)


@receiver(user_logged_in, dispatch_uid="accounts_login_activity")
def record_login_activity(sender, request, user, **kwargs):
    customer_record_activity(user_id=user.pk)
