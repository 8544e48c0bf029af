"""The creator dashboard: exact figures on a seeded scenario, fill rate, lists."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from backend.models import Session
from backend.tests.factories import SessionFactory, UserFactory
from backend.tests.support import auth_client
from backend.tests.support.dashboards import CREATOR_URL, P, S, book, refund_row

pytestmark = pytest.mark.django_db


# --- creator dashboard ------------------------------------------------------------------------


@pytest.fixture
def creator_world(creator):
    now = timezone.now()
    ago = {"minutes": lambda n: now - timedelta(minutes=n), "days": lambda n: now - timedelta(n)}
    make = SessionFactory
    s = {
        "draft": make(creator=creator, status=Session.Status.DRAFT, title="draft"),
        "p1": make(creator=creator, title="p1", capacity=10, price=Decimal("20.00"),
                   start_time=now + timedelta(days=2)),
        "p2": make(creator=creator, title="p2", capacity=5, price=Decimal("0.00"),
                   start_time=now + timedelta(days=1)),
        "live": make(creator=creator, title="live", capacity=4, price=Decimal("0.00"),
                     start_time=now - timedelta(minutes=10)),
        "s1": make(creator=creator, title="s1", capacity=10, price=Decimal("30.00"),
                   currency="EUR", start_time=now - timedelta(days=10)),
        "s2": make(creator=creator, title="s2", capacity=8, price=Decimal("15.00"),
                   currency="usd", start_time=now - timedelta(days=3)),
        "c1": make(creator=creator, title="c1", capacity=12, status=Session.Status.CANCELLED,
                   start_time=now - timedelta(days=4)),
        "past_draft": make(creator=creator, title="past draft", capacity=50,
                           status=Session.Status.DRAFT, start_time=now - timedelta(days=2)),
    }  # fmt: skip
    attendee = UserFactory(first_name="Grace", last_name="Hopper")
    b = {
        "p1_paid": book(s["p1"], user=attendee, seats=2, payment_status=P.PAID,
                        confirmed_at=ago["days"](1), created_at=ago["minutes"](1)),
        "p1_pending": book(s["p1"], status=S.PENDING, payment_status=P.UNPAID,
                           created_at=ago["minutes"](5)),
        "p1_stale": book(s["p1"], seats=3, status=S.PENDING, payment_status=P.UNPAID,
                         created_at=ago["minutes"](20)),
        "p1_refunded": book(s["p1"], status=S.CANCELLED, payment_status=P.REFUNDED,
                            confirmed_at=ago["days"](2), created_at=ago["days"](2)),
        "p1_expired": book(s["p1"], status=S.EXPIRED, payment_status=P.FAILED,
                           created_at=ago["days"](3)),
        "p2_a": book(s["p2"], seats=3, created_at=ago["minutes"](2)),
        "p2_b": book(s["p2"], seats=2, created_at=ago["minutes"](3)),
        "live": book(s["live"], created_at=ago["minutes"](30)),
        "s1_paid": book(s["s1"], seats=4, payment_status=P.PAID, confirmed_at=ago["days"](40),
                        created_at=ago["days"](40)),
        "s1_refunded": book(s["s1"], seats=2, status=S.CANCELLED, payment_status=P.REFUNDED,
                            confirmed_at=ago["days"](41), created_at=ago["days"](41)),
        "s2_recent": book(s["s2"], seats=2, payment_status=P.PAID,
                          confirmed_at=ago["days"](5), created_at=ago["days"](5)),
        "s2_old": book(s["s2"], payment_status=P.PAID, confirmed_at=ago["days"](40),
                       created_at=ago["days"](42)),
        "c1": book(s["c1"], amount=Decimal("25.00"), status=S.CANCELLED,
                   payment_status=P.REFUNDED, created_at=ago["days"](6)),
    }  # fmt: skip
    refund_row(b["s1_paid"], "20.00")  # partial refund: 120 - 20
    refund_row(b["s1_refunded"], "60.00")
    refund_row(b["p1_refunded"], "20.00")

    # Another creator's sessions and bookings: none of this is ours.
    other = make(capacity=10, start_time=now - timedelta(days=1), price=Decimal("100.00"))
    book(other, seats=10, payment_status=P.PAID, confirmed_at=now, created_at=now)
    book(make(start_time=now + timedelta(hours=1)), payment_status=P.PAID, created_at=now)
    make(status=Session.Status.DRAFT)
    return {"sessions": s, "bookings": b, "attendee": attendee}


def test_creator_dashboard_exact_figures(creator, creator_world):
    s, b, attendee = creator_world["sessions"], creator_world["bookings"], creator_world["attendee"]
    response = auth_client(creator).get(CREATOR_URL)
    assert response.status_code == 200
    data = response.json()

    assert data["stats"] == {
        "sessions": {"draft": 2, "published": 5, "cancelled": 1},
        "upcoming_sessions": 3,  # p2, p1 and live (in progress)
        "confirmed_attendees": 15,  # p1 2 + p2 5 + live 1 + s1 4 + s2 3
        "revenue": [
            {"currency": "EUR", "amount": "100.00"},  # 120 - 20 refunded; 60 refunded in full
            {"currency": "USD", "amount": "85.00"},  # 40 + 30 + 15
        ],
        # Paid in the last 30 days (confirmed_at): p1_paid 40 + s2_recent 30; EUR's were older.
        "revenue_last_30_days": [{"currency": "USD", "amount": "70.00"}],
        "fill_rate": 0.3889,  # (4 + 3) confirmed seats / (10 + 8) capacity, s1 and s2
        # Issue 16: nothing transferred yet; the 10 % fee net of refunds (EUR 12 on 120, 10
        # after 20 of it came back), the creator's share the rest: pending + fees == revenue.
        "earnings": {
            "pending": [
                {"currency": "EUR", "amount": "90.00"},
                {"currency": "USD", "amount": "76.50"},
            ],
            "transferred": [
                {"currency": "EUR", "amount": "0.00"},
                {"currency": "USD", "amount": "0.00"},
            ],
        },
        "platform_fees": [
            {"currency": "EUR", "amount": "10.00"},
            {"currency": "USD", "amount": "8.50"},
        ],
    }

    upcoming = data["upcoming_sessions"]
    assert [
        (x["id"], x["seats_taken"], x["seats_left"], x["bookings_count"]) for x in upcoming
    ] == [
        (s["live"].pk, 1, 3, 1),
        (s["p2"].pk, 5, 0, 2),
        (s["p1"].pk, 3, 7, 2),  # 2 confirmed + 1 pending within the hold
    ]
    p1 = upcoming[2]
    assert p1 == {
        "id": s["p1"].pk,
        "title": "p1",
        "status": "published",
        "start_time": p1["start_time"],
        "end_time": s["p1"].end_time.isoformat().replace("+00:00", "Z"),
        "price": "20.00",
        "currency": "USD",
        "capacity": 10,
        "seats_taken": 3,
        "seats_left": 7,
        "bookings_count": 2,
    }

    recent = data["recent_bookings"]
    assert [x["id"] for x in recent] == [
        b[name].pk
        for name in (
            "p1_paid",
            "p2_a",
            "p2_b",
            "p1_pending",
            "p1_stale",
            "live",
            "p1_refunded",
            "p1_expired",
            "s2_recent",
            "c1",
        )
    ]
    assert recent[0] == {
        "id": b["p1_paid"].pk,
        "status": "confirmed",
        "payment_status": "paid",
        "seats": 2,
        "amount": "40.00",
        "currency": "USD",
        "created_at": recent[0]["created_at"],
        "session": {"id": s["p1"].pk, "title": "p1", "start_time": p1["start_time"]},
        "user": {
            "id": attendee.pk,
            "username": attendee.username,
            "first_name": "Grace",
            "last_name": "Hopper",
        },
    }


def test_creator_dashboard_without_past_sessions_has_null_fill_rate(creator, creator_client):
    SessionFactory(creator=creator, start_time=timezone.now() + timedelta(days=1))
    # A past draft and a past cancelled session are not "past published" sessions.
    for status in (Session.Status.DRAFT, Session.Status.CANCELLED):
        SessionFactory(
            creator=creator, status=status, start_time=timezone.now() - timedelta(days=1)
        )
    stats = creator_client.get(CREATOR_URL).json()["stats"]
    assert stats == {
        "sessions": {"draft": 1, "published": 1, "cancelled": 1},
        "upcoming_sessions": 1,
        "confirmed_attendees": 0,
        "revenue": [],
        "revenue_last_30_days": [],
        "fill_rate": None,
        "earnings": {"pending": [], "transferred": []},
        "platform_fees": [],
    }


def test_fill_rate_of_past_session_without_bookings_is_zero(creator, creator_client):
    SessionFactory(creator=creator, start_time=timezone.now() - timedelta(days=1))
    assert creator_client.get(CREATOR_URL).json()["stats"]["fill_rate"] == 0.0


def test_creator_dashboard_lists_next_ten_sessions(creator, creator_client):
    now = timezone.now()
    sessions = [
        SessionFactory(creator=creator, start_time=now + timedelta(days=day))
        for day in range(12, 0, -1)
    ]
    data = creator_client.get(CREATOR_URL).json()
    assert data["stats"]["upcoming_sessions"] == 12
    assert [x["id"] for x in data["upcoming_sessions"]] == [x.pk for x in sessions[::-1][:10]]
