"""Catalog writes: a creator creates, edits, cancels and deletes their sessions.

Input shape (lengths, ranges, decimals, currency, time zones, online/location consistency) is
checked by SessionWriteSerializer; these services enforce the rules that depend on the
session's current state: status transitions, capacity versus seats already taken, and
cancelling through the booking service. Every write locks the session row first, the same lock
booking_create takes, so a capacity cut cannot race a booking.
"""

from datetime import datetime
from decimal import Decimal
from enum import Enum

from django.db import transaction
from django.utils import timezone
from django.utils.timezone import now as time_now

from backend import booking_rules, catalog_cache
from backend.exceptions import Conflict, NotFound, ValidationFailed
from backend.models import Booking, Session, User
from backend.services import notifications, waitlist
from backend.services.booking_changes import (
    Role,
    booking_expire,
    booking_transition,
    bookings_expire_stale,
)
from backend.services.bookings import booking_cancel_locked
from backend.services.locking import lock_booking, lock_session
from backend.services.payouts import check_can_publish
from backend.services.webhooks import emit_session_status

Status = Session.Status

# The session lifecycle a creator drives. Cancelled is final.
STATUS_TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.PUBLISHED, Status.CANCELLED},
    Status.PUBLISHED: {Status.DRAFT, Status.CANCELLED},
    Status.CANCELLED: set(),
}

UPDATABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "category",
        "price",
        "currency",
        "duration_minutes",
        "start_time",
        "capacity",
        "location",
        "is_online",
        "meeting_url",
        "status",
        "timezone",
        "refund_policy",
        "min_attendees",
        "decision_at",
    }
)


# A change of any of these is a change of the session's time or place: its calendar events'
# SEQUENCE grows (backend/selectors/calendar.py), so calendar apps update their copy.
SCHEDULE_FIELDS = frozenset(
    {"start_time", "duration_minutes", "location", "is_online", "meeting_url"}
)


class DeleteOutcome(Enum):
    DELETED = "deleted"
    CANCELLED = "cancelled"


def _lock_own_session(*, session_id: int, actor: User, as_staff: bool = False) -> Session:
    """Locks the actor's own session; anyone else's is 404 (never confirm it exists).

    `as_staff`: the Django admin acts on any session; only admin code passes it, never a view.
    """
    session = lock_session(session_id=session_id)
    if session.creator_id != actor.pk and not (as_staff and actor.is_staff):
        raise NotFound("Session not found.")
    return session


@transaction.atomic
def session_create(
    *,
    creator: User,
    title: str,
    price: Decimal,
    duration_minutes: int,
    start_time: datetime,
    capacity: int,
    currency: str = "USD",
    description: str = "",
    category: str = "",
    location: str = "",
    is_online: bool = False,
    meeting_url: str = "",
    status: str = Status.DRAFT,
    timezone: str | None = None,
    refund_policy: list[dict[str, int]] | None = None,
    min_attendees: int | None = None,
    decision_at: datetime | None = None,
) -> Session:
    """`timezone` (IANA, validated by the serializer) defaults to the creator's; no
    `refund_policy` follows the platform default (booking_rules.refund_policy_of)."""
    if status == Status.CANCELLED:
        raise Conflict("A new session cannot start out cancelled.", code="invalid_status")
    if status == Status.PUBLISHED:
        check_can_publish(price=price, creator_id=creator.pk)
    decision_at = _decision_at_for(
        min_attendees=min_attendees, decision_at=decision_at, start_time=start_time
    )
    booking_rules.check_minimum_settings(
        min_attendees=min_attendees,
        decision_at=decision_at,
        start_time=start_time,
        capacity=capacity,
        # `timezone` is the session's zone here: django.utils.timezone under another name.
        publishing_at=time_now() if status == Status.PUBLISHED else None,
    )
    session = Session.objects.create(
        creator=creator,
        title=title,
        description=description,
        category=category,
        price=price,
        currency=currency,
        duration_minutes=duration_minutes,
        start_time=start_time,
        capacity=capacity,
        location=location,
        is_online=is_online,
        meeting_url=meeting_url,
        status=status,
        timezone=timezone or creator.timezone,
        refund_policy=refund_policy,
        min_attendees=min_attendees,
        decision_at=decision_at,
    )
    if session.status == Status.PUBLISHED:
        emit_session_status(session, type="session.published")
    catalog_cache.catalog_changed(session_id=None)  # a new entry in the lists
    return session


def _cancel_locked(*, session: Session, actor: User) -> None:
    """Cancels every active booking (refunding paid ones), then the session.

    Caller holds the session row lock, so no booking of it can change meanwhile; a hold that
    ran out is expired, not cancelled (nobody held those seats any more).
    """
    role = Role.CREATOR
    # First, so that no seat freed below is offered to someone waiting.
    waitlist.waitlist_close_for_session(session=session)
    bookings_expire_stale(session_id=session.pk)
    active_ids = (
        session.bookings.filter(status__in=Booking.ACTIVE_STATUSES)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for booking_id in list(active_ids):
        booking = lock_booking(booking_id=booking_id)
        if booking_rules.is_stale(booking):
            booking_expire(booking)
        else:
            # A failed refund rolls the whole cancellation back rather than leaving it half
            # done (refunds already made are idempotent at Stripe: a retry records them).
            booking_cancel_locked(
                booking=booking, actor=actor, role=role, reason="session_cancelled"
            )
    session.status = Status.CANCELLED
    session.save(update_fields=["status", "updated_at"])
    emit_session_status(session, type="session.cancelled")


@transaction.atomic
def session_update(*, session_id: int, actor: User, data: dict, as_staff: bool = False) -> Session:
    """Applies validated `data` to the actor's own session (any session `as_staff`).

    Raises Conflict (409) for a cancelled session, a disallowed status change, or a capacity
    below the seats already taken. Existing bookings keep their amount when the price changes.
    """
    unknown = set(data) - UPDATABLE_FIELDS
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    session = _lock_own_session(session_id=session_id, actor=actor, as_staff=as_staff)
    changes = {name: value for name, value in data.items() if getattr(session, name) != value}
    if not changes:
        return session
    if session.status == Status.CANCELLED:
        raise Conflict("A cancelled session cannot be changed.", code="session_cancelled")

    new_status = changes.get("status")
    if new_status is not None and new_status not in STATUS_TRANSITIONS[session.status]:
        raise Conflict(
            f"A {session.status} session cannot become {new_status}.", code="invalid_transition"
        )
    if (
        new_status == Status.DRAFT
        and session.bookings.filter(booking_rules.seat_holding_q()).exists()
    ):
        raise Conflict(
            "A session with active bookings cannot go back to draft; cancel it instead.",
            code="has_bookings",
        )
    if "capacity" in changes:
        booking_rules.check_capacity_covers_bookings(session=session, capacity=changes["capacity"])
    _check_minimum_change(session=session, changes=changes, new_status=new_status)
    start_time = changes.get("start_time", session.start_time)
    if new_status == Status.PUBLISHED and start_time <= timezone.now():
        raise ValidationFailed(
            "This session's start time has passed; move it to the future to publish it.",
            code="start_time_past",
        )
    new_price = changes.get("price", session.price)
    if changes.get("status", session.status) == Status.PUBLISHED and (
        new_status == Status.PUBLISHED or (session.price <= 0 < new_price)
    ):
        # Published and paid from now on (published now, or a free session made paid).
        check_can_publish(price=new_price, creator_id=session.creator_id)

    if new_status == Status.CANCELLED:
        # The status changes last, inside _cancel_locked, after the bookings are cancelled.
        del changes["status"]
    previous_start_time = session.start_time
    for name, value in changes.items():
        setattr(session, name, value)
    updated = list(changes)
    if SCHEDULE_FIELDS & set(changes):
        session.schedule_sequence += 1
        updated.append("schedule_sequence")
    if "start_time" in changes:
        # Reminders whose moment has passed by now are not sent for the new time
        # (backend/services/reminders.py); the others are re-armed for it.
        session.rescheduled_at = timezone.now()
        updated.append("rescheduled_at")
    if updated:
        session.save(update_fields=[*updated, "updated_at"])
    if new_status == Status.PUBLISHED:
        emit_session_status(session, type="session.published")
    if new_status == Status.CANCELLED:
        _cancel_locked(session=session, actor=actor)
    else:
        if "start_time" in changes:
            _session_moved(session=session, previous_start_time=previous_start_time, actor=actor)
        if "capacity" in changes or new_status == Status.PUBLISHED:
            # More seats (or a session back on sale): the people waiting get them first.
            waitlist.waitlist_seats_freed(session=session)
    return session


def _decision_at_for(
    *, min_attendees: int | None, decision_at: datetime | None, start_time: datetime
) -> datetime | None:
    """No minimum, no decision; a minimum without a decision time decides 48 h before."""
    if min_attendees is None:
        return None
    return decision_at or booking_rules.default_decision_at(start_time)


def _check_minimum_change(*, session: Session, changes: dict, new_status: str | None) -> None:
    """Validates (and completes in `changes`) a change of the minimum or the decision time.

    Once people booked, the minimum may only go down and the decision may not move later:
    they booked on those terms. After the decision nothing about it changes. Caller holds the
    session lock, so the bookings counted here cannot change meanwhile.
    """
    touched = {"min_attendees", "decision_at", "start_time", "capacity"} & set(changes)
    if not touched and new_status != Status.PUBLISHED:
        return
    old_minimum, old_decision = session.min_attendees, session.decision_at
    minimum = changes.get("min_attendees", old_minimum)
    start_time = changes.get("start_time", session.start_time)
    if "min_attendees" in changes or "decision_at" in changes:
        if session.decided_at is not None:
            raise Conflict(
                "This session's minimum has already been decided.", code="minimum_decided"
            )
        decision_at = _decision_at_for(
            min_attendees=minimum,
            decision_at=changes.get("decision_at", old_decision),
            start_time=start_time,
        )
        if decision_at != old_decision:
            changes["decision_at"] = decision_at
        else:
            changes.pop("decision_at", None)
        has_bookings = session.bookings.filter(status__in=Booking.ACTIVE_STATUSES).exists()
        if has_bookings and (
            minimum is None
            or (old_minimum is None and minimum is not None)
            or (old_minimum is not None and minimum > old_minimum)
        ):
            raise Conflict(
                "People have booked: the minimum can only be lowered.", code="minimum_raised"
            )
        if (
            has_bookings
            and old_decision is not None
            and decision_at is not None
            and decision_at > old_decision
        ):
            raise Conflict(
                "People have booked: the decision cannot move later.", code="decision_moved_later"
            )
    if session.decided_at is not None:
        return
    decision_at = changes.get("decision_at", session.decision_at)
    published_after = changes.get("status", session.status) == Status.PUBLISHED
    booking_rules.check_minimum_settings(
        min_attendees=minimum,
        decision_at=decision_at,
        start_time=start_time,
        capacity=changes.get("capacity", session.capacity),
        # The hour after publishing: checked when it is published now or the decision moves.
        publishing_at=timezone.now()
        if published_after and (new_status == Status.PUBLISHED or "decision_at" in changes)
        else None,
    )


def _session_moved(*, session: Session, previous_start_time: datetime, actor: User) -> None:
    """The creator moved the start of a session: its attendees did not agree to the new time.

    Every active booking is marked (`session_moved_at`, one audit event each), which makes its
    user's cancellation refund in full until the start whatever the policy says (else moving
    a session into its no-refund window, `start_time = now + 1 h`, would trap them), and each
    attendee is e-mailed the old and the new time through the outbox. Caller holds the lock.
    """
    moved_at = timezone.now()
    active_ids = (
        session.bookings.filter(status__in=Booking.ACTIVE_STATUSES)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for booking_id in list(active_ids):
        booking = lock_booking(booking_id=booking_id)
        booking_transition(
            booking,
            actor=actor,
            reason="session_moved",
            session_moved_at=moved_at,
        )
    notifications.notify_session_rescheduled(
        session=session, previous_start_time=previous_start_time
    )


@transaction.atomic
def session_delete(*, session_id: int, actor: User) -> DeleteOutcome:
    """Deletes a session nobody ever booked; one with bookings is cancelled instead.

    Bookings (and their payments) are never deleted, so a session that has any stays as a
    cancelled record.
    """
    session = _lock_own_session(session_id=session_id, actor=actor)
    if session.bookings.exists():
        if session.status != Status.CANCELLED:
            _cancel_locked(session=session, actor=actor)
        return DeleteOutcome.CANCELLED
    session.delete()
    return DeleteOutcome.DELETED
