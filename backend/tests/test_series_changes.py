"""PATCH and DELETE /api/sessions/series/{id}/: only the dates not yet started change; paid
bookings of cancelled dates are refunded once; one date can still be changed on its own."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend.models import Booking, Session, SessionSeries
from backend.tests.factories import BookingFactory, UserFactory
from backend.tests.payments_support import book, pay
from backend.tests.payouts_support import connected
from backend.tests.series_support import (
    SERIES_URL,
    first_weekday,
    last_sunday,
    local,
    next_year,
    series_payload,
    series_url,
)
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

MONDAY = 0


def make_series(client, **overrides) -> tuple[SessionSeries, list[Session]]:
    response = client.post(SERIES_URL, series_payload(**overrides), format="json")
    assert response.status_code == 201, response.content
    series = SessionSeries.objects.get(pk=response.json()["id"])
    return series, list(series.sessions.order_by("series_position"))


def start_in_the_past(*sessions: Session) -> None:
    """These dates have started (what time passing would do)."""
    Session.objects.filter(pk__in=[s.pk for s in sessions]).update(
        start_time=timezone.now() - timedelta(hours=1)
    )


def snapshot() -> tuple[list, list, list]:
    return (
        list(Session.objects.order_by("pk").values()),
        list(Booking.objects.order_by("pk").values()),
        list(SessionSeries.objects.order_by("pk").values()),
    )


def fresh(sessions: list[Session]) -> list[Session]:
    by_id = Session.objects.in_bulk([s.pk for s in sessions])
    return [by_id[s.pk] for s in sessions]


def test_patch_changes_only_upcoming_dates_and_prices_apply_to_new_bookings(
    creator, creator_client
):
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=4")
    started, upcoming = dates[0], dates[1:]
    booker = UserFactory()
    booked = BookingFactory(
        session=upcoming[0], user=booker, amount=Decimal("15.00"), currency="EUR"
    )
    start_in_the_past(started)
    started_before = Session.objects.filter(pk=started.pk).values().get()

    response = creator_client.patch(
        series_url(series.pk),
        {"title": "Evening yoga II", "price": "20.00", "capacity": 30},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert [s["title"] for s in body["sessions"]] == ["Evening yoga"] + ["Evening yoga II"] * 3
    assert [s["price"] for s in body["sessions"]] == ["15.00", "20.00", "20.00", "20.00"]
    assert [s["capacity"] for s in body["sessions"]] == [12, 30, 30, 30]
    assert Session.objects.filter(pk=started.pk).values().get() == started_before
    booked.refresh_from_db()
    assert (booked.amount, booked.currency, booked.status) == (Decimal("15.00"), "EUR", "confirmed")
    # A new booking pays the new price.
    new = auth_client(UserFactory()).post(
        "/api/bookings/", {"session": upcoming[0].pk}, format="json"
    )
    assert new.status_code == 201, new.content
    assert new.json()["amount"] == "20.00"


def test_patch_skips_dates_cancelled_on_their_own(creator_client):
    series, dates = make_series(creator_client, rrule="FREQ=DAILY;COUNT=3")
    # Nobody booked it: the session DELETE removes that date. The other one is cancelled.
    assert creator_client.delete(f"/api/sessions/{dates[1].pk}/").status_code == 204
    response = creator_client.patch(
        f"/api/sessions/{dates[2].pk}/", {"status": "cancelled"}, format="json"
    )
    assert response.status_code == 200, response.content

    response = creator_client.patch(series_url(series.pk), {"capacity": 5}, format="json")

    assert response.status_code == 200, response.content
    rows = {s["id"]: s for s in response.json()["sessions"]}
    assert set(rows) == {dates[0].pk, dates[2].pk}  # the deleted date is gone
    assert (rows[dates[0].pk]["capacity"], rows[dates[0].pk]["status"]) == (5, "published")
    assert (rows[dates[2].pk]["capacity"], rows[dates[2].pk]["status"]) == (12, "cancelled")
    # Positions still say where each date was in the series.
    assert rows[dates[2].pk]["series_position"] == {"index": 3, "count": 3}


def test_one_date_can_be_edited_on_its_own(creator_client):
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=3")
    moved = dates[1].start_time + timedelta(hours=2)
    response = creator_client.patch(
        f"/api/sessions/{dates[1].pk}/",
        {"title": "Special edition", "start_time": moved.isoformat()},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["series"] == series.pk
    assert response.json()["series_position"] == {"index": 2, "count": 3}
    body = creator_client.get(series_url(series.pk)).json()
    assert [s["title"] for s in body["sessions"]] == [
        "Evening yoga",
        "Special edition",
        "Evening yoga",
    ]
    assert Session.objects.get(pk=dates[1].pk).start_time == moved


def test_patch_refused_by_one_date_changes_nothing(creator_client):
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=3")
    BookingFactory(session=dates[2], seats=3)
    before = snapshot()

    response = creator_client.patch(
        series_url(series.pk), {"capacity": 2, "title": "Smaller"}, format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json()["code"]
    assert snapshot() == before


@pytest.mark.parametrize(
    "body",
    [
        {"rrule": "FREQ=DAILY;COUNT=2"},
        {"timezone": "Asia/Tokyo"},
        {"start_time": "2030-01-01T10:00:00Z"},
        {"status": "cancelled"},
        {"local_start": "2030-01-01T10:00:00+01:00"},
        {"capacity": 0},
        {"is_online": False, "location": ""},
    ],
)
def test_bad_patch_is_400_and_changes_nothing(creator_client, body):
    series, _dates = make_series(creator_client)
    before = snapshot()
    response = creator_client.patch(series_url(series.pk), body, format="json")
    assert response.status_code == 400, response.content
    assert set(body) & set(response.json()["errors"])
    assert snapshot() == before


def test_patch_of_a_finished_series_is_409(creator_client):
    series, dates = make_series(creator_client, rrule="FREQ=DAILY;COUNT=2")
    start_in_the_past(*dates)
    before = snapshot()
    response = creator_client.patch(series_url(series.pk), {"title": "Too late"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "series_finished"
    assert snapshot() == before


def test_moving_the_series_keeps_wall_clock_time_across_dst_and_tells_attendees(
    creator_client, django_capture_on_commit_callbacks
):
    year = next_year()
    first_monday = first_weekday(year, 10, MONDAY)
    series, dates = make_series(
        creator_client, local_start=f"{first_monday}T18:30", rrule="FREQ=WEEKLY;COUNT=6"
    )
    start_in_the_past(dates[0])
    started_at = Session.objects.get(pk=dates[0].pk).start_time
    attendee = UserFactory(email="attendee@example.com")
    pending = UserFactory(email="pending@example.com")
    gone = UserFactory(email="gone@example.com")
    BookingFactory(session=dates[2], user=attendee)
    BookingFactory(session=dates[4], user=pending, status="pending", payment_status="unpaid")
    BookingFactory(session=dates[3], user=gone, status="cancelled")
    BookingFactory(session=dates[0], user=UserFactory(email="past@example.com"))
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        response = creator_client.patch(
            series_url(series.pk), {"local_start": f"{first_monday}T19:15"}, format="json"
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["local_start"] == f"{first_monday}T19:15"
    times = [local(s["start_time"], "Europe/Berlin") for s in body["sessions"]]
    assert times[1:] == [
        datetime.combine(first_monday + timedelta(weeks=n), datetime.min.time()).replace(
            hour=19, minute=15
        )
        for n in range(1, 6)
    ]
    dst_ends = last_sunday(year, 10)
    utc_hours = [datetime.fromisoformat(s["start_time"]).hour for s in body["sessions"][1:]]
    assert utc_hours == [17 if t.date() < dst_ends else 18 for t in times[1:]]
    assert Session.objects.get(pk=dates[0].pk).start_time == started_at  # started: untouched
    assert sorted(message.to[0] for message in mail.outbox) == [
        "attendee@example.com",
        "pending@example.com",
    ]
    message = next(m for m in mail.outbox if m.to == ["attendee@example.com"])
    assert message.subject == "[Sessions Marketplace] New time: Evening yoga"
    old_local = local(dates[2].start_time.isoformat(), "Europe/Berlin")
    assert f"{old_local:%Y-%m-%d} 18:30 Europe/Berlin" in message.body
    assert f"{old_local:%Y-%m-%d} 19:15 Europe/Berlin" in message.body


def test_moving_a_date_into_the_past_is_400_and_changes_nothing(creator_client):
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=3")
    # The first date starts in an hour; moving the series a day earlier would put it in the past.
    Session.objects.filter(pk=dates[0].pk).update(start_time=timezone.now() + timedelta(hours=1))
    before = snapshot()
    local_start = series.local_start - timedelta(days=1)
    response = creator_client.patch(
        series_url(series.pk), {"local_start": local_start.isoformat()}, format="json"
    )
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "start_time_past"
    assert snapshot() == before


def test_delete_cancels_upcoming_dates_and_refunds_their_paid_bookings_once(
    fake_stripe, creator, creator_client, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)  # with Stripe, paid dates publish once payouts are set up
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=4", price="30.00")
    payer, other, free_rider = UserFactory(), UserFactory(), UserFactory()
    paid_future, _ = pay(fake_stripe, payer, book(payer, dates[2]))
    paid_future_2, _ = pay(fake_stripe, other, book(other, dates[3]))
    paid_past, _ = pay(fake_stripe, other, book(other, dates[0]))
    unpaid = book(free_rider, dates[2])
    start_in_the_past(dates[0])
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []

    # After-commit work runs too (where refunds are queued as tasks, they run inline here).
    with django_capture_on_commit_callbacks(execute=True):
        response = creator_client.delete(series_url(series.pk))

    assert response.status_code == 200, response.content
    statuses = [s["status"] for s in response.json()["sessions"]]
    assert statuses == ["published", "cancelled", "cancelled", "cancelled"]
    for booking in (paid_future, paid_future_2):
        booking.refresh_from_db()
        assert (booking.status, booking.payment_status) == ("cancelled", "refunded")
    unpaid.refresh_from_db()
    assert (unpaid.status, unpaid.payment_status) == ("cancelled", "unpaid")
    paid_past.refresh_from_db()
    assert (paid_past.status, paid_past.payment_status) == ("confirmed", "paid")
    refunds = fake_stripe.requests_to("POST", "/v1/refunds")
    assert sorted(r.params["metadata[booking_id]"] for r in refunds) == sorted(
        [str(paid_future.pk), str(paid_future_2.pk)]
    )

    # Again: nothing more is cancelled, nothing refunded twice.
    with django_capture_on_commit_callbacks(execute=True):
        again = creator_client.delete(series_url(series.pk))
    assert again.status_code == 200
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 2
    assert fake_stripe.refund_count == 2
    assert Session.objects.get(pk=dates[0].pk).status == "published"


def test_one_date_can_be_cancelled_on_its_own(
    fake_stripe, creator, creator_client, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    series, dates = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=3", price="30.00")
    payer = UserFactory()
    paid, _ = pay(fake_stripe, payer, book(payer, dates[1]))

    with django_capture_on_commit_callbacks(execute=True):
        response = creator_client.delete(f"/api/sessions/{dates[1].pk}/")

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    paid.refresh_from_db()
    assert paid.payment_status == "refunded"
    body = creator_client.get(series_url(series.pk)).json()
    assert [s["status"] for s in body["sessions"]] == ["published", "cancelled", "published"]
    # Cancelling the rest of the series leaves that refund alone.
    with django_capture_on_commit_callbacks(execute=True):
        creator_client.delete(series_url(series.pk))
    assert len(fake_stripe.requests_to("POST", "/v1/refunds")) == 1
