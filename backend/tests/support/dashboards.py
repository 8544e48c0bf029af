"""Helpers shared by the dashboard tests (test_dashboards_*.py)."""

from decimal import Decimal

from backend.models import Booking, Payment
from backend.services.payment_records import refunded_total
from backend.tests.factories import BookingFactory, PaymentFactory, UserFactory
from backend.tests.support import backdate

USER_URL = "/api/dashboard/user/"
CREATOR_URL = "/api/dashboard/creator/"

S = Booking.Status
P = Booking.PaymentStatus


def book(session, *, user=None, created_at=None, **fields):
    """A booking with its `created_at` forced (it is auto_now_add)."""
    booking = BookingFactory(session=session, user=user or UserFactory(), **fields)
    if created_at is not None:
        backdate(booking, created_at=created_at)
    return booking


def refund_row(booking, amount, status="succeeded"):
    """A refund Payment row, and the booking's `refunded_amount` brought in line with its
    succeeded ones, as the refund service does (apply_refund_state): dashboards read that."""
    row = PaymentFactory(
        booking=booking, kind=Payment.Kind.REFUND, amount=Decimal(amount), status=status
    )
    Booking.objects.filter(pk=booking.pk).update(refunded_amount=refunded_total(booking))
    return row
