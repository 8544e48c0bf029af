"""Helpers shared by the booking API tests (test_bookings_*.py)."""

from backend.models import Booking


def snapshot(booking: Booking) -> dict:
    booking.refresh_from_db()
    return {
        field: getattr(booking, field)
        for field in ("seats", "status", "payment_status", "amount", "notes", "cancelled_at")
    }
