"""The catalog's hand-written `to_representation` writes exactly what DRF's generic one would.

SessionSerializer and MySessionSerializer build their dicts by hand (the catalog list is the
hottest read, see README "Benchmarks"); the declared fields stay the reference. Each case here
renders the same annotated row both ways and compares them whole, over the values that take
different code paths: images and avatars set or not, meeting URLs visible or hidden, prices
with and without cents, times stored with a non-UTC offset.
"""

from datetime import timedelta, timezone
from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.utils import timezone as dj_timezone
from rest_framework import serializers

from backend.selectors import catalog as selectors
from backend.serializers.catalog import MySessionSerializer, SessionSerializer
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory

pytestmark = pytest.mark.django_db


def generic(serializer_class, instance, context):
    """DRF's field-by-field rendering of the declared fields (what the lean one replaces)."""
    return serializers.ModelSerializer.to_representation(
        serializer_class(context=context), instance
    )


@pytest.fixture
def rows(user):
    plain_creator = CreatorFactory(first_name="Ada", last_name="Moreau")
    linked_creator = CreatorFactory(avatar_url="https://cdn.example.com/a.png")
    file_creator = CreatorFactory(avatar="avatars/face.png")
    start = dj_timezone.now().astimezone(timezone(timedelta(hours=5, minutes=30)))
    sessions = [
        SessionFactory(creator=plain_creator, price=Decimal("0"), start_time=start + timedelta(3)),
        SessionFactory(creator=linked_creator, price=Decimal("12.5"), image="sessions/x.png"),
        SessionFactory(
            creator=file_creator,
            price=Decimal("9999999.99"),
            is_online=False,
            meeting_url="",
            location="Room 4",
            capacity=2,
        ),
        SessionFactory(creator=plain_creator, meeting_url="", duration_minutes=90),
    ]
    # A confirmed booking makes the meeting URL visible to `user`; two seats held fill #3.
    BookingFactory(session=sessions[0], user=user)
    BookingFactory(session=sessions[2], seats=2)
    return sessions


@pytest.mark.parametrize("as_user", [False, True], ids=["anonymous", "booked-user"])
def test_session_serializer_matches_the_generic_rendering(rows, user, as_user):
    request = RequestFactory().get("/api/sessions/")
    viewer = user if as_user else None
    context = {"request": request}
    annotated = list(selectors.session_visible_to(viewer=viewer).order_by("id"))
    assert len(annotated) == 4

    lean = SessionSerializer(annotated, many=True, context=context).data
    reference = [generic(SessionSerializer, row, context) for row in annotated]

    assert [dict(row) for row in lean] == [dict(row) for row in reference]
    assert [list(row) for row in lean] == [list(row) for row in reference]  # same key order
    # The cases really differ where the paths differ.
    assert [row["meeting_url"] for row in lean] == (
        ["https://meet.example.com/room", None, None, None] if as_user else [None] * 4
    )
    assert lean[1]["image"] == "http://testserver/media/sessions/x.png"
    assert lean[1]["creator"]["avatar"] == "https://cdn.example.com/a.png"
    assert lean[2]["creator"]["avatar"] == "http://testserver/media/avatars/face.png"
    assert [row["price"] for row in lean] == ["0.00", "12.50", "9999999.99", "25.00"]
    assert [row["seats_left"] for row in lean] == [9, 10, 0, 10]
    assert lean[0]["start_time"].endswith("Z")


def test_my_session_serializer_matches_the_generic_rendering(rows):
    creator = rows[0].creator
    BookingFactory(session=rows[3], status="cancelled")
    context = {"request": RequestFactory().get("/api/sessions/mine/")}
    annotated = list(selectors.my_sessions(creator=creator))
    assert len(annotated) == 2

    lean = MySessionSerializer(annotated, many=True, context=context).data
    reference = [generic(MySessionSerializer, row, context) for row in annotated]

    assert [dict(row) for row in lean] == [
        {**row, "booking_counts": dict(row["booking_counts"])} for row in reference
    ]
    assert [row["booking_counts"]["cancelled"] for row in lean] == [1, 0]
    assert [row["meeting_url"] for row in lean] == [None, "https://meet.example.com/room"]
