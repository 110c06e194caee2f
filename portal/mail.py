import os
import uuid
from datetime import UTC, datetime

from django.core.mail.backends.base import BaseEmailBackend


class EmlFileBackend(BaseEmailBackend):
    """Write each message as its own .eml file, so a person can open it in a mail program."""

    def __init__(self, *, file_path, fail_silently=False, **kwargs):
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.file_path = file_path
        os.makedirs(self.file_path, exist_ok=True)

    def send_messages(self, email_messages):
        for message in email_messages:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = os.path.join(self.file_path, f"{stamp}-{uuid.uuid4().hex[:8]}.eml")
            with open(path, "wb") as handle:
                handle.write(message.message().as_bytes(linesep="\r\n"))
        return len(email_messages)
