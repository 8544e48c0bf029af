"""The user dashboard: exact figures on a seeded scenario, lists, edge cases."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.tests.factories import CreatorFactory, PaymentFactory, SessionFactory
from backend.tests.support import auth_client
from backend.tests.support.dashboards import USER_URL, P, S, book, refund_row

pytestmark = pytest.mark.django_db


# --- user dashboard ---------------------------------------------------------------------------


@pytest.fixture
def user_world(user):
    """`user`'s bookings in every state, plus other users' bookings that must not count."""
    now = timezone.now()
    creator = CreatorFactory(first_name="Ada", last_name="Lovelace")
    at = {
        "future1": now + timedelta(days=1),
        "future2": now + timedelta(days=2),
        "future3": now + timedelta(days=3),
        "future4": now + timedelta(days=4),
        "future5": now + timedelta(days=5),
        "live": now - timedelta(minutes=30),
        "past1": now - timedelta(days=10),
        "past2": now - timedelta(days=5),
    }
    s = {
        name: SessionFactory(creator=creator, start_time=start, title=name)
        for name, start in at.items()
    }
    s["future2"].price, s["future2"].currency = Decimal("10.00"), "EUR"
    s["past2"].price, s["past2"].currency = Decimal("40.00"), "eur"
    for session in (s["future2"], s["past2"]):
        session.save()

    b = {}
    b["paid_upcoming"] = book(
        s["future1"], user=user, seats=2, payment_status=P.PAID, confirmed_at=now
    )
    # The charge itself is not a refund: nothing to subtract.
    PaymentFactory(booking=b["paid_upcoming"], amount=Decimal("50.00"))
    b["pending_in_hold"] = book(
        s["future2"],
        user=user,
        status=S.PENDING,
        payment_status=P.UNPAID,
        created_at=now - timedelta(minutes=5),
    )
    b["pending_past_hold"] = book(
        s["future3"],
        user=user,
        status=S.PENDING,
        payment_status=P.UNPAID,
        created_at=now - timedelta(minutes=20),
    )
    b["live_free"] = book(s["live"], user=user, amount=Decimal("0.00"))
    b["past_partial_refund"] = book(
        s["past1"], user=user, payment_status=P.PAID, confirmed_at=now - timedelta(days=11)
    )
    refund_row(b["past_partial_refund"], "5.00")
    refund_row(b["past_partial_refund"], "3.00", status="pending")  # not money back yet
    b["past_eur"] = book(s["past2"], user=user, payment_status=P.PAID)
    b["cancelled_refunded"] = book(
        s["future4"],
        user=user,
        amount=Decimal("30.00"),
        status=S.CANCELLED,
        payment_status=P.REFUNDED,
    )
    refund_row(b["cancelled_refunded"], "30.00")
    # Cancelled, Stripe has not confirmed the refund yet: still money spent.
    b["cancelled_refund_pending"] = book(
        s["future5"],
        user=user,
        amount=Decimal("15.00"),
        currency="GBP",
        status=S.CANCELLED,
        payment_status=P.PAID,
    )
    b["expired"] = book(s["future3"], user=user, status=S.EXPIRED, payment_status=P.UNPAID)
    b["failed"] = book(
        s["future5"],
        user=user,
        currency="JPY",
        amount=Decimal("3000.00"),
        status=S.EXPIRED,
        payment_status=P.FAILED,
    )
    # Someone else's bookings on the same sessions.
    book(s["future1"], payment_status=P.PAID, seats=3)
    book(s["past1"], payment_status=P.PAID)
    book(s["future4"], status=S.CANCELLED, payment_status=P.REFUNDED)
    return {"sessions": s, "bookings": b, "creator": creator}


def test_user_dashboard_exact_figures(user, user_world):
    s, b, creator = user_world["sessions"], user_world["bookings"], user_world["creator"]
    response = auth_client(user).get(USER_URL)
    assert response.status_code == 200
    data = response.json()

    assert data["profile"] == {
        "id": user.pk,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "role": "user",
        "avatar": None,
        "bio": "",
        "oauth_provider": None,
        "timezone": "UTC",
        "date_joined": data["profile"]["date_joined"],
    }
    assert data["stats"] == {
        "upcoming": 3,  # paid_upcoming, pending_in_hold, live_free
        "past": 2,  # past_partial_refund, past_eur
        "cancelled": 2,
        "total_spent": [
            {"currency": "EUR", "amount": "40.00"},
            {"currency": "GBP", "amount": "15.00"},
            {"currency": "USD", "amount": "70.00"},  # 50 + (25 - 5 refunded)
        ],
    }
    assert [item["id"] for item in data["upcoming_bookings"]] == [
        b["live_free"].pk,
        b["paid_upcoming"].pk,
        b["pending_in_hold"].pk,
    ]
    assert [item["id"] for item in data["past_bookings"]] == [
        b["past_eur"].pk,
        b["past_partial_refund"].pk,
    ]

    paid = data["upcoming_bookings"][1]
    session = s["future1"]
    assert paid == {
        "id": b["paid_upcoming"].pk,
        "status": "confirmed",
        "payment_status": "paid",
        "seats": 2,
        "amount": "50.00",
        "currency": "USD",
        "session": {
            "id": session.pk,
            "title": "future1",
            "start_time": paid["session"]["start_time"],
            "end_time": paid["session"]["end_time"],
            "creator": {
                "id": creator.pk,
                "username": creator.username,
                "first_name": "Ada",
                "last_name": "Lovelace",
                "avatar": None,
            },
        },
        "meeting_url": "https://meet.example.com/room",
    }
    assert paid["session"]["start_time"] == session.start_time.isoformat().replace("+00:00", "Z")
    assert paid["session"]["end_time"] == session.end_time.isoformat().replace("+00:00", "Z")
    # The meeting link is only for confirmed bookings.
    pending = data["upcoming_bookings"][2]
    assert (pending["status"], pending["meeting_url"], pending["currency"]) == (
        "pending",
        None,
        "EUR",
    )
    assert data["past_bookings"][0]["currency"] == "EUR"  # stored lower case


def test_user_dashboard_lists_next_five_and_last_five(user):
    now = timezone.now()
    upcoming = [
        book(SessionFactory(start_time=now + timedelta(days=day)), user=user)
        for day in (7, 2, 5, 1, 3, 6, 4)
    ]
    past = [
        book(SessionFactory(start_time=now - timedelta(days=day)), user=user)
        for day in (7, 2, 5, 1, 3, 6, 4)
    ]
    data = auth_client(user).get(USER_URL).json()
    by_start = sorted(upcoming, key=lambda booking: booking.session.start_time)
    assert [item["id"] for item in data["upcoming_bookings"]] == [x.pk for x in by_start[:5]]
    latest = sorted(past, key=lambda booking: booking.session.start_time, reverse=True)
    assert [item["id"] for item in data["past_bookings"]] == [x.pk for x in latest[:5]]
    assert (data["stats"]["upcoming"], data["stats"]["past"]) == (7, 7)


def test_user_dashboard_of_new_user_is_empty(user_client, user):
    data = user_client.get(USER_URL).json()
    assert data["stats"] == {"upcoming": 0, "past": 0, "cancelled": 0, "total_spent": []}
    assert (data["upcoming_bookings"], data["past_bookings"]) == ([], [])


def test_fully_refunded_currency_is_listed_at_zero(user, user_client):
    session = SessionFactory(price=Decimal("12.50"), currency="chf")
    booking = book(session, user=user, status=S.CANCELLED, payment_status=P.REFUNDED)
    refund_row(booking, "12.50")
    stats = user_client.get(USER_URL).json()["stats"]
    assert stats["total_spent"] == [{"currency": "CHF", "amount": "0.00"}]
    assert (stats["upcoming"], stats["past"], stats["cancelled"]) == (0, 0, 1)


def test_session_ending_now_is_past_and_one_in_progress_is_upcoming(user):
    now = timezone.now()
    ended = book(
        SessionFactory(start_time=now - timedelta(minutes=61), duration_minutes=60), user=user
    )
    running = book(
        SessionFactory(start_time=now - timedelta(minutes=59), duration_minutes=60), user=user
    )
    data = auth_client(user).get(USER_URL).json()
    assert [item["id"] for item in data["upcoming_bookings"]] == [running.pk]
    assert [item["id"] for item in data["past_bookings"]] == [ended.pk]
