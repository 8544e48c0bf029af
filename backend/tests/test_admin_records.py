"""What the admin shows and refuses: read-only bookings, readable names, CSV exports, and no
pages for models nobody uses."""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from social_django.models import Association, Nonce, UserSocialAuth

from backend.models import Booking, Payment, Reminder, Session, StoredFile, StripeEvent, User
from backend.tests.admin_support import (
    BOOKINGS_URL,
    PAYMENTS_URL,
    SESSIONS_URL,
    change_url,
    log_in_staff,
)
from backend.tests.factories import (
    BookingFactory,
    CreatorFactory,
    PaymentFactory,
    SessionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

WHEN = datetime(2026, 12, 8, 18, 0, tzinfo=UTC)


def booking_row(booking: Booking) -> Mapping[str, Any]:
    return Booking.objects.values().get(pk=booking.pk)


def paid_booking(**fields) -> Booking:
    dana = UserFactory(username="dana", email="dana@example.com")
    session = SessionFactory(
        title="Intro to machine learning", capacity=3, price=Decimal("20.00"), start_time=WHEN
    )
    return BookingFactory.create(
        user=dana,
        session=session,
        seats=2,
        amount=Decimal("40.00"),
        payment_status=Booking.PaymentStatus.PAID,
        **fields,
    )


def test_add_booking_is_not_offered(client):
    log_in_staff(client)

    assert client.get(f"{BOOKINGS_URL}add/").status_code == 403
    assert client.post(f"{BOOKINGS_URL}add/", {"seats": "1"}).status_code == 403
    listing = client.get(BOOKINGS_URL)
    assert listing.status_code == 200
    assert listing.context["has_add_permission"] is False
    assert f'href="{BOOKINGS_URL}add/"' not in listing.content.decode()
    assert not Booking.objects.exists()


def test_seats_beyond_capacity_cannot_be_saved(client):
    log_in_staff(client)
    booking = paid_booking()
    before = booking_row(booking)

    response = client.post(change_url(BOOKINGS_URL, booking.pk), {"seats": "50"})

    assert response.status_code == 403
    assert booking_row(booking) == before


def test_a_paid_booking_cannot_move_to_another_user_or_session(client):
    log_in_staff(client)
    booking = paid_booking()
    other_user, other_session = UserFactory(), SessionFactory()
    PaymentFactory(booking=booking, stripe_id="pi_1", amount=Decimal("40.00"), currency="USD")
    before = booking_row(booking)

    page = client.get(change_url(BOOKINGS_URL, booking.pk))
    response = client.post(
        change_url(BOOKINGS_URL, booking.pk),
        {"user": str(other_user.pk), "session": str(other_session.pk), "status": "pending"},
    )

    # Every field is shown read-only; the page has no form field to post.
    assert page.status_code == 200
    assert page.context["title"] == "View booking"
    assert set(page.context["adminform"].form.fields) == set()
    assert response.status_code == 403
    assert booking_row(booking) == before
    assert Payment.objects.get(stripe_id="pi_1").booking_id == booking.pk


def test_names_are_readable():
    booking = paid_booking()
    one_seat = BookingFactory(user=booking.user, seats=1, session__title="Yoga")
    payment = Payment(
        booking=booking, kind="refund", stripe_id="re_1", amount=Decimal("40.00"),
        currency="USD", status="succeeded",
    )  # fmt: skip

    assert str(booking) == f"#{booking.pk} dana → Intro to machine learning, 2 seats"
    assert str(one_seat) == f"#{one_seat.pk} dana → Yoga, 1 seat"
    assert str(payment) == "Refund re_1: 40.00 USD (succeeded)"
    assert str(booking.session) == "Intro to machine learning"


def test_the_booking_list_shows_names_and_dates(client):
    log_in_staff(client)
    booking = paid_booking()

    page = client.get(BOOKINGS_URL).content.decode()

    assert "Intro to machine learning" in page and ">dana<" in page
    for column in ("session__start_time", "created_at"):
        assert f"column-{column}" in page
    assert "Dec. 8, 2026, 6 p.m." in page  # the session's start
    assert f"{booking.created_at:%Y}" in page


def test_unused_models_have_no_admin_page(client):
    log_in_staff(client)

    for model in (Group, UserSocialAuth, Nonce, Association):
        assert not admin.site.is_registered(model)
    assert client.get("/admin/auth/group/").status_code == 404
    assert client.get("/admin/social_django/usersocialauth/").status_code == 404
    for model in (User, Session, Booking, Payment, StripeEvent, StoredFile):
        assert admin.site.is_registered(model)


@pytest.mark.parametrize("model", [StripeEvent, StoredFile, Payment, Reminder])
def test_records_are_view_only(client, model):
    staff = log_in_staff(client)
    model_admin = admin.site.get_model_admin(model)
    request = client.get(SESSIONS_URL).wsgi_request
    request.user = staff

    assert model_admin.has_view_permission(request)
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request)
    assert not model_admin.has_delete_permission(request)


# --- CSV export ----------------------------------------------------------------------------------


def export(client, url: str, ids: list[int]):
    response = client.post(url, {"action": "export_csv", "_selected_action": [str(i) for i in ids]})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return response


def test_bookings_export_as_csv(client):
    log_in_staff(client)
    booking = paid_booking(status=Booking.Status.CONFIRMED, confirmed_at=WHEN)
    Booking.objects.filter(pk=booking.pk).update(
        created_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    )
    BookingFactory()  # not selected

    response = export(client, BOOKINGS_URL, [booking.pk])

    assert response["Content-Disposition"] == 'attachment; filename="bookings.csv"'
    assert response.content.decode() == (
        "id,created_at,user,email,session_id,session,session_start,seats,status,"
        "payment_status,amount,refunded_amount,currency,confirmed_at,cancelled_at\r\n"
        f"{booking.pk},2026-12-01T09:30:00Z,dana,dana@example.com,{booking.session_id},"
        "Intro to machine learning,2026-12-08T18:00:00Z,2,confirmed,paid,40.00,0.00,USD,"
        "2026-12-08T18:00:00Z,\r\n"
    )


def test_sessions_export_as_csv_with_formulas_defused(client):
    log_in_staff(client)
    creator = CreatorFactory(username="lee")
    first = SessionFactory(
        creator=creator, title="Intro, part 1", category="data", start_time=WHEN,
        price=Decimal("20.00"), currency="EUR", capacity=3, is_online=True,
    )  # fmt: skip
    second = SessionFactory(
        creator=creator, title='=HYPERLINK("http://x")', category="", start_time=WHEN,
        price=Decimal("0.00"), capacity=10, is_online=False, location="Lisbon",
        status=Session.Status.DRAFT,
    )  # fmt: skip
    created = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    Session.objects.update(created_at=created)

    response = export(client, SESSIONS_URL, [second.pk, first.pk])

    assert response["Content-Disposition"] == 'attachment; filename="sessions.csv"'
    assert response.content.decode() == (
        "id,title,creator,category,start_time,duration_minutes,capacity,price,currency,"
        "is_online,status,created_at\r\n"
        f'{first.pk},"Intro, part 1",lee,data,2026-12-08T18:00:00Z,60,3,20.00,EUR,true,'
        "published,2026-11-30T12:00:00Z\r\n"
        f'{second.pk},"\'=HYPERLINK(""http://x"")",lee,,2026-12-08T18:00:00Z,60,10,0.00,'
        "USD,false,draft,2026-11-30T12:00:00Z\r\n"
    )


def test_payments_export_as_csv(client):
    log_in_staff(client)
    booking = paid_booking()
    charge = PaymentFactory(booking=booking, stripe_id="pi_1", currency="USD")
    refund = PaymentFactory(
        booking=booking, kind="refund", stripe_id="re_1", currency="USD", status="pending"
    )
    Payment.objects.update(created_at=datetime(2026, 12, 2, 10, 0, 5, tzinfo=UTC))

    response = export(client, PAYMENTS_URL, [refund.pk, charge.pk])

    assert response.content.decode() == (
        "id,created_at,booking_id,user,kind,stripe_id,amount,currency,status\r\n"
        f"{charge.pk},2026-12-02T10:00:05Z,{booking.pk},dana,charge,pi_1,40.00,USD,succeeded\r\n"
        f"{refund.pk},2026-12-02T10:00:05Z,{booking.pk},dana,refund,re_1,40.00,USD,pending\r\n"
    )


def test_export_reads_in_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    log_in_staff(client)
    bookings = BookingFactory.create_batch(20)

    with django_assert_max_num_queries(6):
        response = export(client, BOOKINGS_URL, [b.pk for b in bookings])

    assert response.content.decode().count("\r\n") == 21
