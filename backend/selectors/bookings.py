"""Booking reads, each list in a fixed number of queries.

Reads apply lazy expiry first: the reader's pending bookings past their hold are marked
`expired` by one UPDATE (`bookings_expire_stale`), so what is shown matches what the seat count
already assumes. That UPDATE is the one write a read makes; it is idempotent.
"""

from datetime import UTC

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Func, Q, QuerySet
from django.utils import timezone

from backend.exceptions import NotFound
from backend.models import Booking, User
from backend.services.bookings import bookings_expire_stale


def _with_relations(queryset: QuerySet[Booking]) -> QuerySet[Booking]:
    # Everything BookingSerializer reads: the session summary with its creator, and the user.
    return queryset.select_related("session__creator", "user")


class MinutesAsDuration(Func):
    """An integer column of minutes as an interval, for `start_time + duration` in SQL.

    PostgreSQL builds an interval; SQLite stores durations as microseconds (Django's own
    representation, which its datetime arithmetic then understands).
    """

    output_field = DurationField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="make_interval(mins => %(expressions)s)")

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, template="(%(expressions)s * 60000000)")


def _session_end() -> ExpressionWrapper:
    return ExpressionWrapper(
        F("session__start_time") + MinutesAsDuration(F("session__duration_minutes")),
        output_field=DateTimeField(),
    )


def booking_list_for_user(*, user: User) -> QuerySet[Booking]:
    """The user's own bookings, newest first."""
    bookings_expire_stale(user=user)
    return _with_relations(Booking.objects.filter(user=user)).order_by("-created_at", "-id")


def booking_list_active(*, user: User, now=None) -> QuerySet[Booking]:
    """The user's pending or confirmed bookings of sessions that have not started, soonest first."""
    now = now or timezone.now()
    bookings_expire_stale(user=user, now=now)
    return (
        _with_relations(Booking.objects.filter(user=user))
        .filter(status__in=Booking.ACTIVE_STATUSES, session__start_time__gt=now)
        .order_by("session__start_time", "id")
    )


def booking_list_past(*, user: User, now=None) -> QuerySet[Booking]:
    """The user's bookings (any status) of sessions that have ended, latest first."""
    now = now or timezone.now()
    bookings_expire_stale(user=user, now=now)
    return (
        _with_relations(Booking.objects.filter(user=user))
        .alias(session_end=_session_end())
        .filter(session_end__lte=now)
        .order_by("-session__start_time", "-id")
    )


def booking_visible_q(*, user: User) -> Q:
    """The bookings a user may see: their own and those of their sessions."""
    return Q(user=user) | Q(session__creator=user)


def booking_get_visible(*, user: User, booking_id: int) -> Booking:
    """One booking for its user or the session's creator; anyone else gets 404."""
    bookings_expire_stale(booking_id=booking_id)
    booking = (
        _with_relations(Booking.objects.filter(booking_visible_q(user=user)))
        .filter(pk=booking_id)
        .first()
    )
    if booking is None:
        raise NotFound("Booking not found.")
    return booking


ICAL_PRODID = "-//Sessions Marketplace//Bookings//EN"
# Calendar clients update an event they already imported when SEQUENCE grows.
ICAL_SEQUENCE: dict[str, int] = {
    Booking.Status.PENDING: 0,
    Booking.Status.CONFIRMED: 1,
    Booking.Status.CANCELLED: 2,
    Booking.Status.EXPIRED: 2,
}


def booking_calendar(*, booking: Booking, now=None) -> bytes:
    """The booking as an RFC 5545 VCALENDAR with one VEVENT, times in UTC.

    The meeting link is only in the event of a confirmed booking (CONTRACT.md: `meeting_url`
    is for holders of a confirmed booking); a physical location is public and always there.
    A cancelled or expired booking gives a STATUS:CANCELLED event with the same UID, so an
    imported copy can be updated.
    """
    from icalendar import Calendar, Event, vCalAddress, vText

    session = booking.session
    creator = session.creator
    now = now or timezone.now()
    confirmed = booking.status == Booking.Status.CONFIRMED

    event = Event()
    event.add("uid", f"booking-{booking.pk}@sessions-marketplace")
    event.add("dtstamp", now.astimezone(UTC))
    event.add("dtstart", session.start_time.astimezone(UTC))
    event.add("dtend", session.end_time.astimezone(UTC))
    event.add("summary", session.title)
    event.add("sequence", ICAL_SEQUENCE[booking.status])
    if booking.status in (Booking.Status.CANCELLED, Booking.Status.EXPIRED):
        event.add("status", "CANCELLED")
    else:
        event.add("status", "CONFIRMED" if confirmed else "TENTATIVE")

    description = [session.description.strip()] if session.description.strip() else []
    description.append(f"Seats: {booking.seats}. Booking #{booking.pk} ({booking.status}).")
    location = session.location.strip()
    if confirmed and session.meeting_url:
        event.add("url", session.meeting_url)
        description.append(f"Join: {session.meeting_url}")
        location = location or session.meeting_url
    if location:
        event.add("location", location)
    event.add("description", "\n\n".join(description))

    if creator.email:
        organizer = vCalAddress(f"mailto:{creator.email}")
        organizer.params["cn"] = vText(creator.get_full_name() or creator.username)
        event.add("organizer", organizer)

    calendar = Calendar()
    calendar.add("prodid", ICAL_PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add_component(event)
    return calendar.to_ical()
