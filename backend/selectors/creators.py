"""Creator profiles: the public list and one profile, each in a fixed number of queries.

A creator is public once they have a published session. A row carries its rating aggregate
(a join), `sessions_held` and `upcoming_sessions` (subqueries); `categories` come from one more
query for the whole page (`creator_categories`).
"""

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from backend.exceptions import NotFound
from backend.models import Session, User
from backend.models.catalog import session_end_time

# Free-text search over a creator's name and bio: at most this many words, each must match.
MAX_SEARCH_WORDS = 8


def _published_sessions() -> QuerySet[Session]:
    return Session.objects.filter(creator=OuterRef("pk"), status=Session.Status.PUBLISHED)


def _count(sessions: QuerySet[Session]) -> Coalesce:
    counted = sessions.order_by().values("creator").annotate(total=Count("id")).values("total")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def creator_list(*, now: datetime | None = None) -> QuerySet[User]:
    """Active users with at least one published session, with rating and session counts."""
    now = now or timezone.now()
    held = _published_sessions().alias(ends_at=session_end_time()).filter(ends_at__lte=now)
    upcoming = _published_sessions().filter(start_time__gt=now)
    return (
        User.objects.filter(is_active=True)
        .filter(Exists(_published_sessions()))
        .select_related("creator_rating")
        .annotate(sessions_held=_count(held), upcoming_sessions=_count(upcoming))
        .order_by("username", "id")
    )


def creator_get(*, username: str) -> User:
    creator = creator_list().filter(username=username).first()
    if creator is None:
        raise NotFound("Creator not found.", code="creator_not_found")
    return creator


def creator_search(queryset: QuerySet[User], term: str) -> QuerySet[User]:
    """Creators whose username, first or last name or bio contains every word of `term`."""
    for word in term.split()[:MAX_SEARCH_WORDS]:
        queryset = queryset.filter(
            Q(username__icontains=word)
            | Q(first_name__icontains=word)
            | Q(last_name__icontains=word)
            | Q(bio__icontains=word)
        )
    return queryset


def creator_with_category(queryset: QuerySet[User], category: str) -> QuerySet[User]:
    """Creators with a published session in `category` (case-insensitive)."""
    return queryset.filter(Exists(_published_sessions().filter(category__iexact=category)))


def creator_categories(*, creator_ids: Iterable[int]) -> dict[int, list[str]]:
    """Each creator's categories (sorted, distinct, of published sessions): one query."""
    categories: dict[int, list[str]] = defaultdict(list)
    ids = list(creator_ids)
    if not ids:
        return categories
    pairs = (
        Session.objects.filter(creator_id__in=ids, status=Session.Status.PUBLISHED)
        .exclude(category="")
        .values_list("creator_id", "category")
        .distinct()
        .order_by("creator_id", "category")
    )
    for creator_id, category in pairs:
        categories[creator_id].append(category)
    return categories
