"""Reading bookings through the API: lists, details, expiry, and 404s for others' bookings."""

from datetime import timedelta

import pytest
from django.utils import timezone

from backend.models import Booking
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate, expire_hold
from backend.tests.support.bookings import snapshot

pytestmark = pytest.mark.django_db


# --- read ----------------------------------------------------------------------------------


def test_list_shows_only_my_bookings_newest_first(user_client, user):
    mine_old = BookingFactory(user=user)
    mine_new = BookingFactory(user=user)
    BookingFactory()
    backdate(mine_old, created_at=timedelta(days=1))
    for url in ("/api/bookings/", "/api/bookings/my_bookings/"):
        response = user_client.get(url)
        assert response.status_code == 200
        body = response.json()
        assert body["count"] == 2
        assert [b["id"] for b in body["results"]] == [mine_new.pk, mine_old.pk]


def test_list_filters_by_status(user_client, user):
    confirmed = BookingFactory(user=user)
    BookingFactory(user=user, status="cancelled")
    response = user_client.get("/api/bookings/?status=confirmed")
    assert [b["id"] for b in response.json()["results"]] == [confirmed.pk]
    assert user_client.get("/api/bookings/?status=bogus").status_code == 400


def test_active_and_past(user_client, user):
    now = timezone.now()
    soon = BookingFactory(user=user, session=SessionFactory(start_time=now + timedelta(days=1)))
    later = BookingFactory(
        user=user,
        session=SessionFactory(start_time=now + timedelta(days=2)),
        status="pending",
        payment_status="unpaid",
    )
    BookingFactory(user=user, status="cancelled")
    stale = BookingFactory(user=user, status="pending", payment_status="unpaid")
    expire_hold(stale)
    # Started but not ended: neither active nor past.
    running = SessionFactory(start_time=now - timedelta(minutes=30), duration_minutes=60)
    BookingFactory(user=user, session=running)
    ended_long_ago = BookingFactory(
        user=user, session=SessionFactory(start_time=now - timedelta(days=3))
    )
    ended_recently = BookingFactory(
        user=user,
        session=SessionFactory(start_time=now - timedelta(minutes=90), duration_minutes=60),
        status="cancelled",
    )
    BookingFactory(session=SessionFactory(start_time=now - timedelta(days=3)))  # not mine

    active = user_client.get("/api/bookings/active/").json()
    assert [b["id"] for b in active["results"]] == [soon.pk, later.pk]
    past = user_client.get("/api/bookings/past/").json()
    assert [b["id"] for b in past["results"]] == [ended_recently.pk, ended_long_ago.pk]


@pytest.mark.parametrize(
    "url",
    [
        "/api/bookings/",
        "/api/bookings/my_bookings/",
        "/api/bookings/active/",
        "/api/bookings/past/",
    ],
)
def test_list_endpoints_use_a_fixed_number_of_queries(
    user, url, django_assert_num_queries, is_postgres
):
    past_start = timezone.now() - timedelta(days=2)
    for index in range(6):
        start = past_start if index % 2 else timezone.now() + timedelta(days=index + 1)
        BookingFactory(user=user, session=SessionFactory(start_time=start))
    client = auth_client(user)
    # JWT user + page count + page rows (reads never write: no expiry UPDATE).
    expected = 3
    for page_size in (1, 100):
        with django_assert_num_queries(expected):
            response = client.get(url, {"page_size": page_size})
        assert response.status_code == 200
        assert len(response.json()["results"]) == (
            1 if page_size == 1 else response.json()["count"]
        )


def test_detail_for_user_and_creator_404_for_others(user, creator):
    booking = BookingFactory(user=user, session=SessionFactory(creator=creator))
    for client in (auth_client(user), auth_client(creator)):
        response = client.get(f"/api/bookings/{booking.pk}/")
        assert response.status_code == 200
        assert response.json()["id"] == booking.pk
    for stranger in (UserFactory(), CreatorFactory()):
        response = auth_client(stranger).get(f"/api/bookings/{booking.pk}/")
        assert response.status_code == 404
        assert response.json() == {"detail": "Booking not found.", "code": "not_found"}


@pytest.mark.parametrize("pk", ["999999", "abc", "9223372036854775808", "1.ics"])
def test_unknown_or_malformed_id_is_json_404(user_client, pk):
    response = user_client.get(f"/api/bookings/{pk}/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")


def test_a_stale_pending_booking_reads_as_expired_and_the_expiry_job_marks_it(user_client, user):
    from django.core.management import call_command

    booking = BookingFactory(user=user, status="pending", payment_status="unpaid")
    expire_hold(booking)
    response = user_client.get(f"/api/bookings/{booking.pk}/")
    assert response.json()["status"] == "expired"
    assert user_client.get("/api/bookings/active/").json()["count"] == 0
    booking.refresh_from_db()
    assert booking.status == "pending"  # a read never writes

    call_command("expire_bookings")
    booking.refresh_from_db()
    assert booking.status == "expired"
    assert list(booking.events.values_list("reason", "actor", "to_status")) == [
        ("hold_expired", None, "expired")
    ]


def test_expire_bookings_command(capsys):
    fresh = BookingFactory(status="pending", payment_status="unpaid")
    stale = BookingFactory(status="pending", payment_status="unpaid")
    confirmed = BookingFactory()
    expire_hold(stale)
    backdate(confirmed, created_at=timedelta(days=9))
    from django.core.management import call_command

    call_command("expire_bookings")
    assert capsys.readouterr().out.strip() == "Expired 1 booking(s)."
    assert Booking.objects.get(pk=stale.pk).status == "expired"
    assert Booking.objects.get(pk=fresh.pk).status == "pending"
    assert Booking.objects.get(pk=confirmed.pk).status == "confirmed"


# --- visibility, everywhere ----------------------------------------------------------------

DETAIL_ENDPOINTS = [
    ("get", "/api/bookings/{}/"),
    ("patch", "/api/bookings/{}/"),
    ("put", "/api/bookings/{}/"),
    ("post", "/api/bookings/{}/confirm/"),
    ("post", "/api/bookings/{}/cancel/"),
    ("get", "/api/bookings/{}/calendar.ics"),
]


def call(client, method, template, pk):
    data = {"notes": "changed", "seats": 2} if method in ("patch", "put") else None
    return getattr(client, method)(template.format(pk), data, format="json")


@pytest.mark.parametrize("stranger_factory", [UserFactory, CreatorFactory])
@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_others_bookings_are_404_on_every_endpoint(stranger_factory, method, template):
    # Pending and needing no payment: confirm and cancel would succeed for the right person.
    booking = BookingFactory(status="pending", payment_status="not_required", notes="keep")
    before = snapshot(booking)
    response = call(auth_client(stranger_factory()), method, template, booking.pk)
    assert response.status_code == 404
    assert response.json() == {"detail": "Booking not found.", "code": "not_found"}
    assert snapshot(booking) == before


@pytest.mark.parametrize("pk", ["0", "999999", "9223372036854775807", "9223372036854775808"])
@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_unknown_ids_are_404_on_every_endpoint(user_client, method, template, pk):
    response = call(user_client, method, template, pk)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize(("method", "template"), DETAIL_ENDPOINTS)
def test_staff_get_no_api_access_to_others_bookings(method, template):
    """Staff work in the admin; the API shows a booking to its user and the creator only."""
    booking = BookingFactory(status="pending", payment_status="not_required", notes="keep")
    before = snapshot(booking)
    staff = UserFactory(is_staff=True, is_superuser=True)
    assert call(auth_client(staff), method, template, booking.pk).status_code == 404
    assert snapshot(booking) == before
