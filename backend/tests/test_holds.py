"""Holds (CONTRACT.md, "Holds"): `hold_expires_at`, no fresh hold by cancel and re-book, and
MAX_UNPAID_BOOKINGS per user."""

from datetime import timedelta
from decimal import Decimal
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.core import mail
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from backend import booking_rules
from backend.models import Booking
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate, expire_hold

pytestmark = pytest.mark.django_db

BOOKINGS_URL = "/api/bookings/"


def paid_session(**fields):
    return SessionFactory(price=Decimal("20.00"), capacity=fields.pop("capacity", 10), **fields)


def book(client, session, seats=1):
    return client.post(BOOKINGS_URL, {"session": session.pk, "seats": seats})


def cancel(client, booking_id):
    return client.post(f"{BOOKINGS_URL}{booking_id}/cancel/")


def test_a_paid_booking_holds_its_seats_until_hold_expires_at(settings, user_client):
    settings.BOOKING_HOLD_MINUTES = 15
    session = paid_session(capacity=1)
    before = timezone.now()
    response = book(user_client, session)
    assert response.status_code == 201
    body = response.json()
    hold_end = parse_datetime(body["hold_expires_at"])
    booking = Booking.objects.get(pk=body["id"])
    assert hold_end == booking.hold_expires_at
    assert before + timedelta(minutes=15) <= hold_end <= timezone.now() + timedelta(minutes=15)
    assert booking_rules.seats_taken(session=session) == 1
    # The column decides, not created_at: one second past it the seat is free again.
    assert booking_rules.seats_taken(session=session, now=hold_end) == 0
    assert booking_rules.seats_taken(session=session, now=hold_end - timedelta(seconds=1)) == 1


def test_free_and_confirmed_bookings_show_no_hold(user_client):
    session = SessionFactory(price=Decimal("0.00"))
    body = book(user_client, session).json()
    assert body["status"] == "confirmed"
    assert body["hold_expires_at"] is None


def test_a_hold_that_ran_out_reads_expired_with_no_hold(user, user_client):
    session = paid_session()
    booking = Booking.objects.get(pk=book(user_client, session).json()["id"])
    expire_hold(booking)
    body = user_client.get(f"{BOOKINGS_URL}{booking.pk}/").json()
    assert (body["status"], body["hold_expires_at"]) == ("expired", None)


def test_the_hoarding_loop_keeps_the_first_expiry_and_the_fourth_hold_is_refused(
    settings, user, user_client
):
    """The review's loop: book, cancel, book again at once; then more sessions."""
    settings.MAX_UNPAID_BOOKINGS = 3
    session = paid_session()
    first = book(user_client, session).json()
    assert cancel(user_client, first["id"]).status_code == 200
    second = book(user_client, session).json()
    assert second["id"] != first["id"]
    assert second["hold_expires_at"] == first["hold_expires_at"]
    # And again: the cycle never buys time.
    assert cancel(user_client, second["id"]).status_code == 200
    third = book(user_client, session).json()
    assert third["hold_expires_at"] == first["hold_expires_at"]

    others = [paid_session(), paid_session()]
    for other in others:
        assert book(user_client, other).status_code == 201
    unpaid = Booking.objects.filter(user=user, status="pending").count()
    assert unpaid == 3
    fourth_session = paid_session()
    response = book(user_client, fourth_session)
    assert response.status_code == 409
    assert response.json()["code"] == "too_many_holds"
    assert not Booking.objects.filter(session=fourth_session).exists()
    assert Booking.objects.filter(user=user, status="pending").count() == 3


def test_after_the_inherited_hold_ran_out_a_new_booking_gets_a_fresh_hold(settings, user_client):
    settings.BOOKING_HOLD_MINUTES = 15
    session = paid_session()
    first = Booking.objects.get(pk=book(user_client, session).json()["id"])
    cancel(user_client, first.pk)
    backdate(first, hold_expires_at=timedelta(seconds=1))
    second = Booking.objects.get(pk=book(user_client, session).json()["id"])
    assert second.hold_expires_at > timezone.now() + timedelta(minutes=14)


def test_another_users_cancelled_hold_is_not_inherited(user_client):
    session = paid_session()
    someone = UserFactory()
    theirs = Booking.objects.get(pk=book(auth_client(someone), session).json()["id"])
    cancel(auth_client(someone), theirs.pk)
    backdate(theirs, hold_expires_at=timezone.now() + timedelta(minutes=2))
    mine = Booking.objects.get(pk=book(user_client, session).json()["id"])
    assert mine.hold_expires_at > timezone.now() + timedelta(minutes=10)


def test_holds_that_ran_out_or_were_paid_do_not_count_against_the_limit(settings, user):
    settings.MAX_UNPAID_BOOKINGS = 1
    client = auth_client(user)
    stale = BookingFactory(
        user=user, session=paid_session(), status="pending", payment_status="unpaid"
    )
    expire_hold(stale)
    BookingFactory(user=user, session=paid_session(), status="confirmed", payment_status="paid")
    assert book(client, paid_session()).status_code == 201
    response = book(client, paid_session())
    assert (response.status_code, response.json()["code"]) == (409, "too_many_holds")


def test_free_sessions_are_not_limited(settings, user):
    settings.MAX_UNPAID_BOOKINGS = 1
    client = auth_client(user)
    assert book(client, paid_session()).status_code == 201
    free = SessionFactory(price=Decimal("0.00"))
    assert book(client, free).status_code == 201


def test_the_booking_mail_names_the_inherited_end(user, django_capture_on_commit_callbacks):
    session = paid_session()
    client = auth_client(user)
    with django_capture_on_commit_callbacks(execute=True):
        first = Booking.objects.get(pk=book(client, session).json()["id"])
    cancel(client, first.pk)
    backdate(first, hold_expires_at=timezone.now() + timedelta(minutes=3))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        book(client, session)
    until = first.hold_expires_at.strftime("%Y-%m-%d %H:%M UTC")
    assert f"held until {until}" in mail.outbox[0].body


def test_the_migration_backfills_hold_expires_at_from_created_at(settings):
    settings.BOOKING_HOLD_MINUTES = 15
    pending = BookingFactory(status="pending", payment_status="unpaid")
    paid = BookingFactory(status="confirmed", payment_status="paid")
    free = BookingFactory(status="confirmed", payment_status="not_required")
    created = timezone.now() - timedelta(minutes=5)
    Booking.objects.update(created_at=created, hold_expires_at=None)
    migration = import_module("backend.migrations.0008_waitlist")
    migration.backfill_hold_expires_at(django_apps, None)
    for booking in (pending, paid):
        booking.refresh_from_db()
        assert booking.hold_expires_at == created + timedelta(minutes=15)
    free.refresh_from_db()
    assert free.hold_expires_at is None
    # Seats are counted exactly as before the column existed: 10 more minutes of hold.
    assert booking_rules.seats_taken(session=pending.session) == 1
    assert (
        booking_rules.seats_taken(session=pending.session, now=created + timedelta(minutes=15)) == 0
    )
