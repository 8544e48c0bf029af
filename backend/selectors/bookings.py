"""Booking reads, each list in a fixed number of queries.

Reads never write. A pending booking past its hold already takes no seats; it is shown as
`expired` (`shown_status`) until the periodic expiry, or the next write that touches it, marks
the row itself.
"""

from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import Q, QuerySet
from django.utils import timezone

from backend import booking_rules
from backend.booking_rules import CancelQuote, shown_status
from backend.exceptions import NotFound
from backend.models import Booking, BookingEvent, User
from backend.models.catalog import session_end_time


class ShownStatus(TypedDict):
    # Any: django-stubs checks lookups on an annotation (shown_status__in=...) against this type.
    shown_status: Any


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    ShownBooking = WithAnnotations[Booking, ShownStatus]
else:
    ShownBooking = Booking


def _with_relations(queryset: QuerySet[Booking]) -> QuerySet[ShownBooking]:
    # Everything BookingSerializer reads: the session summary with its creator, and the user;
    # `status` as the reader must see it (a hold that ran out reads as expired).
    return queryset.select_related("session__creator", "user").annotate(shown_status=shown_status())


def booking_list_for_user(*, user: User) -> QuerySet[Booking]:
    """The user's own bookings, newest first."""
    return _with_relations(Booking.objects.filter(user=user)).order_by("-created_at", "-id")


def booking_list_active(*, user: User, now=None) -> QuerySet[Booking]:
    """The user's pending or confirmed bookings of sessions that have not started, soonest first."""
    now = now or timezone.now()
    return (
        _with_relations(Booking.objects.filter(user=user))
        .filter(shown_status__in=Booking.ACTIVE_STATUSES, session__start_time__gt=now)
        .order_by("session__start_time", "id")
    )


def booking_list_past(*, user: User, now=None) -> QuerySet[Booking]:
    """The user's bookings (any status) of sessions that have ended, latest first."""
    now = now or timezone.now()
    return (
        _with_relations(Booking.objects.filter(user=user))
        .alias(session_end=session_end_time("session__"))
        .filter(session_end__lte=now)
        .order_by("-session__start_time", "-id")
    )


def booking_visible_q(*, user: User) -> Q:
    """The bookings a user may see: their own and those of their sessions."""
    return Q(user=user) | Q(session__creator=user)


def booking_get_visible(*, user: User, booking_id: int) -> Booking:
    """One booking for its user or the session's creator; anyone else gets 404."""
    booking = (
        _with_relations(Booking.objects.filter(booking_visible_q(user=user)))
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        raise NotFound("Booking not found.")
    return booking


def booking_cancel_quote(*, user: User, booking_id: int, now=None) -> CancelQuote:
    """What `POST bookings/{id}/cancel/` by `user` would do now: the same rule
    (booking_rules.cancel_quote), read without a lock, so the answer can be overtaken by a
    change made meanwhile; the cancellation itself decides again under the lock."""
    booking = booking_get_visible(user=user, booking_id=booking_id)
    if booking_rules.is_stale(booking, now):
        return CancelQuote(
            False,
            0,
            Decimal("0.00"),
            booking.currency,
            "expired",
            "This booking's hold has expired.",
        )
    return booking_rules.cancel_quote(booking=booking, by_owner=booking.user_id == user.pk, now=now)


def booking_events(*, user: User, booking_id: int) -> QuerySet[BookingEvent]:
    """The audit trail of one booking, oldest first, for its user or the session's creator."""
    visible = Booking.objects.filter(booking_visible_q(user=user), pk=booking_id)
    if not visible.exists():
        raise NotFound("Booking not found.")
    return (
        BookingEvent.objects.filter(booking_id=booking_id)
        .select_related("actor")
        .order_by("created_at", "id")
    )
