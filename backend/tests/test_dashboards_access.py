"""Dashboards: permissions, read-only, schema, and a fixed number of queries."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backend.models import Booking, Payment, Session, User
from backend.tests.factories import CreatorFactory, PaymentFactory, UserFactory
from backend.tests.support import auth_client
from backend.tests.support.dashboards import CREATOR_URL, USER_URL, P, S

pytestmark = pytest.mark.django_db


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
    assert set(creator_def["properties"]) == {
        "stats",
        "upcoming_sessions",
        "recent_bookings",
        "waiting_for_minimum",
    }
    creator_stats = definitions["CreatorDashboardStats"]["properties"]
    assert set(creator_stats) == {
        "sessions",
        "upcoming_sessions",
        "confirmed_attendees",
        "revenue",
        "revenue_last_30_days",
        "fill_rate",
        "earnings",
        "platform_fees",
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
                hold_expires_at=now + timedelta(minutes=15),
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
    # The creator's: + 2 for the payout earnings (issue 16), + 1 for the fee rate of these
    # bookings, made paid without a recorded fee, + 1 for the sessions waiting for their
    # minimum (issue 25).
    [(USER_URL, 5), (CREATOR_URL, 10)],
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
