"""Dashboards: exact figures on seeded scenarios, permissions, schema, and a fixed query count."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import Booking, Payment, Session, User
from backend.tests.factories import (
    BookingFactory,
    CreatorFactory,
    PaymentFactory,
    SessionFactory,
    UserFactory,
)
from backend.tests.support import auth_client, backdate

pytestmark = pytest.mark.django_db

USER_URL = "/api/dashboard/user/"
CREATOR_URL = "/api/dashboard/creator/"

S = Booking.Status
P = Booking.PaymentStatus


def book(session, *, user=None, created_at=None, **fields):
    """A booking with its `created_at` forced (it is auto_now_add)."""
    booking = BookingFactory(session=session, user=user or UserFactory(), **fields)
    if created_at is not None:
        backdate(booking, created_at=created_at)
    return booking


def refund_row(booking, amount, status="succeeded"):
    return PaymentFactory(
        booking=booking, kind=Payment.Kind.REFUND, amount=Decimal(amount), status=status
    )


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


# --- permissions and schema -------------------------------------------------------------------


@pytest.mark.parametrize("url", [USER_URL, CREATOR_URL])
def test_anonymous_gets_401(api_client, url):
    response = api_client.get(url)
    assert response.status_code == 401
    assert response.json()["detail"]


def test_user_on_creator_dashboard_gets_403(user_client):
    response = user_client.get(CREATOR_URL)
    assert response.status_code == 403
    assert response.json()["detail"] == "Only creators can do this. Become a creator first."


def test_creator_has_a_user_dashboard_too(creator, creator_client):
    data = creator_client.get(USER_URL).json()
    assert data["profile"]["role"] == "creator"


def test_dashboards_are_read_only(user_client, creator_client):
    assert user_client.post(USER_URL, {}).status_code == 405
    assert creator_client.delete(CREATOR_URL).status_code == 405


def test_swagger_describes_both_dashboards(api_client):
    schema = api_client.get("/swagger.json").json()
    user_ref = schema["paths"]["/dashboard/user/"]["get"]["responses"]["200"]["schema"]["$ref"]
    creator_ref = schema["paths"]["/dashboard/creator/"]["get"]["responses"]["200"]["schema"][
        "$ref"
    ]
    assert {"200", "401", "403"} <= set(schema["paths"]["/dashboard/creator/"]["get"]["responses"])
    definitions = schema["definitions"]
    user_def = definitions[user_ref.rsplit("/", 1)[-1]]
    creator_def = definitions[creator_ref.rsplit("/", 1)[-1]]
    assert set(user_def["properties"]) == {
        "profile",
        "stats",
        "upcoming_bookings",
        "past_bookings",
    }
    assert set(creator_def["properties"]) == {"stats", "upcoming_sessions", "recent_bookings"}
    creator_stats = definitions["CreatorDashboardStats"]["properties"]
    assert set(creator_stats) == {
        "sessions",
        "upcoming_sessions",
        "confirmed_attendees",
        "revenue",
        "revenue_last_30_days",
        "fill_rate",
    }
    assert creator_stats["fill_rate"]["x-nullable"] is True
    booking = definitions["UserDashboardBooking"]["properties"]
    assert booking["meeting_url"]["x-nullable"] is True
    assert set(definitions["DashboardMoney"]["properties"]) == {"currency", "amount"}


# --- a fixed number of queries ----------------------------------------------------------------


def seed_many(*, creator: User, booker: User, n_sessions: int) -> None:
    """`n_sessions` sessions of `creator` in every state, each booked by `booker` and others."""
    now = timezone.now()
    others = User.objects.bulk_create(
        [User(username=f"bulk-{n_sessions}-{i}", email=f"b{i}@example.com") for i in range(3)]
    )
    statuses = [Session.Status.PUBLISHED, Session.Status.PUBLISHED, Session.Status.DRAFT,
                Session.Status.CANCELLED]  # fmt: skip
    sessions = Session.objects.bulk_create(
        [
            Session(
                creator=creator,
                title=f"bulk {i}",
                price=Decimal("10.00"),
                currency=("USD", "EUR", "gbp")[i % 3],
                duration_minutes=60,
                start_time=now + timedelta(days=(i % 7) - 3, hours=i),
                capacity=20,
                status=statuses[i % 4],
            )
            for i in range(n_sessions)
        ]
    )
    booking_states = [
        (S.CONFIRMED, P.PAID),
        (S.PENDING, P.UNPAID),
        (S.CANCELLED, P.REFUNDED),
        (S.EXPIRED, P.FAILED),
    ]
    bookings = Booking.objects.bulk_create(
        [
            Booking(
                session=session,
                user=attendee,
                seats=1 + j,
                status=booking_states[(i + j) % 4][0],
                payment_status=booking_states[(i + j) % 4][1],
                amount=Decimal("10.00") * (1 + j),
                currency=session.currency,
                confirmed_at=now,
            )
            for i, session in enumerate(sessions)
            for j, attendee in enumerate([booker, *others])
        ]
    )
    Payment.objects.bulk_create(
        [
            PaymentFactory.build(
                booking=booking,
                kind=Payment.Kind.REFUND,
                amount=Decimal("1.00"),
                currency=booking.currency,
            )
            for booking in bookings
            if booking.payment_status in (P.PAID, P.REFUNDED)
        ]
    )


@pytest.mark.parametrize(
    ("url", "expected_queries"),
    [(USER_URL, 5), (CREATOR_URL, 6)],
)
def test_dashboards_use_a_fixed_number_of_queries(url, expected_queries):
    counts = []
    for n_sessions in (1, 200):
        creator, booker = CreatorFactory(), UserFactory()
        seed_many(creator=creator, booker=booker, n_sessions=n_sessions)
        viewer = creator if url == CREATOR_URL else booker
        client = auth_client(viewer)
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(len(queries))
        if n_sessions == 200:
            body = response.json()
            listed = body["upcoming_bookings"] if url == USER_URL else body["recent_bookings"]
            assert len(listed) == (5 if url == USER_URL else 10)
    # The JWT user lookup, then the dashboard's own queries, with 1 session as with 200.
    assert counts == [expected_queries, expected_queries]
