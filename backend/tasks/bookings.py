"""Booking tasks: expiry of unpaid holds (every minute; `manage.py expire_bookings` for cron)."""

from backend.services.booking_changes import bookings_expire_stale
from backend.tasks.periodic import periodic_job


@periodic_job(name="bookings.expire", every_seconds=60)
def expire_bookings() -> int:
    return bookings_expire_stale()
