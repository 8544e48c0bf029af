"""Payment writes. Until Stripe is wired in (issue: payments), refunds are a no-op hook."""

from backend.models import Booking


def payment_refund_booking(*, booking: Booking) -> None:
    """Refunds a paid booking that was just cancelled. Caller holds the booking row lock."""
    return None
