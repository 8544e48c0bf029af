"""Booking emails: sent after commit, to the right people, and never at a booking's expense."""

import logging
from decimal import Decimal
from smtplib import SMTPException

import pytest
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import transaction

from backend.models import Booking
from backend.services import bookings as services
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


class FailingEmailBackend(BaseEmailBackend):
    """A mail server that is down."""

    def send_messages(self, email_messages):
        raise SMTPException("connection refused")


@pytest.fixture
def people():
    creator = CreatorFactory(email="host@example.com", first_name="Hana", last_name="Host")
    user = UserFactory(email="pat@example.com", first_name="Pat", last_name="Doe")
    return creator, user


def sent() -> list[tuple[str, str]]:
    return [(message.to[0], str(message.subject)) for message in mail.outbox]


def test_free_booking_emails_user_and_creator(people, django_capture_on_commit_callbacks):
    creator, user = people
    session = SessionFactory(creator=creator, title="Yoga", price=Decimal("0.00"))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = auth_client(user).post("/api/bookings/", {"session": session.pk, "seats": 2})
    assert response.status_code == 201
    assert len(callbacks) == 2
    assert sent() == [
        ("pat@example.com", "[Sessions Marketplace] Booking confirmed: Yoga"),
        ("host@example.com", "[Sessions Marketplace] New booking: Yoga"),
    ]
    assert "Hello Pat Doe," in mail.outbox[0].body
    assert "Seats: 2" in mail.outbox[0].body
    assert "Pat Doe booked 2 seat(s)." in mail.outbox[1].body
    assert mail.outbox[0].from_email == "Sessions Marketplace <no-reply@localhost>"


def test_paid_booking_tells_the_user_to_pay(people, django_capture_on_commit_callbacks):
    creator, user = people
    session = SessionFactory(creator=creator, title="Chess", price=Decimal("10.00"))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert sent() == [
        ("pat@example.com", "[Sessions Marketplace] Booking received: Chess"),
        ("host@example.com", "[Sessions Marketplace] New booking: Chess"),
    ]
    booking = Booking.objects.get(user=user, session=session)
    until = booking.hold_expires_at.strftime("%Y-%m-%d %H:%M UTC")
    assert f"held until {until}" in mail.outbox[0].body
    assert "Pat Doe booked 1 seat(s). Awaiting payment." in mail.outbox[1].body


def test_nothing_is_sent_before_the_commit(people, django_capture_on_commit_callbacks):
    creator, user = people
    session = SessionFactory(creator=creator)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert len(callbacks) == 2
    assert mail.outbox == []


def test_a_rolled_back_booking_sends_nothing(people, django_capture_on_commit_callbacks):
    creator, user = people
    session = SessionFactory(creator=creator)
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.booking_create(user=user, session_id=session.pk)
        raise RuntimeError("the caller failed after booking")
    assert callbacks == []
    assert mail.outbox == []
    assert Booking.objects.count() == 0


def test_a_refused_booking_sends_nothing(people, django_capture_on_commit_callbacks):
    creator, user = people
    session = SessionFactory(creator=creator, capacity=1)
    BookingFactory(session=session)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert mail.outbox == []


def test_confirm_emails_the_user(people, django_capture_on_commit_callbacks):
    creator, user = people
    booking = BookingFactory(
        user=user,
        session=SessionFactory(creator=creator, title="Go"),
        status="pending",
        payment_status="not_required",
    )
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(creator).post(f"/api/bookings/{booking.pk}/confirm/")
    assert sent() == [("pat@example.com", "[Sessions Marketplace] Booking confirmed: Go")]


def test_cancel_by_user_emails_user_and_creator(people, django_capture_on_commit_callbacks):
    creator, user = people
    booking = BookingFactory(user=user, session=SessionFactory(creator=creator, title="Go"))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert sent() == [
        ("pat@example.com", "[Sessions Marketplace] Booking cancelled: Go"),
        ("host@example.com", "[Sessions Marketplace] Booking cancelled: Go"),
    ]
    assert "You cancelled this booking." in mail.outbox[0].body
    assert "Pat Doe cancelled 1 seat(s)." in mail.outbox[1].body


def test_cancel_by_creator_emails_only_the_user(people, django_capture_on_commit_callbacks):
    creator, user = people
    booking = BookingFactory(user=user, session=SessionFactory(creator=creator, title="Go"))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(creator).post(f"/api/bookings/{booking.pk}/cancel/")
    assert sent() == [("pat@example.com", "[Sessions Marketplace] Booking cancelled: Go")]
    assert "The session's host cancelled this booking." in mail.outbox[0].body


def test_users_without_an_address_are_skipped(django_capture_on_commit_callbacks):
    creator = CreatorFactory(email="")
    user = UserFactory(email="pat@example.com")
    session = SessionFactory(creator=creator, title="Go", price=Decimal("0"))
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert sent() == [("pat@example.com", "[Sessions Marketplace] Booking confirmed: Go")]


def test_a_line_break_in_a_title_cannot_break_the_subject(
    people, django_capture_on_commit_callbacks
):
    creator, user = people
    session = SessionFactory(creator=creator, title="Evil\r\nBcc: x@example.com", price=0)
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert sent()[0] == (
        "pat@example.com",
        "[Sessions Marketplace] Booking confirmed: Evil Bcc: x@example.com",
    )


def test_a_failing_mail_server_never_breaks_or_rolls_back_a_booking(
    people, settings, caplog, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.FailingEmailBackend"
    creator, user = people
    session = SessionFactory(creator=creator, price=Decimal("0.00"))
    with (
        caplog.at_level(logging.ERROR, logger="backend.services.notifications"),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 201
    assert len(callbacks) == 2
    booking = Booking.objects.get()
    assert booking.pk == response.json()["id"]
    assert booking.status == "confirmed"
    failures = [r.getMessage() for r in caplog.records if r.name.endswith("notifications")]
    assert failures == [
        f"booking email booked for booking {booking.pk} to pat@example.com failed",
        f"booking email creator_new_booking for booking {booking.pk} to host@example.com failed",
    ]

    # Cancelling with the server still down works too.
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200
    booking.refresh_from_db()
    assert booking.status == "cancelled"
