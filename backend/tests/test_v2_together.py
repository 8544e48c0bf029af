"""Where the v2 features meet: a reschedule frees seats for the waiting list and tells
integrators; a waitlist offer is an outgoing event; the calendar SEQUENCE grows across a move
to a session that changed more often than the old one."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import WaitlistEntry
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client
from backend.tests.webhook_support import Receiver

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def subscribe(owner, url: str, events: list[str]) -> None:
    response = auth_client(owner).post(
        "/api/webhooks/", {"url": url, "events": events}, format="json"
    )
    assert response.status_code == 201, response.content


def sequence_of(user, booking) -> int:
    ics = auth_client(user).get(f"/api/bookings/{booking.pk}/calendar.ics").content.decode()
    found = re.search(r"^SEQUENCE:(\d+)", ics, re.M)
    assert found is not None, ics
    return int(found.group(1))


def test_a_reschedule_offers_the_freed_seat_and_sends_one_event_each(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory()
    subscribe(creator, receiver.url, ["booking.rescheduled", "waitlist.offered"])
    source = SessionFactory(creator=creator, price=Decimal("0"), capacity=1)
    target = SessionFactory(
        creator=creator,
        price=Decimal("0"),
        capacity=3,
        start_time=timezone.now() + timedelta(days=10),
    )
    mover = UserFactory()
    booking = BookingFactory(
        session=source, user=mover, status="confirmed", payment_status="not_required"
    )
    waiter = UserFactory()
    assert auth_client(waiter).post(f"/api/sessions/{source.pk}/waitlist/").status_code == 201

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(mover).post(
            f"/api/bookings/{booking.pk}/reschedule/", {"session": target.pk}, format="json"
        )
    assert response.status_code == 200, response.json()

    entry = WaitlistEntry.objects.get(user=waiter, session=source)
    # A free session: the freed seat is the waiter's at once.
    assert (entry.status, entry.booking.status) == ("booked", "confirmed")
    received = [json.loads(request.body) for request in receiver.received]
    assert [payload["type"] for payload in received] == [
        "booking.rescheduled",
        "waitlist.offered",
    ]
    moved, offered = (payload["data"] for payload in received)
    assert moved["booking"]["id"] == booking.pk
    assert moved["booking"]["session"]["id"] == target.pk
    assert moved["previous_session"]["id"] == source.pk
    assert offered["waitlist_entry"]["id"] == entry.pk
    assert offered["waitlist_entry"]["user"]["id"] == waiter.pk
    assert offered["booking"]["id"] == entry.booking_id


def test_the_calendar_sequence_grows_across_a_move_to_a_busier_session(
    django_capture_on_commit_callbacks,
):
    creator = CreatorFactory()
    source = SessionFactory(creator=creator, price=Decimal("0"), capacity=2)
    target = SessionFactory(
        creator=creator,
        price=Decimal("0"),
        capacity=2,
        start_time=timezone.now() + timedelta(days=10),
    )
    # The target was moved and re-placed a few times before: its own SEQUENCE is ahead.
    for hours in (1, 2, 3, 4):
        response = auth_client(creator).patch(
            f"/api/sessions/{target.pk}/",
            {"start_time": (target.start_time + timedelta(hours=hours)).isoformat()},
            format="json",
        )
        assert response.status_code == 200, response.json()
    user = UserFactory()
    booking = BookingFactory(
        session=source, user=user, status="confirmed", payment_status="not_required"
    )
    before = sequence_of(user, booking)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(user).post(
            f"/api/bookings/{booking.pk}/reschedule/", {"session": target.pk}, format="json"
        )
    assert response.status_code == 200, response.json()
    after_move = sequence_of(user, booking)
    assert after_move == before + 1
    # And it keeps growing with the new session's changes.
    response = auth_client(creator).patch(
        f"/api/sessions/{target.pk}/", {"location": "Room 2"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert sequence_of(user, booking) == after_move + 1
