"""The audit trail: every change of a booking writes exactly one BookingEvent, with its actor.

API, Stripe webhook, management command: each kind of change is made here and the events are
counted; a refused change writes none. `GET /api/bookings/{id}/events/` shows them to the
booking's user and the session's creator only.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from backend.models import Booking, BookingEvent
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import deliver, pay, start_payment
from backend.tests.support import auth_client, expire_hold

pytestmark = pytest.mark.django_db


def events_of(booking: Booking) -> list[tuple]:
    return list(
        BookingEvent.objects.filter(booking=booking)
        .order_by("id")
        .values_list("reason", "actor_id", "from_status", "to_status", "to_payment_status")
    )


def test_booking_a_free_session_writes_one_created_event(user):
    session = SessionFactory(price=Decimal("0"))
    response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    booking = Booking.objects.get(pk=response.json()["id"])
    assert events_of(booking) == [("created", user.pk, "", "confirmed", "not_required")]


def test_the_event_carries_the_request_id(user):
    session = SessionFactory(price=Decimal("0"))
    response = auth_client(user).post(
        "/api/bookings/", {"session": session.pk}, HTTP_X_REQUEST_ID="req-audit-42"
    )
    event = BookingEvent.objects.get(booking_id=response.json()["id"])
    assert event.request_id == "req-audit-42"


def test_a_refused_booking_writes_no_event(user):
    session = SessionFactory(capacity=1)
    BookingFactory(session=session, seats=1)
    before = BookingEvent.objects.count()
    response = auth_client(user).post("/api/bookings/", {"session": session.pk})
    assert response.status_code == 409
    assert BookingEvent.objects.count() == before


def test_creator_confirm_and_user_cancel_each_write_one_event(user):
    session = SessionFactory(price=Decimal("0"))
    booking = BookingFactory(
        session=session, user=user, status="pending", payment_status="not_required"
    )
    creator_client = auth_client(session.creator)
    assert creator_client.post(f"/api/bookings/{booking.pk}/confirm/").status_code == 200
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    assert events_of(booking) == [
        ("confirmed", session.creator.pk, "pending", "confirmed", "not_required"),
        ("cancelled_by_owner", user.pk, "confirmed", "cancelled", "not_required"),
    ]


def test_denied_changes_write_no_event(user):
    booking = BookingFactory(user=user)
    stranger = auth_client(UserFactory())
    assert stranger.post(f"/api/bookings/{booking.pk}/cancel/").status_code == 404
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/confirm/").status_code == 403
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 409
    assert [event[0] for event in events_of(booking)] == ["cancelled_by_owner"]


def test_a_seat_change_records_seats_before_and_after(user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid", seats=1)
    response = auth_client(user).patch(f"/api/bookings/{booking.pk}/", {"seats": 3})
    assert response.status_code == 200
    event = BookingEvent.objects.get(booking=booking)
    assert (event.reason, event.seats_before, event.seats_after) == ("seats_changed", 1, 3)


def test_the_expiry_command_writes_one_system_event_per_booking():
    stale = BookingFactory(status="pending", payment_status="unpaid")
    fresh = BookingFactory(status="pending", payment_status="unpaid")
    expire_hold(stale)
    call_command("expire_bookings")
    call_command("expire_bookings")
    assert events_of(stale) == [("hold_expired", None, "pending", "expired", "unpaid")]
    assert events_of(fresh) == []


def test_a_stale_hold_touched_by_its_user_is_expired_once_and_refused(user):
    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    expire_hold(booking)
    response = auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert (response.status_code, response.json()["code"]) == (409, "expired")
    assert events_of(booking) == [("hold_expired", None, "pending", "expired", "unpaid")]


def test_a_stripe_webhook_payment_writes_one_event_without_actor(fake_stripe, api_client, user):
    session = SessionFactory(price=Decimal("25.00"))
    booking = Booking.objects.get(
        pk=auth_client(user).post("/api/bookings/", {"session": session.pk}).json()["id"]
    )
    intent = fake_stripe.succeed(start_payment(user, booking))
    payload, signature = FakeStripe.signed_event("payment_intent.succeeded", intent)
    deliver(api_client, payload, signature)
    deliver(api_client, payload, signature)  # a redelivery changes nothing
    assert events_of(booking) == [
        ("created", user.pk, "", "pending", "unpaid"),
        ("paid", None, "pending", "confirmed", "paid"),
    ]


def test_a_refund_on_cancel_writes_the_cancellation_and_the_refund(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    session = SessionFactory(price=Decimal("25.00"), start_time=timezone.now() + timedelta(days=5))
    booking = Booking.objects.get(
        pk=auth_client(user).post("/api/bookings/", {"session": session.pk}).json()["id"]
    )
    pay(fake_stripe, user, booking)
    with django_capture_on_commit_callbacks(execute=True):  # the refund task, after commit
        assert auth_client(user).post(f"/api/bookings/{booking.pk}/cancel/").status_code == 200
    assert [event[0] for event in events_of(booking)] == [
        "created",
        "paid",
        "cancelled_by_owner",
        "refunded",
    ]


def test_events_endpoint_for_the_user_and_the_creator_only(user, django_assert_num_queries):
    session = SessionFactory(price=Decimal("0"))
    booking_id = auth_client(user).post("/api/bookings/", {"session": session.pk}).json()["id"]
    auth_client(user).post(f"/api/bookings/{booking_id}/cancel/")
    url = f"/api/bookings/{booking_id}/events/"

    client = auth_client(user)
    # JWT user + visibility + count + page.
    with django_assert_num_queries(4):
        body = client.get(url).json()
    assert body["count"] == 2
    first, second = body["results"]
    assert (first["reason"], first["actor"]["id"], first["to_status"]) == (
        "created",
        user.pk,
        "confirmed",
    )
    assert (second["reason"], second["from_status"], second["to_status"]) == (
        "cancelled_by_owner",
        "confirmed",
        "cancelled",
    )
    assert auth_client(session.creator).get(url).json()["count"] == 2
    stranger = auth_client(UserFactory()).get(url)
    assert (stranger.status_code, stranger.json()["code"]) == (404, "not_found")
    assert auth_client(UserFactory(is_staff=True)).get(url).status_code == 404
