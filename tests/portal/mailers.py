"""A mail backend for tests that need sending to take a while (two workers overlapping)."""

import time

from django.core.mail.backends.locmem import EmailBackend


class SlowLocmemBackend(EmailBackend):
    """Django's in-memory backend, taking half a second per batch like a slow SMTP server."""

    def send_messages(self, messages):
        time.sleep(0.5)
        return super().send_messages(messages)


class FailingBackend(EmailBackend):
    """A mail server that refuses every message."""

    def send_messages(self, messages):
        raise ConnectionRefusedError("the mail server refused the connection")
