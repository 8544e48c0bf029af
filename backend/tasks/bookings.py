"""Booking tasks: expiry of unpaid holds (every minute; `manage.py expire_bookings` for cron).

Expiring a hold frees its seats, so the same run offers them to the session's waitlist (an
expired waitlist offer passes to the next entry): backend/services/waitlist.py.
"""

from backend.services.waitlist import bookings_expire_and_offer
from backend.tasks.periodic import periodic_job


@periodic_job(name="bookings.expire", every_seconds=60)
def expire_bookings() -> int:
    return bookings_expire_and_offer()
