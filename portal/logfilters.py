"""Logging filters for the portal's handlers (settings.LOGGING)."""

import logging
import re

# Paths whose last part is a signed token that acts as a credential: a hub sign-in link and a
# one-click unsubscribe link. Our own pages never put them in a logged path (the hub link moves its
# token into the session at once), but a request someone else crafts can: a POST to the link
# answers 405, and Django logs every 4xx with its path.
TOKEN_PATH = re.compile(r"(/(?:hub|email/unsubscribe)/)(?!new-link/|continue/)[^/\s?]+")
REDACTED = r"\1[token]"


class RedactLinkTokens(logging.Filter):
    """Replace link tokens in a record's message with [token]; the record is kept."""

    def filter(self, record):
        message = record.getMessage()
        redacted = TOKEN_PATH.sub(REDACTED, message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True
