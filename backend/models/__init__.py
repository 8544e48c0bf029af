from backend.models.bookings import Booking, BookingEvent
from backend.models.catalog import Session
from backend.models.files import StoredFile
from backend.models.outbox import OutboxMessage, PeriodicRun
from backend.models.payments import Payment, StripeEvent
from backend.models.reminders import Reminder
from backend.models.reviews import CreatorRating, Review, ReviewReport
from backend.models.series import SessionSeries
from backend.models.users import User

__all__ = [
    "Booking",
    "BookingEvent",
    "CreatorRating",
    "OutboxMessage",
    "Payment",
    "PeriodicRun",
    "Reminder",
    "Review",
    "ReviewReport",
    "Session",
    "SessionSeries",
    "StoredFile",
    "StripeEvent",
    "User",
]
