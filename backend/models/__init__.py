from backend.models.bookings import Booking
from backend.models.catalog import Session
from backend.models.files import StoredFile
from backend.models.outbox import OutboxMessage, PeriodicRun
from backend.models.payments import Payment, StripeEvent
from backend.models.users import User

__all__ = [
    "Booking",
    "OutboxMessage",
    "Payment",
    "PeriodicRun",
    "Session",
    "StoredFile",
    "StripeEvent",
    "User",
]
