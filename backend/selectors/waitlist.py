"""Waitlist reads: a user's entries, a session's list for its creator (CONTRACT.md, "Waitlist").

`position` (1 = next in line) is an annotation counting the waiting entries ahead, so a page
costs the same number of queries whatever its size; entries that are not waiting have none.
"""

from django.db.models import Case, Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from backend.models import Session, User, WaitlistEntry

Waiting = WaitlistEntry.Status.WAITING


def _position() -> Case:
    ahead = (
        WaitlistEntry.objects.filter(session=OuterRef("session"), status=Waiting)
        .filter(
            Q(created_at__lt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), id__lt=OuterRef("id"))
        )
        .order_by()
        .values("session")
        .annotate(total=Count("pk"))
        .values("total")
    )
    return Case(
        When(
            status=Waiting,
            then=Coalesce(Subquery(ahead, output_field=IntegerField()), Value(0)) + 1,
        ),
        default=None,
        output_field=IntegerField(),
    )


def waitlist_for_user(*, user: User) -> QuerySet[WaitlistEntry]:
    """The user's entries in every status, latest first."""
    return (
        WaitlistEntry.objects.filter(user=user)
        .select_related("session__creator")
        .annotate(position=_position())
        .order_by("-created_at", "-id")
    )


def waitlist_for_session(*, session: Session) -> QuerySet[WaitlistEntry]:
    """A session's entries in every status, in the order they are served."""
    return (
        WaitlistEntry.objects.filter(session=session)
        .select_related("user")
        .annotate(position=_position())
        .order_by("created_at", "id")
    )


def waitlist_entry_for_user(*, user: User, entry_id: int) -> WaitlistEntry:
    return waitlist_for_user(user=user).get(pk=entry_id)
