"""Reminders before sessions start (every minute; each reminder is claimed once in the
database, so overlapping runs from two beats or workers send it once)."""

from backend.services.reminders import reminders_send_due
from backend.tasks.periodic import periodic_job


@periodic_job(name="reminders.send", every_seconds=60)
def send_reminders() -> int:
    return reminders_send_due()
