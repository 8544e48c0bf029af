"""Reminders at REMINDER_OFFSETS_MINUTES before the start: exactly once per booking and offset
(counted at the mail outbox), never for a cancelled booking or an offset that had passed when
the booking was confirmed, re-armed when the session moves; the creator's "starting soon"."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend.models import Booking, Reminder, Session
from backend.services import reminders
from backend.services.reminders import reminders_send_due
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate, run_concurrently, wait_after

MINUTE = timedelta(minutes=1)
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


@pytest.fixture(autouse=True)
def offsets(settings):
    settings.REMINDER_OFFSETS_MINUTES = (1440, 60)


def make_session(start_in: timedelta = timedelta(days=3), **fields) -> Session:
    fields.setdefault("creator", CreatorFactory(email="host@example.com", first_name="Hana"))
    return SessionFactory.create(
        start_time=timezone.now() + start_in, price=Decimal("0.00"), title="Pottery", **fields
    )


def book(session: Session, email: str, seats: int = 1, **fields) -> Booking:
    return BookingFactory.create(
        session=session,
        user=UserFactory(email=email),
        seats=seats,
        confirmed_at=timezone.now(),
        **fields,
    )


def sent_to() -> list[tuple[str, str]]:
    return sorted((message.to[0], str(message.subject)) for message in mail.outbox)


def run_at(moment, django_capture_on_commit_callbacks) -> int:
    with django_capture_on_commit_callbacks(execute=True):
        return reminders_send_due(now=moment)


@pytest.mark.django_db
def test_each_offset_once_per_booking_and_the_creators_once(django_capture_on_commit_callbacks):
    session = make_session()
    book(session, "ann@example.com")
    book(session, "bob@example.com", seats=2)
    start = session.start_time

    assert run_at(start - DAY - HOUR, django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []

    # The 24 h moment; a second run (another beat, a retry) in the same minute and one later.
    for moment in (start - DAY + MINUTE, start - DAY + MINUTE, start - DAY + 30 * MINUTE):
        run_at(moment, django_capture_on_commit_callbacks)
    assert sent_to() == [
        ("ann@example.com", "[Sessions Marketplace] Reminder: Pottery starts tomorrow"),
        ("bob@example.com", "[Sessions Marketplace] Reminder: Pottery starts tomorrow"),
    ]
    mail.outbox.clear()

    assert run_at(start - 61 * MINUTE, django_capture_on_commit_callbacks) == 0
    for moment in (start - 59 * MINUTE, start - 59 * MINUTE, start - MINUTE):
        run_at(moment, django_capture_on_commit_callbacks)
    assert sent_to() == [
        ("ann@example.com", "[Sessions Marketplace] Reminder: Pottery starts in 1 hour"),
        ("bob@example.com", "[Sessions Marketplace] Reminder: Pottery starts in 1 hour"),
        ("host@example.com", "[Sessions Marketplace] Starting in 1 hour: Pottery"),
    ]
    creator_mail = next(m for m in mail.outbox if m.to == ["host@example.com"])
    assert "with 3 attendees confirmed" in creator_mail.body  # seats of confirmed bookings
    attendee_mail = next(m for m in mail.outbox if m.to == ["ann@example.com"])
    assert "Join online at the start time: https://meet.example.com/room" in attendee_mail.body
    assert attendee_mail.alternatives[0][1] == "text/html"
    # After the start: nothing more, ever.
    assert run_at(start + MINUTE, django_capture_on_commit_callbacks) == 0
    assert Reminder.objects.count() == 5  # 2 bookings x 2 offsets + the creator's


@pytest.mark.django_db
def test_reminder_times_are_in_the_recipients_zone(django_capture_on_commit_callbacks):
    session = make_session()
    booking = book(session, "tokyo@example.com")
    booking.user.timezone = "Asia/Tokyo"
    booking.user.save()
    run_at(session.start_time - DAY + MINUTE, django_capture_on_commit_callbacks)
    (message,) = mail.outbox
    local = session.start_time.astimezone(timezone.get_fixed_timezone(9 * 60))
    assert f"{local:%H:%M} JST (Asia/Tokyo)" in message.body


@pytest.mark.django_db
def test_none_for_a_booking_cancelled_before_the_offset(django_capture_on_commit_callbacks):
    session = make_session()
    kept = book(session, "kept@example.com")
    gone = book(session, "gone@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(gone.user).post(f"/api/bookings/{gone.pk}/cancel/")
    assert response.status_code == 200
    mail.outbox.clear()
    for moment in (session.start_time - DAY + MINUTE, session.start_time - 59 * MINUTE):
        run_at(moment, django_capture_on_commit_callbacks)
    assert {message.to[0] for message in mail.outbox} == {"kept@example.com", "host@example.com"}
    assert not Reminder.objects.filter(booking=gone).exists()
    assert Reminder.objects.filter(booking=kept).count() == 2


@pytest.mark.django_db
def test_none_for_pending_or_of_a_draft_or_cancelled_session(django_capture_on_commit_callbacks):
    session = make_session()
    book(session, "pending@example.com", status="pending", payment_status="unpaid")
    draft = make_session(status=Session.Status.DRAFT)
    book(draft, "draft@example.com")
    cancelled = make_session(status=Session.Status.CANCELLED)
    book(cancelled, "cancelled@example.com")
    run_at(session.start_time - 59 * MINUTE, django_capture_on_commit_callbacks)
    # Only the published session's creator hears "starting soon" (with nobody confirmed).
    assert [m.to[0] for m in mail.outbox] == ["host@example.com"]
    assert "with 0 attendees confirmed" in mail.outbox[0].body


@pytest.mark.django_db
def test_an_offset_already_past_at_confirmation_is_skipped(django_capture_on_commit_callbacks):
    session = make_session()
    booking = book(session, "late@example.com")
    # Confirmed 10 hours before the start: the 24 h moment had passed by then.
    backdate(booking, confirmed_at=session.start_time - 10 * HOUR)
    for moment in (session.start_time - DAY + MINUTE, session.start_time - 9 * HOUR):
        run_at(moment, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    run_at(session.start_time - 59 * MINUTE, django_capture_on_commit_callbacks)
    assert sent_to()[1] == (
        "late@example.com",
        "[Sessions Marketplace] Reminder: Pottery starts in 1 hour",
    )


@pytest.mark.django_db
def test_a_late_run_sends_only_the_nearest_offset(django_capture_on_commit_callbacks):
    session = make_session()
    book(session, "ann@example.com")
    # The job did not run for a day: at 59 minutes before the start, "tomorrow" would be wrong.
    run_at(session.start_time - 59 * MINUTE, django_capture_on_commit_callbacks)
    assert sent_to() == [
        ("ann@example.com", "[Sessions Marketplace] Reminder: Pottery starts in 1 hour"),
        ("host@example.com", "[Sessions Marketplace] Starting in 1 hour: Pottery"),
    ]


@pytest.mark.django_db
def test_moving_the_session_re_arms_its_reminders(django_capture_on_commit_callbacks):
    session = make_session()
    book(session, "ann@example.com")
    first_start = session.start_time
    run_at(first_start - DAY + MINUTE, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1

    new_start = first_start + timedelta(days=2)
    response = auth_client(session.creator).patch(
        f"/api/sessions/{session.pk}/", {"start_time": new_start.isoformat()}, format="json"
    )
    assert response.status_code == 200, response.content
    mail.outbox.clear()
    # The old start's moments mean nothing now; the new start's are armed again.
    run_at(first_start - 59 * MINUTE, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    run_at(new_start - DAY + MINUTE, django_capture_on_commit_callbacks)
    run_at(new_start - DAY + 2 * MINUTE, django_capture_on_commit_callbacks)
    assert sent_to() == [
        ("ann@example.com", "[Sessions Marketplace] Reminder: Pottery starts tomorrow"),
    ]


@pytest.mark.django_db
def test_a_move_into_the_window_skips_the_moments_already_past(
    django_capture_on_commit_callbacks,
):
    session = make_session()
    book(session, "ann@example.com")
    soon = timezone.now() + 10 * HOUR
    response = auth_client(session.creator).patch(
        f"/api/sessions/{session.pk}/", {"start_time": soon.isoformat()}, format="json"
    )
    assert response.status_code == 200
    # The 24 h moment of the new time passed before the move (the attendee was told of it).
    run_at(timezone.now() + MINUTE, django_capture_on_commit_callbacks)
    assert mail.outbox == []
    run_at(soon - 59 * MINUTE, django_capture_on_commit_callbacks)
    assert {m.to[0] for m in mail.outbox} == {"ann@example.com", "host@example.com"}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_overlapping_runs_send_each_reminder_once(monkeypatch):
    """Two beats (or workers) running the job at the same moment: both read the same due
    list before either claims anything (wait_after forces that interleaving), then race for
    the claims. The mail outbox gets each reminder once."""
    session = make_session()
    for n in range(8):
        book(session, f"attendee{n}@example.com")
    moment = session.start_time - 59 * MINUTE
    wait_after(monkeypatch, reminders, "_due_booking_ids", parties=2)

    results = run_concurrently(
        [lambda: reminders_send_due(now=moment), lambda: reminders_send_due(now=moment)],
        raise_errors=True,
        lock_timeout="30s",
    )

    assert sum(results) == 9  # 8 attendees + the creator, split between the two runs
    recipients = sorted(message.to[0] for message in mail.outbox)
    assert recipients == sorted(
        [f"attendee{n}@example.com" for n in range(8)] + ["host@example.com"]
    )
    assert Reminder.objects.count() == 9
