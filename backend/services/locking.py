"""Row locks, in one documented order, and only inside a transaction.

Every write that changes the seats of a session locks that session's row first; every write to
one booking locks its session and then the booking. Two writers therefore always take locks in
the same order (sessions by id, then bookings) and cannot deadlock. A user's row, when a write
needs it (the unpaid-hold limit of booking_create, account deletion, avatar uploads), comes
before any session. A creator's rating
aggregate comes after its session and booking (if any) and before any review row, so review
writes join that order without creating a cycle. A lock outside `transaction.atomic` would be
released at once, silently: these helpers refuse that.
"""

from django.db import transaction

from backend import catalog_cache
from backend.exceptions import NotFound
from backend.models import Booking, CreatorRating, Session, User


def _require_transaction() -> None:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("row locks are only held inside transaction.atomic")


def lock_user(*, user_id: int) -> None:
    """Locks a user's row (before any session: see above) until the end of the transaction."""
    _require_transaction()
    User.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True).first()


def lock_session(*, session_id: int) -> Session:
    """Locks the session row until the end of the caller's transaction.

    The creator comes along (for the notifications), unlocked: `of=("self",)`.
    """
    _require_transaction()
    try:
        session = (
            Session.objects.select_for_update(of=("self",))
            .select_related("creator")
            .get(pk=session_id)
        )
    except Session.DoesNotExist as error:
        raise NotFound("Session not found.") from error
    # Whoever locks a session is about to change it or its seats: its cached catalog pages
    # are retired when this transaction commits (over-retiring costs one render, never data).
    catalog_cache.catalog_changed(session_id=session_id)
    return session


def lock_sessions(*, session_ids: list[int]) -> dict[int, Session]:
    """Locks several sessions in id order (a booking moving between two sessions)."""
    return {pk: lock_session(session_id=pk) for pk in sorted(set(session_ids))}


def lock_booking(*, booking_id: int) -> Booking:
    """Locks a booking and its session (session first: the same order as booking_create).

    The session (with its creator) and the user come back loaded, but only the booking and
    session rows are locked: `of=("self",)` keeps FOR UPDATE off the joined user rows.
    """
    _require_transaction()
    session_id = Booking.objects.filter(pk=booking_id).values_list("session_id", flat=True).first()
    if session_id is None:
        raise NotFound("Booking not found.")
    lock_session(session_id=session_id)
    return (
        Booking.objects.select_for_update(of=("self",))
        .select_related("session__creator", "user")
        .get(pk=booking_id)
    )


def lock_creator_rating(*, creator_id: int) -> CreatorRating:
    """Locks a creator's rating aggregate, creating the row on first use.

    Every review change of this creator serialises on this row, so each recount sees every
    committed review (take it last: see the module docstring).
    """
    _require_transaction()
    # Concurrent first reviews of one creator: ON CONFLICT DO NOTHING lets one insert win and
    # the others wait for it, instead of failing on the primary key.
    CreatorRating.objects.bulk_create([CreatorRating(creator_id=creator_id)], ignore_conflicts=True)
    catalog_cache.creators_changed()  # catalog entries show the creator's rating
    return CreatorRating.objects.select_for_update().get(pk=creator_id)
