"""The session admin validates like the API (SessionWriteSerializer) and saves through the
catalog service, as a staff user in the Django test client."""

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from backend.models import Session
from backend.tests.admin_support import (
    SESSIONS_URL,
    change_url,
    form_errors,
    log_in_staff,
    message_texts,
    session_form,
)
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def session_row(session: Session) -> Mapping[str, Any]:
    return Session.objects.values().get(pk=session.pk)


def test_adding_a_session_goes_through_the_serializer_and_the_service(client):
    log_in_staff(client)
    creator = CreatorFactory(username="dana")

    response = client.post(
        f"{SESSIONS_URL}add/",
        session_form(creator=str(creator.pk), category="  Data Science ", currency="eur"),
    )

    assert response.status_code == 302, form_errors(response)
    session = Session.objects.get()
    # Normalised by SessionWriteSerializer, exactly as the API would store them.
    assert (session.creator, session.category, session.currency) == (creator, "data science", "EUR")
    assert (session.title, session.price, session.capacity, session.status) == (
        "Intro to machine learning",
        Decimal("20.00"),
        3,
        "published",
    )


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"currency": "JPY", "price": "12.50"}, "price", "JPY prices must be whole numbers."),
        (
            {"start_time_0": "2020-06-01"},
            "start_time",
            "The start time must be in the future.",
        ),
        ({"currency": "XYZ"}, "currency", "Unsupported currency."),
        ({"status": "cancelled"}, "status", "A new session cannot start out cancelled."),
    ],
)
def test_adding_an_invalid_session_is_refused_with_the_api_message(
    client, overrides, field, message
):
    log_in_staff(client)
    creator = CreatorFactory()

    response = client.post(
        f"{SESSIONS_URL}add/", session_form(creator=str(creator.pk), **overrides)
    )

    assert response.status_code == 200
    assert any(text.startswith(message) for text in form_errors(response)[field])
    assert not Session.objects.exists()


def test_only_a_creator_can_be_given_a_session(client):
    log_in_staff(client)
    not_a_creator = UserFactory()

    response = client.post(f"{SESSIONS_URL}add/", session_form(creator=str(not_a_creator.pk)))

    assert response.status_code == 200
    assert "creator" in form_errors(response)
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    ("stored", "overrides", "field", "message"),
    [
        ({}, {"currency": "JPY", "price": "12.50"}, "price", "JPY prices must be whole numbers."),
        # One field changed: checked against the stored currency, as a PATCH would be.
        ({"currency": "JPY"}, {"price": "12.50"}, "price", "JPY prices must be whole numbers."),
        ({}, {"start_time_0": "2020-06-01"}, "start_time", "The start time must be in the future."),
        ({}, {"is_online": None}, "location", "An in-person session needs a location."),
    ],
)
def test_an_invalid_change_is_refused_and_changes_nothing(
    client, stored, overrides, field, message
):
    log_in_staff(client)
    session = SessionFactory(price=Decimal("1000.00"), **stored)
    before = session_row(session)

    response = client.post(change_url(SESSIONS_URL, session.pk), session_form(session, **overrides))

    assert response.status_code == 200
    assert form_errors(response)[field] == [message]
    assert session_row(session) == before


def test_capacity_below_the_seats_taken_is_refused_by_the_service(client):
    log_in_staff(client)
    session = SessionFactory(capacity=5)
    BookingFactory(session=session, seats=3)
    before = session_row(session)

    response = client.post(
        change_url(SESSIONS_URL, session.pk), session_form(session, capacity="2")
    )

    # The service's Conflict, shown on the same form with what was typed.
    assert response.status_code == 200
    assert form_errors(response)["__all__"] == [
        "Not saved: 3 seat(s) are already booked; capacity cannot be lower."
    ]
    assert response.context["adminform"].form["capacity"].value() == "2"
    assert session_row(session) == before


def test_publishing_a_session_whose_start_passed_is_refused_by_the_service(client):
    log_in_staff(client)
    session = SessionFactory(
        status=Session.Status.DRAFT, start_time=timezone.now() - timedelta(days=1)
    )
    before = session_row(session)

    response = client.post(
        change_url(SESSIONS_URL, session.pk), session_form(session, status="published")
    )

    assert response.status_code == 200
    assert form_errors(response)["__all__"] == [
        "Not saved: This session's start time has passed; move it to the future to publish it."
    ]
    assert session_row(session) == before


def test_a_draft_with_bookings_cannot_go_back_to_draft(client):
    log_in_staff(client)
    session = SessionFactory()
    BookingFactory(session=session)

    response = client.post(
        change_url(SESSIONS_URL, session.pk), session_form(session, status="draft")
    )

    assert response.status_code == 200
    assert form_errors(response)["__all__"] == [
        "Not saved: A session with active bookings cannot go back to draft; cancel it instead."
    ]
    assert Session.objects.get(pk=session.pk).status == "published"


def test_staff_edit_someone_elses_session_through_the_service(client):
    staff = log_in_staff(client)
    session = SessionFactory(capacity=5, price=Decimal("10.00"))
    assert session.creator != staff

    response = client.post(
        change_url(SESSIONS_URL, session.pk),
        session_form(session, capacity="8", price="12.00", category=" Yoga "),
    )

    assert response.status_code == 302, form_errors(response)
    session.refresh_from_db()
    assert (session.capacity, session.price, session.category) == (8, Decimal("12.00"), "yoga")
    assert message_texts(response)[-1].startswith("The session “")


def test_a_cancelled_session_cannot_be_republished_or_changed(client):
    log_in_staff(client)
    session = SessionFactory(status=Session.Status.CANCELLED)
    before = session_row(session)

    page = client.get(change_url(SESSIONS_URL, session.pk))
    response = client.post(
        change_url(SESSIONS_URL, session.pk), session_form(session, status="published")
    )

    # Shown read-only ("View session"), and a crafted POST is refused.
    assert page.status_code == 200
    assert page.context["title"] == "View session"
    assert response.status_code == 403
    assert session_row(session) == before


def test_the_session_list_shows_dates(client):
    log_in_staff(client)
    session = SessionFactory(title="Intro to machine learning")

    response = client.get(SESSIONS_URL)

    assert response.status_code == 200
    cells = response.content.decode()
    assert "Intro to machine learning" in cells
    assert f"{session.start_time.year}" in cells
    assert "column-start_time" in cells and "column-created_at" in cells
