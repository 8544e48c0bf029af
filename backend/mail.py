"""An e-mail backend for production without a mail server.

Django's console backend prints every message whole: recipients' names and addresses, bodies
with booking details. In a container that is the log stream, kept and shipped elsewhere. With
DJANGO_DEBUG=false and no EMAIL_URL this backend is used instead: one log line per message with
the number of recipients and the subject, nothing that identifies a person. `check --deploy`
warns (backend.W002) so the missing mail server is noticed.
"""

import logging
from collections.abc import Sequence

from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend

logger = logging.getLogger(__name__)


class RedactedConsoleBackend(BaseEmailBackend):
    def send_messages(self, email_messages: Sequence[EmailMessage]) -> int:
        for message in email_messages:
            logger.warning(
                "e-mail not delivered (no EMAIL_URL configured): %d recipient(s), subject %r",
                len(message.recipients()),
                message.subject,
            )
        return len(email_messages)
