"""Booking tasks: expiry of unpaid holds (every minute; `manage.py expire_bookings` for cron).

Expiring a hold frees its seats, so the same run offers them to the session's waitlist (an
expired waitlist offer passes to the next entry): backend/services/waitlist.py.
"""

from backend.services import minimum
from backend.services.waitlist import bookings_expire_and_offer
from backend.tasks.base import outbox_task
from backend.tasks.periodic import periodic_job


@periodic_job(name="bookings.expire", every_seconds=60)
def expire_bookings() -> int:
    return bookings_expire_and_offer()


# Sessions that run only if enough people book: each due session's decision is an outbox task
# (catalog.decide_minimum), decided once under the session lock (services/minimum.py).
outbox_task(minimum.DECIDE_TASK)(minimum.session_decide_minimum)


@periodic_job(name="sessions.decide_minimum", every_seconds=60)
def decide_minimum() -> int:
    return minimum.minimum_decisions_enqueue()
