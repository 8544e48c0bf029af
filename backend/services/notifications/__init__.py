"""Booking emails, sent by a task (`notifications.send_email`) after the booking commits.

Each `notify_*` function is called inside the service's transaction. It renders the message at
once (the booking and its session are loaded and locked there) and writes it to the outbox in
that transaction (backend/services/outbox.py), so nobody is told about a booking that was
rolled back, and a mail server that is down or slow never slows, breaks or undoes a booking:
the worker sends it, retrying with backoff while the server fails. One e-mail per booking and
kind (the outbox's unique effect key `email:<kind>:booking:<id>`).

Who hears what:
- the user: booked (free sessions are confirmed at once, paid ones wait for payment),
  confirmed (by the creator, or by the payment service after a payment), cancelled;
- the creator: a new booking, a cancellation by the user (a creator who cancels is not
  told about their own action);
- every attendee with an active booking: the creator moved the session's start time.

One module per concern, the public functions importable from here as before:
- common.py: zones and wall clocks, the layout, next steps, the .ics, the outbox row, and
  `email_send` (the task's handler);
- bookings.py: a booking's own e-mails and its session's new start time;
- reminders.py: before the start, for the attendee and the creator;
- minimum.py: sessions that run only if enough people book;
- disputes.py: chargebacks, for the creator and staff.
"""

from backend.services.notifications.bookings import (
    notify_booking_cancelled,
    notify_booking_confirmed,
    notify_booking_created,
    notify_booking_rescheduled,
    notify_session_rescheduled,
)
from backend.services.notifications.common import (
    EMAIL_MAX_ATTEMPTS,
    ICS_MIMETYPE,
    SEND_EMAIL_TASK,
    SITE_NAME,
    Email,
    Step,
    calendar_feed_link,
    email_send,
    format_when,
    local_time,
)
from backend.services.notifications.disputes import notify_dispute
from backend.services.notifications.minimum import (
    notify_called_off,
    notify_card_saved,
    notify_creator_decision,
    notify_pay_on_session,
)
from backend.services.notifications.reminders import notify_creator_starting_soon, notify_reminder

__all__ = [
    "EMAIL_MAX_ATTEMPTS",
    "ICS_MIMETYPE",
    "SEND_EMAIL_TASK",
    "SITE_NAME",
    "Email",
    "Step",
    "calendar_feed_link",
    "email_send",
    "format_when",
    "local_time",
    "notify_booking_cancelled",
    "notify_booking_confirmed",
    "notify_booking_created",
    "notify_booking_rescheduled",
    "notify_called_off",
    "notify_card_saved",
    "notify_creator_decision",
    "notify_creator_starting_soon",
    "notify_dispute",
    "notify_pay_on_session",
    "notify_reminder",
    "notify_session_rescheduled",
]
