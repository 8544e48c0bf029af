"""Mail tasks (queue `mail`)."""

from backend.services import notifications
from backend.tasks.base import outbox_task

outbox_task(notifications.SEND_EMAIL_TASK)(notifications.email_send)
