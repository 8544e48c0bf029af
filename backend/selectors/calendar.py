"""iCalendar (RFC 5545): a booking's `.ics` and the subscribable per-user feed.

Times are written in the session's own zone: `DTSTART;TZID=Europe/Paris:20270329T090000` with
a VTIMEZONE for that zone in the file, so a calendar shows the session at its wall-clock time
across DST changes (a UTC session keeps the plain `...Z` form and needs no VTIMEZONE).

UIDs are stable (`booking-<id>@...`, `session-<id>@...`) and SEQUENCE only grows: calendar
clients replace an imported event when it does. A booking's SEQUENCE is its session's
`schedule_sequence` (one more per change of time or place) plus its status rank (pending 0,
confirmed 1, cancelled or expired 2), both of which only go up. DTSTAMP is the last change of
the rows the event comes from, not "now", so an unchanged feed is byte-for-byte the same
(its ETag too: calendar apps poll it).
"""

from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone
from icalendar import Calendar, Event, vCalAddress, vText

from backend.exceptions import NotFound
from backend.models import Booking, Session, User
from backend.timezones import DEFAULT_TIMEZONE, is_valid_timezone, zone

ICAL_PRODID = "-//Sessions Marketplace//Bookings//EN"
UID_DOMAIN = "sessions-marketplace"
# The feed shows what happened in the last 30 days and everything after (CONTRACT.md).
FEED_PAST_DAYS = 30
# What calendar apps are told about how often to poll the feed (they mostly decide themselves).
FEED_REFRESH_INTERVAL = timedelta(hours=1)

STATUS_RANK: dict[str, int] = {
    Booking.Status.PENDING: 0,
    Booking.Status.CONFIRMED: 1,
    Booking.Status.CANCELLED: 2,
    Booking.Status.EXPIRED: 2,
}


def booking_sequence(booking: Booking) -> int:
    """Grows with every change of the booking's time or place: its session's changes, its
    status, and its moves to other sessions (`schedule_changes`, set by the move so that the
    sum still grows although the new session has its own `schedule_sequence`)."""
    return (
        booking.session.schedule_sequence + booking.schedule_changes + STATUS_RANK[booking.status]
    )


def _local(value: datetime, timezone_name: str) -> datetime:
    if timezone_name == DEFAULT_TIMEZONE or not is_valid_timezone(timezone_name):
        return value.astimezone(UTC)
    return value.astimezone(zone(timezone_name))


def _organizer(event: Event, creator: User) -> None:
    # The creator's name at the platform's address: the .ics is shared and forwarded, and a
    # creator's own e-mail is private (CONTRACT.md shows it to nobody else).
    platform_address = parseaddr(settings.DEFAULT_FROM_EMAIL)[1]
    if platform_address:
        organizer = vCalAddress(f"mailto:{platform_address}")
        organizer.params["cn"] = vText(creator.get_full_name() or creator.username)
        event.add("organizer", organizer)


def _timed_event(*, uid: str, session: Session, sequence: int, stamp: datetime) -> Event:
    event = Event()
    event.add("uid", f"{uid}@{UID_DOMAIN}")
    event.add("dtstamp", stamp.astimezone(UTC))
    # The end from the instant in UTC: in a zone, adding the duration would be wall-clock
    # arithmetic (an hour off across a DST change) for a session built in memory.
    start = session.start_time.astimezone(UTC)
    event.add("dtstart", _local(start, session.timezone))
    event.add(
        "dtend", _local(start + timedelta(minutes=session.duration_minutes), session.timezone)
    )
    event.add("summary", session.title)
    event.add("sequence", sequence)
    return event


def booking_event(booking: Booking) -> Event:
    """The attendee's view of a booking. The meeting link only for a confirmed booking
    (CONTRACT.md: `meeting_url` is for holders of one); a physical location is public."""
    session = booking.session
    confirmed = booking.status == Booking.Status.CONFIRMED
    event = _timed_event(
        uid=f"booking-{booking.pk}",
        session=session,
        sequence=booking_sequence(booking),
        stamp=max(booking.updated_at or timezone.now(), session.updated_at or timezone.now()),
    )
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
    _organizer(event, session.creator)
    return event


def session_event(session: Session, *, seats_booked: int) -> Event:
    """The creator's view of their own published session (the feed)."""
    event = _timed_event(
        uid=f"session-{session.pk}",
        session=session,
        sequence=session.schedule_sequence,
        stamp=session.updated_at or timezone.now(),
    )
    event.add("status", "CONFIRMED")
    description = [f"Your session: {seats_booked} of {session.capacity} seats booked."]
    location = session.location.strip()
    if session.meeting_url:
        event.add("url", session.meeting_url)
        description.append(f"Join: {session.meeting_url}")
        location = location or session.meeting_url
    if location:
        event.add("location", location)
    event.add("description", "\n\n".join(description))
    _organizer(event, session.creator)
    return event


def _calendar(events: list[Event], *, name: str | None = None) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", ICAL_PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    if name is not None:
        calendar.add("x-wr-calname", name)
        calendar.add("refresh-interval", FEED_REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
        calendar.add("x-published-ttl", FEED_REFRESH_INTERVAL)
    for event in events:
        calendar.add_component(event)
    # One VTIMEZONE per TZID used, generated by icalendar from the zoneinfo database.
    calendar.add_missing_timezones()
    return calendar.to_ical()


def booking_calendar(*, booking: Booking) -> bytes:
    """The booking as a VCALENDAR with one VEVENT (a cancelled or expired booking gives a
    STATUS:CANCELLED event with the same UID, so an imported copy is updated)."""
    return _calendar([booking_event(booking)])


def _feed_bookings(user: User, since: datetime) -> QuerySet[Booking]:
    return (
        Booking.objects.filter(
            user=user, status=Booking.Status.CONFIRMED, session__start_time__gte=since
        )
        .select_related("session__creator")
        .order_by("session__start_time", "id")
    )


def _feed_sessions(user: User, since: datetime) -> QuerySet[Session]:
    return (
        Session.objects.filter(creator=user, status=Session.Status.PUBLISHED, start_time__gte=since)
        .select_related("creator")
        .annotate(
            seats_booked=Sum("bookings__seats", filter=Q(bookings__status=Booking.Status.CONFIRMED))
        )
        .order_by("start_time", "id")
    )


def calendar_feed_owner(*, token: str) -> User:
    """The active account whose feed token this is; 404 for anything else (a rotated token,
    a deleted account), with nothing said about which."""
    user = User.objects.filter(calendar_token=token, is_active=True).first()
    if user is None:
        raise NotFound("Calendar feed not found.")
    return user


def calendar_feed(*, owner: User, now: datetime | None = None) -> bytes:
    """The owner's confirmed bookings and, for a creator, their published sessions, from
    FEED_PAST_DAYS ago on. Two queries (one for a user who is not a creator)."""
    since = (now or timezone.now()) - timedelta(days=FEED_PAST_DAYS)
    events = [booking_event(booking) for booking in _feed_bookings(owner, since)]
    if owner.is_creator:
        events += [
            # `seats_booked` is the queryset's annotation.
            session_event(session, seats_booked=getattr(session, "seats_booked", None) or 0)
            for session in _feed_sessions(owner, since)
        ]
    return _calendar(events, name="Sessions Marketplace")
