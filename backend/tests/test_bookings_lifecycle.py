"""The booking state machine: every allowed and every refused transition, table and services."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone

from backend import booking_rules as rules
from backend.exceptions import BookingError, Forbidden, NotFound
from backend.models import Booking, Session
from backend.services import bookings as services
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.support import expire_hold

pytestmark = pytest.mark.django_db

S = Booking.Status
P = Booking.PaymentStatus

ALLOWED_STATUS = {
    (S.PENDING, S.CONFIRMED),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.EXPIRED),
    (S.CONFIRMED, S.CANCELLED),
    # A Stripe payment that succeeds after the hold ran out or after a cancellation (the
    # payment service re-checks the seats under the session lock).
    (S.EXPIRED, S.CONFIRMED),
    (S.CANCELLED, S.CONFIRMED),
}
ALLOWED_PAYMENT = {
    (P.UNPAID, P.PAID),
    (P.UNPAID, P.FAILED),
    (P.FAILED, P.PAID),
    (P.PAID, P.REFUNDED),
    # Disputes (issue 16): opened on a paid booking, closed won (paid) or lost (refunded).
    (P.PAID, P.DISPUTED),
    (P.DISPUTED, P.PAID),
    (P.DISPUTED, P.REFUNDED),
    # A session with a minimum (issue 25): the card saved, then charged or failed at the decision.
    (P.UNPAID, P.SCHEDULED),
    (P.FAILED, P.SCHEDULED),
    (P.SCHEDULED, P.PAID),
    (P.SCHEDULED, P.FAILED),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(S.values, S.values)))
def test_status_transitions(current, new):
    booking = Booking(status=current)
    if (current, new) in ALLOWED_STATUS:
        rules.check_status_move(booking, new)
    else:
        with pytest.raises(BookingError) as error:
            rules.check_status_move(booking, new)
        assert error.value.code == "invalid_transition"
        assert error.value.message == f"A {current} booking cannot become {new}."
        assert booking.status == current


@pytest.mark.parametrize(("current", "new"), list(itertools.product(P.values, P.values)))
def test_payment_transitions(current, new):
    booking = Booking(payment_status=current)
    if (current, new) in ALLOWED_PAYMENT:
        rules.check_payment_move(booking, new)
    else:
        with pytest.raises(BookingError) as error:
            rules.check_payment_move(booking, new)
        assert error.value.code == "invalid_payment_transition"
        assert booking.payment_status == current


@pytest.fixture(autouse=True)
def refunds(monkeypatch) -> list[int]:
    """The payment service's refund hook, recorded: refunds are the payments area's tests."""
    calls: list[int] = []
    monkeypatch.setattr(
        "backend.services.refunds.refund_booking",
        lambda *, booking, actor, amount: calls.append(booking.pk),
    )
    return calls


# --- confirm, by starting state ------------------------------------------------------------

CONFIRM_CASES = [
    # (status, payment_status, stale, expected status afterwards, error code or None)
    (S.PENDING, P.NOT_REQUIRED, False, S.CONFIRMED, None),
    (S.PENDING, P.PAID, False, S.CONFIRMED, None),
    (S.PENDING, P.UNPAID, False, S.PENDING, "unpaid"),
    (S.PENDING, P.FAILED, False, S.PENDING, "unpaid"),
    (S.PENDING, P.NOT_REQUIRED, True, S.EXPIRED, "expired"),
    (S.CONFIRMED, P.NOT_REQUIRED, False, S.CONFIRMED, "invalid_transition"),
    (S.CONFIRMED, P.PAID, False, S.CONFIRMED, "invalid_transition"),
    (S.CANCELLED, P.NOT_REQUIRED, False, S.CANCELLED, "invalid_transition"),
    (S.CANCELLED, P.REFUNDED, False, S.CANCELLED, "invalid_transition"),
    (S.EXPIRED, P.UNPAID, False, S.EXPIRED, "invalid_transition"),
    (S.EXPIRED, P.NOT_REQUIRED, False, S.EXPIRED, "invalid_transition"),
]


@pytest.mark.parametrize(("status", "payment", "is_stale", "after", "code"), CONFIRM_CASES)
def test_booking_confirm(status, payment, is_stale, after, code):
    creator = CreatorFactory()
    booking = BookingFactory(
        session=SessionFactory(creator=creator), status=status, payment_status=payment
    )
    if is_stale:
        expire_hold(booking)
    if code is None:
        result = services.booking_confirm(booking_id=booking.pk, actor=creator)
        assert result.status == after
        assert result.confirmed_at is not None
    else:
        with pytest.raises(BookingError) as error:
            services.booking_confirm(booking_id=booking.pk, actor=creator)
        assert error.value.code == code
    booking.refresh_from_db()
    assert booking.status == after
    assert booking.payment_status == payment


def test_booking_confirm_refuses_a_cancelled_session():
    creator = CreatorFactory()
    session = SessionFactory(creator=creator, status=Session.Status.CANCELLED)
    booking = BookingFactory(session=session, status=S.PENDING, payment_status=P.NOT_REQUIRED)
    with pytest.raises(BookingError) as error:
        services.booking_confirm(booking_id=booking.pk, actor=creator)
    assert error.value.code == "session_cancelled"
    booking.refresh_from_db()
    assert booking.status == S.PENDING


def test_booking_confirm_by_user_is_forbidden_by_stranger_not_found():
    booking = BookingFactory(status=S.PENDING, payment_status=P.NOT_REQUIRED)
    with pytest.raises(Forbidden):
        services.booking_confirm(booking_id=booking.pk, actor=booking.user)
    with pytest.raises(NotFound):
        services.booking_confirm(booking_id=booking.pk, actor=UserFactory())
    with pytest.raises(NotFound):
        services.booking_confirm(booking_id=987654, actor=booking.session.creator)
    booking.refresh_from_db()
    assert booking.status == S.PENDING


# --- cancel, by starting state -------------------------------------------------------------

CANCEL_CASES = [
    (S.PENDING, P.UNPAID, False, S.CANCELLED, None),
    (S.PENDING, P.FAILED, False, S.CANCELLED, None),
    (S.CONFIRMED, P.NOT_REQUIRED, False, S.CANCELLED, None),
    (S.CONFIRMED, P.PAID, False, S.CANCELLED, None),
    (S.PENDING, P.UNPAID, True, S.EXPIRED, "expired"),
    (S.CANCELLED, P.NOT_REQUIRED, False, S.CANCELLED, "not_active"),
    (S.CANCELLED, P.REFUNDED, False, S.CANCELLED, "not_active"),
    (S.EXPIRED, P.UNPAID, False, S.EXPIRED, "not_active"),
]


@pytest.mark.parametrize("actor_kind", ["user", "creator"])
@pytest.mark.parametrize(("status", "payment", "is_stale", "after", "code"), CANCEL_CASES)
def test_booking_cancel(actor_kind, status, payment, is_stale, after, code, refunds):
    booking = BookingFactory(status=status, payment_status=payment)
    if is_stale:
        expire_hold(booking)
    actor = booking.user if actor_kind == "user" else booking.session.creator
    if code is None:
        result = services.booking_cancel(booking_id=booking.pk, actor=actor)
        assert result.cancelled_at is not None
        assert refunds == ([booking.pk] if payment == P.PAID else [])
    else:
        with pytest.raises(BookingError) as error:
            services.booking_cancel(booking_id=booking.pk, actor=actor)
        assert error.value.code == code
        assert refunds == []
    booking.refresh_from_db()
    assert booking.status == after


# --- update, by starting state -------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payment", "is_stale", "seats_after", "code"),
    [
        (S.PENDING, P.UNPAID, False, 3, None),
        (S.PENDING, P.UNPAID, True, 1, "expired"),
        (S.PENDING, P.FAILED, False, 1, "seats_locked"),
        (S.CONFIRMED, P.NOT_REQUIRED, False, 1, "seats_locked"),
        (S.CONFIRMED, P.PAID, False, 1, "seats_locked"),
        (S.CANCELLED, P.UNPAID, False, 1, "not_active"),
        (S.EXPIRED, P.UNPAID, False, 1, "not_active"),
    ],
)
def test_booking_update_seats(status, payment, is_stale, seats_after, code):
    booking = BookingFactory(status=status, payment_status=payment)
    if is_stale:
        expire_hold(booking)
    if code is None:
        services.booking_update(booking_id=booking.pk, actor=booking.user, seats=3)
    else:
        with pytest.raises(BookingError) as error:
            services.booking_update(booking_id=booking.pk, actor=booking.user, seats=3)
        assert error.value.code == code
    booking.refresh_from_db()
    assert booking.seats == seats_after


def test_notes_change_on_a_confirmed_booking_is_allowed_on_a_cancelled_one_refused():
    booking = BookingFactory(status=S.CONFIRMED, notes="a")
    services.booking_update(booking_id=booking.pk, actor=booking.user, notes="b")
    booking.refresh_from_db()
    assert booking.notes == "b"
    cancelled = BookingFactory(status=S.CANCELLED, notes="a")
    with pytest.raises(BookingError):
        services.booking_update(booking_id=cancelled.pk, actor=cancelled.user, notes="b")
    cancelled.refresh_from_db()
    assert cancelled.notes == "a"


def test_seat_change_after_the_start_is_refused():
    session = SessionFactory(start_time=timezone.now() - timedelta(minutes=1))
    booking = BookingFactory(session=session, status=S.PENDING, payment_status=P.UNPAID)
    with pytest.raises(BookingError) as error:
        services.booking_update(booking_id=booking.pk, actor=booking.user, seats=2)
    assert error.value.code == "session_started"


# --- seats and capacity --------------------------------------------------------------------


def test_seats_taken_counts_confirmed_and_fresh_pending_only():
    session = SessionFactory(capacity=50)
    BookingFactory(session=session, seats=2, status=S.CONFIRMED)
    BookingFactory(session=session, seats=3, status=S.PENDING, payment_status=P.UNPAID)
    expire_hold(BookingFactory(session=session, seats=4, status=S.PENDING, payment_status=P.UNPAID))
    BookingFactory(session=session, seats=5, status=S.CANCELLED)
    BookingFactory(session=session, seats=6, status=S.EXPIRED)
    BookingFactory(seats=7)  # another session
    assert rules.seats_taken(session=session) == 5


def test_check_seats_available_excludes_the_booking_being_changed_even_when_stale():
    session = SessionFactory(capacity=3)
    BookingFactory(session=session, seats=2)
    booking = expire_hold(
        BookingFactory(session=session, seats=1, status=S.PENDING, payment_status=P.UNPAID)
    )
    # The stale booking holds nothing: 1 seat left, asking for 2 must fail (it used to
    # succeed because the stale booking's seats were subtracted anyway).
    with pytest.raises(BookingError) as error:
        rules.check_seats_available(session=session, seats=2, exclude=booking)
    assert error.value.code == "not_enough_seats"
    rules.check_seats_available(session=session, seats=1, exclude=booking)


def test_capacity_cannot_go_below_the_seats_taken():
    session = SessionFactory(capacity=5)
    BookingFactory(session=session, seats=3)
    with pytest.raises(BookingError) as error:
        rules.check_capacity_covers_bookings(session=session, capacity=2)
    assert error.value.code == "capacity_below_seats_taken"
    rules.check_capacity_covers_bookings(session=session, capacity=3)


@pytest.mark.parametrize("seats", [0, 11, -1, True, "2", 1.0])
def test_validate_seats_refuses_non_integers_and_out_of_range(seats):
    from backend.exceptions import ValidationFailed

    with pytest.raises(ValidationFailed):
        rules.validate_seats(seats)
