from django.dispatch import receiver

from portal.signals import email_queued

from .emails import email_enqueue


@receiver(email_queued, dispatch_uid="console_email_queued")
def email_queued_send(sender, email_id: int, **kwargs) -> None:
    """An app below queued an email and its transaction committed: the sending task takes it from here."""
    email_enqueue(email_id)
