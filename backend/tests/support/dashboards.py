"""Helpers shared by the dashboard tests (test_dashboards_*.py)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, Payment
from backend.services.payment_records import refunded_total
from backend.tests.factories import BookingFactory, PaymentFactory, UserFactory
from backend.tests.support import backdate

USER_URL = "/api/dashboard/user/"
CREATOR_URL = "/api/dashboard/creator/"

S = Booking.Status
P = Booking.PaymentStatus


def book(session, *, user=None, created_at=None, **fields):
    """A booking with its `created_at` forced (it is auto_now_add); a pending one's hold ends
    BOOKING_HOLD_MINUTES after that, as booking_create sets it."""
    booking = BookingFactory(session=session, user=user or UserFactory(), **fields)
    if created_at is not None:
        moments = {"created_at": created_at}
        if booking.hold_expires_at is not None:
            start = timezone.now() - created_at if isinstance(created_at, timedelta) else created_at
            moments["hold_expires_at"] = booking_rules.new_hold_expires_at(start)
        backdate(booking, **moments)
    return booking


def refund_row(booking, amount, status="succeeded"):
    """A refund Payment row, and the booking's `refunded_amount` brought in line with its
    succeeded ones, as the refund service does (apply_refund_state): dashboards read that."""
    row = PaymentFactory(
        booking=booking, kind=Payment.Kind.REFUND, amount=Decimal(amount), status=status
    )
    Booking.objects.filter(pk=booking.pk).update(refunded_amount=refunded_total(booking))
    return row
