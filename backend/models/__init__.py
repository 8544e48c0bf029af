from backend.models.bookings import Booking, BookingEvent
from backend.models.catalog import Session
from backend.models.files import StoredFile
from backend.models.outbox import OutboxMessage, PeriodicRun
from backend.models.payments import Payment, StripeEvent
from backend.models.users import User

__all__ = [
    "Booking",
    "BookingEvent",
    "OutboxMessage",
    "Payment",
    "PeriodicRun",
    "Session",
    "StoredFile",
    "StripeEvent",
    "User",
]
