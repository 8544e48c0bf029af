"""Review reads: the public lists (a session's, a creator's) and one review.

Hidden reviews exist only for staff in the admin: every read here leaves them out. Each list is
one count and one page query (the author comes along by a join).
"""

from django.db.models import QuerySet

from backend.exceptions import NotFound
from backend.models import Review, Session, User


def _visible() -> QuerySet[Review]:
    return Review.objects.filter(is_hidden=False).select_related("author")


def review_get_visible(*, review_id: int) -> Review:
    review = _visible().filter(pk=review_id).first()
    if review is None:
        raise NotFound("Review not found.", code="review_not_found")
    return review


def review_list_for_session(*, session_id: int) -> QuerySet[Review]:
    """A published (or cancelled) session's visible reviews, newest first; 404 for a draft."""
    public = [Session.Status.PUBLISHED, Session.Status.CANCELLED]
    if not Session.objects.filter(pk=session_id, status__in=public).exists():
        raise NotFound("Session not found.")
    return _visible().filter(session_id=session_id).order_by("-created_at", "-id")


def review_list_for_creator(*, creator: User) -> QuerySet[Review]:
    """Every visible review of the creator's sessions, newest first."""
    return _visible().filter(creator_id=creator.pk).order_by("-created_at", "-id")
