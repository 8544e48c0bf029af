"""The decision of a session that runs only if enough people book (CONTRACT.md).

At `decision_at` the periodic job `sessions.decide_minimum` asks, per due session, for the
outbox task `catalog.decide_minimum` (effect key per session). The task decides under the
session lock, and the decision is claimed by setting `decided_at` in that same transaction:
a second beat, a second worker or a retry finds it set and does nothing. So each session is
decided exactly once, and everything the decision causes (charges, e-mails, card releases) is
asked for through the outbox in the transaction that makes it.

- Runs (committed seats >= min_attendees, counted under the lock): every scheduled booking
  gets its off-session charge task (services/scheduled_payments.py), free waiting bookings are
  confirmed.
- Called off: the session is cancelled with `cancel_reason "minimum_not_reached"`, every active
  booking cancelled (nothing was charged, so nothing is refunded; a paid one, booked after
  `decision_at` but before the job ran, is refunded in full), saved cards released, everyone
  e-mailed once. Either way the creator is told, with the numbers.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, Session
from backend.services import notifications, waitlist
from backend.services.booking_changes import booking_expire, booking_transition
from backend.services.bookings import cancellation_refund
from backend.services.locking import lock_booking, lock_session
from backend.services.outbox import outbox_enqueue
from backend.services.scheduled_payments import charge_scheduled_later
from backend.services.webhooks import emit_session_status

logger = logging.getLogger(__name__)

Status = Booking.Status
PaymentStatus = Booking.PaymentStatus

DECIDE_TASK = "catalog.decide_minimum"


def sessions_due_for_decision(*, now: datetime | None = None) -> list[int]:
    return list(
        Session.objects.filter(
            min_attendees__isnull=False,
            decided_at__isnull=True,
            decision_at__lte=now or timezone.now(),
            status=Session.Status.PUBLISHED,
        )
        .order_by("decision_at", "id")
        .values_list("id", flat=True)
    )


def minimum_decisions_enqueue(*, now: datetime | None = None) -> int:
    """The periodic job: one decision task per due session (a second ask is a no-op)."""
    asked = 0
    for session_id in sessions_due_for_decision(now=now):
        with transaction.atomic():
            if outbox_enqueue(
                task=DECIDE_TASK,
                kwargs={"session_id": session_id},
                effect_key=f"minimum-decision:session:{session_id}",
            ):
                asked += 1
    return asked


def session_decide_minimum(*, session_id: int, now: datetime | None = None) -> str:
    """Decides one session, once: `runs`, `called_off`, or `skipped` (decided already, not
    due, no minimum, not published)."""
    with transaction.atomic():
        # The lock serialises the decision with every booking of this session and with a
        # second decider: whoever gets it second sees `decided_at` and stops.
        session = lock_session(session_id=session_id)
        now = now or timezone.now()
        if (
            session.decided_at is not None
            or session.min_attendees is None
            or session.status != Session.Status.PUBLISHED
            or session.decision_at is None
            or session.decision_at > now
        ):
            return "skipped"
        # Holds that ran out count for nothing and free their seats first.
        for booking_id in _ids(session, booking_rules.stale_hold_q(now)):
            booking = lock_booking(booking_id=booking_id)
            if booking_rules.is_stale(booking, now):
                booking_expire(booking)
        committed = booking_rules.committed_seats(session=session, now=now)
        runs = committed >= session.min_attendees
        session.decided_at = now
        session.decision = (
            booking_rules.DECISION_RUNS if runs else booking_rules.DECISION_CALLED_OFF
        )
        session.save(update_fields=["decided_at", "decision", "updated_at"])
        if runs:
            charging, bookings = _run(session=session, now=now)
        else:
            charging, bookings = 0, _call_off(session=session, now=now)
        notifications.notify_creator_decision(
            session=session, runs=runs, committed=committed, bookings=bookings, charging=charging
        )
    logger.info(
        "session %s decided: %s (%s of %s seats committed)",
        session_id,
        session.decision,
        committed,
        session.min_attendees,
    )
    return session.decision


def _ids(session: Session, condition) -> list[int]:
    return list(session.bookings.filter(condition).order_by("id").values_list("id", flat=True))


def _run(*, session: Session, now: datetime) -> tuple[int, int]:
    """Charges the saved cards (one task each), confirms the free waiting bookings."""
    charging = 0
    waiting = Q(status=Status.PENDING, hold_expires_at__gt=now)
    ids = _ids(
        session,
        waiting & Q(payment_status__in=(PaymentStatus.SCHEDULED, PaymentStatus.NOT_REQUIRED)),
    )
    for booking_id in ids:
        booking = lock_booking(booking_id=booking_id)
        if booking.payment_status == PaymentStatus.SCHEDULED:
            charge_scheduled_later(booking=booking)
            charging += 1
        else:
            booking_transition(
                booking,
                actor=None,
                reason="minimum_reached",
                status=Status.CONFIRMED,
                confirmed_at=now,
                hold_expires_at=None,
            )
            notifications.notify_booking_confirmed(booking=booking)
    return charging, len(ids)


def _call_off(*, session: Session, now: datetime) -> int:
    """Cancels every active booking and the session; returns how many bookings."""
    # First, so that no seat freed below is offered to someone waiting.
    waitlist.waitlist_close_for_session(session=session)
    ids = _ids(session, booking_rules.seat_holding_q(now))
    for booking_id in ids:
        booking = lock_booking(booking_id=booking_id)
        # Paid only if booked after decision_at but before this ran: refunded in full.
        was_paid = booking.payment_status == PaymentStatus.PAID
        booking_transition(
            booking,
            actor=None,
            reason=booking_rules.MINIMUM_NOT_REACHED,
            status=Status.CANCELLED,
            cancelled_at=now,
            refund_percent=100 if was_paid else None,
        )
        cancellation_refund(
            booking=booking,
            actor=None,
            quote=booking_rules.CancelQuote(True, 100, booking.amount, booking.currency),
        )
        notifications.notify_called_off(booking=booking)
    session.status = Session.Status.CANCELLED
    session.cancel_reason = booking_rules.MINIMUM_NOT_REACHED
    session.save(update_fields=["status", "cancel_reason", "updated_at"])
    emit_session_status(session, type="session.cancelled")
    return len(ids)
