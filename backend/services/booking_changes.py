"""The one way a booking changes: checked, saved and recorded together.

- `booking_transition` applies a status and/or payment-status move allowed by the tables in
  backend/booking_rules.py (and any other fields that change with it), saves the row and writes
  one `BookingEvent`, all in the caller's transaction. Nothing else assigns `booking.status` or
  `booking.payment_status`.
- `booking_for_update` is the access helper every workflow starts with: visibility (a plain
  read, so nobody can lock a row they cannot see: 404), then the lock, then the actor's role
  (403), then the stale-hold check (an expired hold is recorded, committed, and then refused).
- `commit_then_raise` is that "record, commit, then refuse" in one place.
"""

import enum
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from backend import booking_rules, payout_rules
from backend.exceptions import BookingError, DomainError, Forbidden, NotFound
from backend.logs import request_id_var
from backend.models import Booking, BookingEvent, User, WaitlistEntry
from backend.services.locking import lock_booking
from backend.services.webhooks import emit_booking_change

Status = Booking.Status


def booking_transition(
    booking: Booking,
    *,
    actor: User | None,
    reason: str,
    status: str | None = None,
    payment_status: str | None = None,
    **fields: Any,
) -> BookingEvent:
    """Moves a locked (or new, unsaved) booking and writes its audit event.

    `status` / `payment_status` must be allowed by the transition tables (409 otherwise);
    `fields` are the other columns that change with the move (seats, amount, confirmed_at, ...).
    Caller holds lock_booking, or creates the booking under lock_session.
    """
    is_new = booking.pk is None
    before_status = "" if is_new else booking.status
    before_payment = "" if is_new else booking.payment_status
    before_seats = None if is_new else booking.seats
    changed: list[str] = []
    if status is not None and status != booking.status:
        booking_rules.check_status_move(booking, status)
        booking.status = status
        changed.append("status")
    if payment_status is not None and payment_status != booking.payment_status:
        booking_rules.check_payment_move(booking, payment_status)
        booking.payment_status = payment_status
        changed.append("payment_status")
        if payment_status == Booking.PaymentStatus.PAID and booking.platform_fee is None:
            # The fee is fixed when the money comes in (CONTRACT.md, "Creators get paid").
            fields.setdefault(
                "platform_fee",
                payout_rules.fee_for(
                    amount=booking.amount,
                    currency=booking.currency,
                    percent=payout_rules.fee_percent_for(creator_id=booking.session.creator_id),
                ),
            )
    for name, value in fields.items():
        setattr(booking, name, value)
        changed.append(name)
    if is_new:
        booking.save()
    else:
        booking.save(update_fields=[*changed, "updated_at"])
    # Outgoing webhooks for this move, queued in the same transaction as the move itself.
    emit_booking_change(
        booking,
        is_new=is_new,
        before_status=before_status,
        before_payment_status=before_payment,
    )
    return BookingEvent.objects.create(
        booking=booking,
        actor=actor if actor is not None and actor.pk else None,
        reason=reason,
        from_status=before_status,
        to_status=booking.status,
        from_payment_status=before_payment,
        to_payment_status=booking.payment_status,
        seats_before=before_seats,
        seats_after=booking.seats,
        request_id=request_id_var.get() or "",
    )


class _RaiseAfterCommit(Exception):
    def __init__(self, error: DomainError):
        super().__init__(error.message)
        self.error = error


def raise_after_commit(error: DomainError) -> None:
    """Inside `commit_then_raise`: end the block, commit what was written, then raise `error`."""
    raise _RaiseAfterCommit(error)


@contextmanager
def commit_then_raise() -> Iterator[None]:
    """A transaction whose `raise_after_commit(error)` commits first and raises afterwards.

    For a refusal that must still record something (an expired hold marked expired).
    Any other exception rolls back as usual.
    """
    deferred: DomainError | None = None
    with transaction.atomic():
        try:
            yield
        except _RaiseAfterCommit as signal:
            deferred = signal.error
    if deferred is not None:
        raise deferred


class Role(enum.Enum):
    OWNER = "owner"  # the person who booked
    CREATOR = "creator"  # the session's creator
    STAFF = "staff"  # support, from the admin


def role_of(*, actor: User, booking: Booking, as_staff: bool = False) -> Role | None:
    """The actor's role for this booking. Staff act as staff only from the admin (`as_staff`):
    over the API a staff account is an ordinary user and sees only its own bookings."""
    # The most specific role wins: a staff member who booked is the owner of that booking.
    if booking.user_id == actor.pk:
        return Role.OWNER
    if booking.session.creator_id == actor.pk:
        return Role.CREATOR
    if as_staff and actor.is_staff:
        return Role.STAFF
    return None


FORBIDDEN_MESSAGES = {
    Role.OWNER: ("Only the session's creator can confirm a booking.", "not_creator"),
    Role.CREATOR: ("Only the person who booked can change a booking.", "not_owner"),
    Role.STAFF: ("Staff cannot do this to a booking.", "permission_denied"),
}


def booking_for_update(
    *,
    actor: User,
    booking_id: int,
    allowed: Collection[Role],
    as_staff: bool = False,
    expire_stale: bool = True,
    on_hold_expired: Callable[..., object] | None = None,
) -> tuple[Booking, Role]:
    """Visibility (404), lock, role (403), stale hold (expired, committed, 409). Call it first.

    Must run inside `commit_then_raise()` so that an expired hold is recorded before the 409.
    `on_hold_expired(booking=...)` runs right after such an expiry, in that transaction (the
    waitlist's offer of the freed seats: services/waitlist.py builds on this module, so it is
    passed in rather than imported).
    """
    visible = Booking.objects.filter(pk=booking_id).select_related("session").first()
    if visible is None or role_of(actor=actor, booking=visible, as_staff=as_staff) is None:
        raise NotFound("Booking not found.")
    booking = lock_booking(booking_id=booking_id)
    role = role_of(actor=actor, booking=booking, as_staff=as_staff)
    if role is None:
        raise NotFound("Booking not found.")
    if role not in allowed:
        message, code = FORBIDDEN_MESSAGES[role]
        raise Forbidden(message, code=code)
    if expire_stale and booking_rules.is_stale(booking):
        booking_expire(booking)
        if on_hold_expired is not None:
            on_hold_expired(booking=booking)
        raise_after_commit(BookingError("This booking's hold has expired.", code="expired"))
    return booking, role


def booking_expire(booking: Booking) -> None:
    """Marks a locked pending booking past its hold as expired (the system's doing).

    A waitlist offer that ran out closes its entry with it; whoever expires it under the
    session lock then offers the seats on (services/waitlist.py).
    """
    booking_transition(booking, actor=None, reason="hold_expired", status=Status.EXPIRED)
    WaitlistEntry.objects.filter(booking=booking, status=WaitlistEntry.Status.OFFERED).update(
        status=WaitlistEntry.Status.EXPIRED, updated_at=timezone.now()
    )


def bookings_expire_stale(
    *, session_id: int | None = None, user: User | None = None, now: datetime | None = None
) -> int:
    """Marks pending bookings past their hold as expired, one event each; returns how many.

    Scoped to a session (the caller holds its lock) or to a user, unscoped for the periodic job.
    Each booking is locked and re-checked, so one confirmed meanwhile stays confirmed.
    """
    stale = Booking.objects.filter(booking_rules.stale_hold_q(now))
    if session_id is not None:
        stale = stale.filter(session_id=session_id)
    if user is not None:
        stale = stale.filter(user=user)
    expired = 0
    for booking_id in stale.order_by("session_id", "id").values_list("id", flat=True):
        with transaction.atomic():
            try:
                booking = lock_booking(booking_id=booking_id)
            except NotFound:
                continue
            if booking_rules.is_stale(booking, now or timezone.now()):
                booking_expire(booking)
                expired += 1
    return expired
