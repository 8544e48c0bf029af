"""Helpers for the review and creator tests: attended bookings, reviews, aggregate checks."""

from datetime import timedelta

from django.utils import timezone

from backend.models import Booking, CreatorRating, Review, Session, User
from backend.services import reviews as services
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory


def past_session(*, ended_ago: timedelta = timedelta(hours=1), **fields) -> Session:
    """A published session of 60 minutes that ended `ended_ago` ago."""
    fields.setdefault("duration_minutes", 60)
    start = timezone.now() - ended_ago - timedelta(minutes=fields["duration_minutes"])
    return SessionFactory.create(start_time=start, **fields)


def attended_booking(
    *, session: Session | None = None, user: User | None = None, **session_fields
) -> Booking:
    """A confirmed booking of a session that has ended (what may be reviewed)."""
    session = session or past_session(**session_fields)
    return BookingFactory.create(
        session=session, user=user or UserFactory.create(), status="confirmed"
    )


def review_of(booking: Booking, rating: int, comment: str = "") -> Review:
    return services.review_create(
        user=booking.user, booking_id=booking.pk, rating=rating, comment=comment
    )


def rating_row(creator: User) -> tuple[int, int, str | None]:
    """(count, sum, average as text) of the creator's aggregate; no row reads as no reviews."""
    row = CreatorRating.objects.filter(pk=creator.pk).first()
    if row is None:
        return (0, 0, None)
    return (row.review_count, row.rating_sum, None if row.average is None else str(row.average))


def error_fields(body: dict) -> dict:
    """The per-field messages of a validation error, before or after `{code, detail, errors}`."""
    return body.get("errors", body)
