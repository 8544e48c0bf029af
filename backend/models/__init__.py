from backend.models.bookings import Booking, BookingEvent
from backend.models.catalog import Session
from backend.models.files import StoredFile
from backend.models.idempotency import IdempotencyKey
from backend.models.outbox import OutboxMessage, PeriodicRun
from backend.models.payments import Payment, StripeEvent
from backend.models.payouts import ConnectedAccount, Transfer, TransferReversal
from backend.models.reminders import Reminder
from backend.models.reviews import CreatorRating, Review, ReviewReport
from backend.models.series import SessionSeries
from backend.models.users import User
from backend.models.waitlist import WaitlistEntry
from backend.models.webhooks import WebhookDelivery, WebhookEvent, WebhookSubscription

__all__ = [
    "Booking",
    "BookingEvent",
    "ConnectedAccount",
    "CreatorRating",
    "IdempotencyKey",
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
    "Transfer",
    "TransferReversal",
    "User",
    "WaitlistEntry",
    "WebhookDelivery",
    "WebhookEvent",
    "WebhookSubscription",
]
