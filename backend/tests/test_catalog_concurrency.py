"""A capacity cut racing a booking never leaves more seats taken than the capacity."""

import pytest

from backend.booking_rules import seats_taken
from backend.exceptions import Conflict
from backend.models import Session
from backend.services.bookings import booking_create
from backend.services.catalog import session_update
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import run_concurrently


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_capacity_cut_and_booking_race(attempt):
    session = SessionFactory(capacity=2, price=0)
    BookingFactory(session=session)
    booker = UserFactory()

    cut, booked = run_concurrently(
        [
            lambda: session_update(
                session_id=session.pk, actor=session.creator, data={"capacity": 1}
            ),
            lambda: booking_create(user=booker, session_id=session.pk),
        ]
    )

    session = Session.objects.get(pk=session.pk)
    taken = seats_taken(session=session)
    assert taken <= session.capacity
    # Exactly one wins: either the cut (then the booking is sold out) or the booking (then the
    # cut would drop below the seats taken).
    outcomes = (isinstance(cut, Conflict), isinstance(booked, Conflict))
    assert outcomes in {(True, False), (False, True)}, (cut, booked)
    assert (session.capacity, taken) in {(1, 1), (2, 2)}
