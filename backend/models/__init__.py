from backend.models.bookings import Booking, BookingEvent
from backend.models.catalog import Session
from backend.models.files import StoredFile
from backend.models.outbox import OutboxMessage, PeriodicRun
from backend.models.payments import Payment, StripeEvent
from backend.models.payouts import ConnectedAccount, Transfer, TransferReversal
from backend.models.reviews import CreatorRating, Review, ReviewReport
from backend.models.series import SessionSeries
from backend.models.users import User

__all__ = [
    "Booking",
    "BookingEvent",
    "ConnectedAccount",
    "CreatorRating",
    "OutboxMessage",
    "Payment",
    "PeriodicRun",
    "Review",
    "ReviewReport",
    "Session",
    "SessionSeries",
    "StoredFile",
    "StripeEvent",
    "Transfer",
    "TransferReversal",
    "User",
]
