"""The waitlist of a full session, and the offers that fill its freed seats (CONTRACT.md,
"Waitlist").

Every write here runs under the session's row lock (backend/services/locking.py), the lock every
booking write of that session takes, so counting free seats and handing them out cannot race a
booking, a cancellation or another offer: a freed seat is offered once and never oversold.

Who calls what:
- `waitlist_join` / `waitlist_leave`: the API.
- `waitlist_booking_ended(booking=...)`: the one call a service makes after a booking of the
  session stopped taking seats (a cancellation, a lazy expiry, a refund that cancels). It closes
  the booking's offer if it was one, then `waitlist_seats_freed`.
- `waitlist_seats_freed(session=...)`: the earliest waiting entries that fit get an offer: a
  pending booking holding the seats until `offer_expires_at` (WAITLIST_OFFER_MINUTES), or a
  confirmed booking at once for a free session, and an e-mail through the outbox. An entry that
  wants more seats than are free keeps its place; a later, smaller entry that fits is served
  meanwhile (it would otherwise leave seats empty that the earlier one cannot use).
- `bookings_expire_and_offer()`: the periodic job. Expires run-out holds (an expired offer
  passes on) and offers what is free, one session per transaction.
"""

import logging

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from backend import booking_rules
from backend.exceptions import BookingError, NotFound
from backend.models import Booking, Session, User, WaitlistEntry
from backend.services import notifications, webhooks
from backend.services.booking_changes import (
    booking_transition,
    bookings_expire_stale,
    commit_then_raise,
    raise_after_commit,
)
from backend.services.locking import lock_booking, lock_session
from backend.services.outbox import outbox_enqueue
from backend.services.refunds import cancel_open_intents_after_commit

logger = logging.getLogger(__name__)

EntryStatus = WaitlistEntry.Status
Status = Booking.Status
PaymentStatus = Booking.PaymentStatus

OPEN_ENTRY_CONSTRAINT = "waitlist_one_open_per_user_session"


def _check_joinable(*, session: Session, user: User) -> None:
    if session.status != Session.Status.PUBLISHED:
        if session.status == Session.Status.DRAFT and session.creator_id != user.pk:
            raise NotFound("Session not found.")
        raise BookingError("This session is not open for booking.", code="not_bookable")
    if session.start_time <= timezone.now():
        raise BookingError("This session has already started.", code="session_started")
    if session.creator_id == user.pk:
        raise BookingError("You cannot book your own session.", code="own_session")


def seats_left(*, session: Session) -> int:
    """Free seats now. Caller holds the session row lock."""
    return max(session.capacity - booking_rules.seats_taken(session=session), 0)


def waitlist_join(*, user: User, session_id: int, seats: int = 1) -> WaitlistEntry:
    """Puts the user at the end of a session's waitlist, for `seats` seats.

    Only when that many seats are not free (409 `seats_available`: book them instead); one open
    entry per user and session (409 `already_waiting`); not with an active booking of it.
    """
    booking_rules.validate_seats(seats)
    # Offers made on the way stand even if this request is then refused.
    with commit_then_raise():
        session = lock_session(session_id=session_id)
        _check_joinable(session=session, user=user)
        # Seats that came free unnoticed (a hold that ran out) go to the people already waiting
        # before this request decides whether the session is full.
        offers = waitlist_seats_freed(session=session, exclude_user_id=user.pk)
        try:
            entry = _join_locked(session=session, user=user, seats=seats)
        except BookingError as refusal:
            if offers:
                raise_after_commit(refusal)
            raise
    return entry


def _join_locked(*, session: Session, user: User, seats: int) -> WaitlistEntry:
    if session.bookings.filter(user=user, status__in=Booking.ACTIVE_STATUSES).exists():
        raise BookingError("You already have a booking for this session.", code="already_booked")
    if session.waitlist_entries.filter(user=user, status__in=WaitlistEntry.OPEN_STATUSES).exists():
        raise BookingError("You are already on this session's waitlist.", code="already_waiting")
    free = seats_left(session=session)
    if seats <= free:
        raise BookingError(
            f"{free} seat(s) are free: book them instead of joining the waitlist.",
            code="seats_available",
        )
    try:
        with transaction.atomic():
            return WaitlistEntry.objects.create(session=session, user=user, seats=seats)
    except IntegrityError as error:
        # The service's lock makes this unreachable; the constraint is the second line.
        raise BookingError(
            "You are already on this session's waitlist.", code="already_waiting"
        ) from error


@transaction.atomic
def waitlist_leave(*, user: User, session_id: int) -> None:
    """Takes the user off the list. An open offer is withdrawn and its seats passed on."""
    session = lock_session(session_id=session_id)
    entry = (
        session.waitlist_entries.filter(user=user, status__in=WaitlistEntry.OPEN_STATUSES)
        .select_related("booking")
        .first()
    )
    if entry is None:
        raise NotFound("You are not on this session's waitlist.")
    offer = entry.booking
    entry.status = EntryStatus.LEFT
    entry.save(update_fields=["status", "updated_at"])
    if offer is not None and offer.status == Status.PENDING:
        offer = lock_booking(booking_id=offer.pk)
        booking_transition(
            offer,
            actor=user,
            reason="waitlist_left",
            status=Status.CANCELLED,
            cancelled_at=timezone.now(),
        )
        # Paying the withdrawn offer later must not bring it back.
        cancel_open_intents_after_commit(booking_id=offer.pk)
    waitlist_seats_freed(session=session)


def waitlist_booking_ended(*, booking: Booking) -> list[WaitlistEntry]:
    """A booking of this session stopped taking seats (cancelled, expired, refunded away).

    Caller holds lock_booking(booking) (so the session's lock) and calls this after the booking
    moved. If the booking was a waitlist offer, its entry is closed (`left` when its user
    cancelled it, `expired` when it ran out); then the freed seats are offered on.
    """
    closed = EntryStatus.LEFT if booking.status == Status.CANCELLED else EntryStatus.EXPIRED
    WaitlistEntry.objects.filter(booking=booking, status=EntryStatus.OFFERED).update(
        status=closed, updated_at=timezone.now()
    )
    return waitlist_seats_freed(session=booking.session)


def waitlist_offer_claimed(*, booking: Booking) -> None:
    """A waitlist offer was paid (or revived by a late payment): its entry is `booked`."""
    WaitlistEntry.objects.filter(
        booking=booking, status__in=(EntryStatus.OFFERED, EntryStatus.EXPIRED)
    ).update(status=EntryStatus.BOOKED, updated_at=timezone.now())


def waitlist_user_booked(*, booking: Booking) -> None:
    """The user booked the session the normal way while waiting: the entry is done."""
    WaitlistEntry.objects.filter(
        session_id=booking.session_id, user_id=booking.user_id, status=EntryStatus.WAITING
    ).update(status=EntryStatus.BOOKED, updated_at=timezone.now())


def waitlist_seats_freed(
    *, session: Session, exclude_user_id: int | None = None
) -> list[WaitlistEntry]:
    """Offers the seats free now to the earliest waiting entries that fit; returns the offers.

    Caller holds lock_session(session), in the transaction that freed the seats. `exclude_user_id`:
    a user who is booking this session right now (booking_create) is not made an offer on top.
    """
    now = timezone.now()
    if session.status != Session.Status.PUBLISHED or session.start_time <= now:
        return []
    waiting = list(
        session.waitlist_entries.filter(status=EntryStatus.WAITING)
        .select_related("user")
        .order_by("created_at", "id")
    )
    if not waiting:
        return []
    # Run-out holds (expired offers among them) are marked, so their entries say so.
    bookings_expire_stale(session_id=session.pk, now=now)
    free = seats_left(session=session)
    if free == 0:
        return []
    active = session.bookings.filter(status__in=Booking.ACTIVE_STATUSES)
    booked_user_ids = set(active.values_list("user_id", flat=True))
    offers: list[WaitlistEntry] = []
    for entry in waiting:
        if free == 0:
            break
        if entry.user_id == exclude_user_id or entry.seats > free:
            continue
        if entry.user_id in booked_user_ids or not entry.user.is_active:
            # Booked meanwhile, or the account is gone: nothing to offer.
            entry.status = EntryStatus.BOOKED if entry.user.is_active else EntryStatus.LEFT
            entry.save(update_fields=["status", "updated_at"])
            continue
        _make_offer(session=session, entry=entry, now=now)
        free -= entry.seats
        offers.append(entry)
    return offers


def _make_offer(*, session: Session, entry: WaitlistEntry, now) -> None:
    is_free = session.is_free
    booking = Booking(
        session=session,
        user=entry.user,
        seats=entry.seats,
        amount=booking_rules.booking_amount(unit_price=session.price, seats=entry.seats),
        currency=session.currency.upper(),
        status=Status.CONFIRMED if is_free else Status.PENDING,
        payment_status=PaymentStatus.NOT_REQUIRED if is_free else PaymentStatus.UNPAID,
        confirmed_at=now if is_free else None,
        hold_expires_at=None if is_free else booking_rules.offer_hold_expires_at(now),
    )
    booking_transition(booking, actor=None, reason="waitlist_offer")
    entry.booking = booking
    entry.status = EntryStatus.BOOKED if is_free else EntryStatus.OFFERED
    entry.offer_expires_at = booking.hold_expires_at
    entry.save(update_fields=["booking", "status", "offer_expires_at", "updated_at"])
    _notify_offer(entry=entry, booking=booking)
    webhooks.emit_waitlist_offered(entry, booking=booking)


def _queue_mail(*, kind: str, key: str, booking_id: int | None, to: str, subject: str, body: str):
    outbox_enqueue(
        task=notifications.SEND_EMAIL_TASK,
        kwargs={
            "kind": kind,
            "booking_id": booking_id,
            "to": to,
            "subject": " ".join(f"[{notifications.SITE_NAME}] {subject}".split()),
            "body": body,
        },
        effect_key=key,
        max_attempts=notifications.EMAIL_MAX_ATTEMPTS,
    )


def _greeting(user: User) -> str:
    return f"Hello {user.get_full_name() or user.username},\n\n"


def _notify_offer(*, entry: WaitlistEntry, booking: Booking) -> None:
    user = entry.user
    if not user.email:
        return
    session = booking.session
    start = session.start_time.strftime("%Y-%m-%d %H:%M UTC")
    if booking.status == Status.CONFIRMED:
        subject = f"A seat came free: {session.title}"
        text = f"{entry.seats} seat(s) came free and your booking #{booking.pk} is confirmed."
    else:
        hold_end = booking.hold_expires_at or timezone.now()
        until = hold_end.strftime("%Y-%m-%d %H:%M UTC")
        subject = f"Your waitlist offer: {session.title}"
        text = (
            f"{entry.seats} seat(s) came free and are held for you until {until}: pay booking "
            f"#{booking.pk} ({booking.amount} {booking.currency}) by then to confirm it. "
            "After that the seats go to the next person waiting."
        )
    _queue_mail(
        kind="waitlist_offer",
        key=f"email:waitlist_offer:booking:{booking.pk}",
        booking_id=booking.pk,
        to=user.email,
        subject=subject,
        body=f"{_greeting(user)}{text}\n\nSession: {session.title}\nWhen: {start}\n",
    )


def waitlist_close_for_session(*, session: Session) -> int:
    """The session is being cancelled: every open entry is closed (`expired`) and its user told.

    Caller holds lock_session(session) and cancels the bookings (offers among them) afterwards,
    which tells their holders; closing the entries first keeps any seat freed meanwhile from
    being offered. Returns how many entries were closed.
    """
    entries = list(
        session.waitlist_entries.filter(status__in=WaitlistEntry.OPEN_STATUSES).select_related(
            "user"
        )
    )
    for entry in entries:
        was_waiting = entry.status == EntryStatus.WAITING
        entry.status = EntryStatus.EXPIRED
        entry.save(update_fields=["status", "updated_at"])
        if was_waiting and entry.user.email:
            _queue_mail(
                kind="waitlist_session_cancelled",
                key=f"email:waitlist_session_cancelled:entry:{entry.pk}",
                booking_id=None,
                to=entry.user.email,
                subject=f"Session cancelled: {session.title}",
                body=(
                    f"{_greeting(entry.user)}The host cancelled this session, so its waitlist "
                    f"is closed and you are no longer on it.\n\nSession: {session.title}\n"
                ),
            )
    return len(entries)


def bookings_expire_and_offer() -> int:
    """The periodic job: expires run-out holds and offers free seats; returns how many expired.

    One transaction per session, under its lock, so an expired offer and the offer that replaces
    it commit together. Sessions with people waiting are looked at even without a run-out hold:
    a hold expired lazily (by a request) or a missed hand-out is caught here.
    """
    now = timezone.now()
    stale = Booking.objects.filter(booking_rules.stale_hold_q(now)).values("session_id")
    waiting = WaitlistEntry.objects.filter(
        status=EntryStatus.WAITING,
        session__status=Session.Status.PUBLISHED,
        session__start_time__gt=now,
    ).values("session_id")
    session_ids = sorted(
        Session.objects.filter(Q(pk__in=stale) | Q(pk__in=waiting)).values_list("pk", flat=True)
    )
    expired = 0
    for session_id in session_ids:
        with transaction.atomic():
            try:
                session = lock_session(session_id=session_id)
            except NotFound:
                continue
            expired += bookings_expire_stale(session_id=session.pk)
            waitlist_seats_freed(session=session)
    return expired
