"""The `.eml` file backend of `make run`, and `python -m portal.mail [FILE]` to read what it wrote."""

import email
import os
import sys
import uuid
from datetime import UTC, datetime
from email import policy
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend


class EmlFileBackend(BaseEmailBackend):
    """Write each message as its own .eml file, so a person can open it in a mail program."""

    def __init__(self, *, file_path, **kwargs):
        # fail_silently is left to the base class: Django 6.1 refuses a backend configured in MAILERS that
        # passes it on explicitly ("Unknown options 'fail_silently'"), and no mail would be written.
        super().__init__(**kwargs)
        self.file_path = file_path
        os.makedirs(self.file_path, exist_ok=True)

    def send_messages(self, email_messages):
        for message in email_messages:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            path = os.path.join(self.file_path, f"{stamp}-{uuid.uuid4().hex[:8]}.eml")
            mime = message.message()
            data = mime.as_bytes(policy=mime.policy.clone(linesep="\r\n"))
            # Written under another name and renamed: whoever watches the folder (a mail reader, the deploy
            # test) sees a whole message or none, never one cut short.
            with open(f"{path}.part", "wb") as handle:
                handle.write(data)
            os.replace(f"{path}.part", path)
        return len(email_messages)


def eml_summary(path: Path) -> str:
    """The headers a reader needs and the plain-text body of an .eml file."""
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    headers = [f"{name}: {message[name]}" for name in ("From", "To", "Date", "Subject") if message[name]]
    body = message.get_body(preferencelist=("plain", "html"))
    return "\n".join([f"{path}", *headers, "", body.get_content() if body else ""])


if __name__ == "__main__":
    # Without an argument, the newest message under var/mail (PORTAL_VAR_DIR).
    folder = Path(os.environ.get("PORTAL_VAR_DIR", Path(__file__).resolve().parent.parent / "var")) / "mail"
    paths = [Path(arg) for arg in sys.argv[1:]] or sorted(folder.glob("*.eml"), key=os.path.getmtime)[-1:]
    if not paths:
        sys.exit(f"No mail in {folder}")
    print("\n\n".join(eml_summary(path) for path in paths))
