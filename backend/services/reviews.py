"""Review writes: create, edit, reply, report, hide/unhide, and the creator's rating aggregate.

Who may review (CONTRACT.md "Creator profiles and reviews"): the booking's user, for a confirmed
booking of a session that has ended, within REVIEW_WINDOW_DAYS of its end, once per booking.
The author may edit for REVIEW_EDIT_WINDOW_DAYS; the session's creator may reply once; any
signed-in user may report; staff hide and unhide (from the admin).

Every change that can move a creator's rating (create, edit, hide, unhide) takes the creator's
`CreatorRating` row lock (`lock_creator_rating`) before it writes the review, and recounts the
aggregate from the visible reviews in the same transaction. Writers of one creator therefore
queue on that row, each recount sees every review committed before it, and the aggregate is
exact under concurrency; a recount (one index-only aggregate) is cheap and cannot drift.
"""

from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Sum
from django.utils import timezone

from backend.exceptions import Conflict, Forbidden, NotFound
from backend.models import Booking, CreatorRating, Review, ReviewReport, User
from backend.services.booking_changes import Role, role_of
from backend.services.locking import lock_booking, lock_creator_rating
from backend.services.webhooks import emit_review_created

__all__ = [
    "REVIEW_EDIT_WINDOW_DAYS",
    "REVIEW_WINDOW_DAYS",
    "creator_rating_recount",
    "review_create",
    "review_reply",
    "review_report",
    "review_set_hidden",
    "review_update",
]

REVIEW_WINDOW_DAYS = 30
REVIEW_EDIT_WINDOW_DAYS = 7

ONE_PER_BOOKING_CONSTRAINT = "review_one_per_booking"
REPORT_ONCE_CONSTRAINT = "review_report_once"


def _violates(error: IntegrityError, constraint: str, sqlite_columns: str) -> bool:
    # PostgreSQL names the constraint; SQLite only names the columns of the unique index.
    diag = getattr(error.__cause__, "diag", None)
    if diag is not None and getattr(diag, "constraint_name", None):
        return diag.constraint_name == constraint
    message = str(error)
    return constraint in message or f"UNIQUE constraint failed: {sqlite_columns}" in message


def creator_rating_recount(*, rating: CreatorRating) -> CreatorRating:
    """Recounts a creator's visible reviews into their aggregate. Caller holds its row lock."""
    totals = Review.objects.filter(creator_id=rating.creator_id, is_hidden=False).aggregate(
        count=Count("id"), total=Sum("rating")
    )
    rating.review_count = totals["count"]
    rating.rating_sum = totals["total"] or 0
    rating.average = CreatorRating.average_of(
        rating_sum=rating.rating_sum, review_count=rating.review_count
    )
    rating.save(update_fields=["review_count", "rating_sum", "average", "updated_at"])
    return rating


def _visible_review(review_id: int) -> Review:
    """A review the API may show (hidden ones are 404 to everyone but staff in the admin)."""
    review = (
        Review.objects.select_related("author", "session").filter(pk=review_id, is_hidden=False)
    ).first()
    if review is None:
        raise NotFound("Review not found.", code="review_not_found")
    return review


def _lock_review(review_id: int) -> Review:
    """Re-reads a review under its row lock. Caller holds the creator's rating lock."""
    review = Review.objects.select_for_update().filter(pk=review_id).first()
    if review is None:
        raise NotFound("Review not found.", code="review_not_found")
    return review


@transaction.atomic
def review_create(*, user: User, booking_id: int, rating: int, comment: str = "") -> Review:
    """Reviews a booking's session. 404 not the user's or the creator's booking; 403 for the
    session's creator; 409 not confirmed, not ended, window closed, already reviewed."""
    visible = Booking.objects.filter(pk=booking_id).select_related("session").first()
    role = None if visible is None else role_of(actor=user, booking=visible)
    if role is None:
        raise NotFound("Booking not found.")
    if role is not Role.OWNER:
        raise Forbidden("Only the person who booked can review it.", code="not_booking_user")
    # Session then booking, then the rating last: the order of backend/services/locking.py.
    # A concurrent cancellation of this booking is decided before or after, never during.
    booking = lock_booking(booking_id=booking_id)
    if booking.status != Booking.Status.CONFIRMED:
        raise Conflict("Only a confirmed booking can be reviewed.", code="booking_not_confirmed")
    now = timezone.now()
    ended_at = booking.session.end_time
    if ended_at > now:
        raise Conflict("The session has not ended yet.", code="session_not_ended")
    if now > ended_at + timedelta(days=REVIEW_WINDOW_DAYS):
        raise Conflict(
            f"Reviews close {REVIEW_WINDOW_DAYS} days after the session ended.",
            code="review_window_closed",
        )
    aggregate = lock_creator_rating(creator_id=booking.session.creator_id)
    # Under the booking lock this check cannot race; the constraint is the second line.
    if Review.objects.filter(booking_id=booking.pk).exists():
        raise Conflict("This booking has already been reviewed.", code="already_reviewed")
    try:
        with transaction.atomic():
            review = Review.objects.create(
                booking=booking,
                session=booking.session,
                creator_id=booking.session.creator_id,
                author=user,
                rating=rating,
                comment=comment,
            )
    except IntegrityError as error:
        if _violates(error, ONE_PER_BOOKING_CONSTRAINT, "reviews.booking_id"):
            raise Conflict(
                "This booking has already been reviewed.", code="already_reviewed"
            ) from error
        raise
    creator_rating_recount(rating=aggregate)
    emit_review_created(review)
    return review


@transaction.atomic
def review_update(
    *, review_id: int, actor: User, rating: int | None = None, comment: str | None = None
) -> Review:
    """The author changes the rating and/or comment within REVIEW_EDIT_WINDOW_DAYS."""
    visible = _visible_review(review_id)
    if visible.author_id != actor.pk:
        raise Forbidden("Only the review's author can edit it.", code="not_review_author")
    aggregate = lock_creator_rating(creator_id=visible.creator_id)
    review = _lock_review(review_id)
    if review.is_hidden:
        raise NotFound("Review not found.", code="review_not_found")
    if timezone.now() > review.created_at + timedelta(days=REVIEW_EDIT_WINDOW_DAYS):
        raise Conflict(
            f"A review can be edited for {REVIEW_EDIT_WINDOW_DAYS} days after it was written.",
            code="edit_window_closed",
        )
    changed = []
    if rating is not None:
        review.rating = rating
        changed.append("rating")
    if comment is not None:
        review.comment = comment
        changed.append("comment")
    if changed:
        review.save(update_fields=[*changed, "updated_at"])
        if "rating" in changed:
            creator_rating_recount(rating=aggregate)
    return review


@transaction.atomic
def review_reply(*, review_id: int, actor: User, text: str) -> Review:
    """The session's creator answers a review, once (409 `already_replied`)."""
    visible = _visible_review(review_id)
    if visible.creator_id != actor.pk:
        raise Forbidden("Only the session's creator can reply.", code="not_session_creator")
    # A reply does not move the rating: the review's own lock is enough.
    review = _lock_review(review_id)
    if review.is_hidden:
        raise NotFound("Review not found.", code="review_not_found")
    if review.replied_at is not None:
        raise Conflict("This review already has a reply.", code="already_replied")
    review.reply = text
    review.replied_at = timezone.now()
    review.save(update_fields=["reply", "replied_at", "updated_at"])
    return review


@transaction.atomic
def review_report(*, review_id: int, reporter: User, reason: str) -> ReviewReport:
    """Any signed-in user flags a review for staff, once per review (409 `already_reported`)."""
    review = _visible_review(review_id)
    try:
        with transaction.atomic():
            return ReviewReport.objects.create(review=review, reporter=reporter, reason=reason)
    except IntegrityError as error:
        if _violates(error, REPORT_ONCE_CONSTRAINT, "review_reports.review_id"):
            raise Conflict(
                "You have already reported this review.", code="already_reported"
            ) from error
        raise


@transaction.atomic
def review_set_hidden(*, review_id: int, hidden: bool) -> Review:
    """Staff moderation: a hidden review leaves every list and its creator's average."""
    creator_id = Review.objects.filter(pk=review_id).values_list("creator_id", flat=True).first()
    if creator_id is None:
        raise NotFound("Review not found.", code="review_not_found")
    aggregate = lock_creator_rating(creator_id=creator_id)
    review = _lock_review(review_id)
    if review.is_hidden != hidden:
        review.is_hidden = hidden
        review.hidden_at = timezone.now() if hidden else None
        review.save(update_fields=["is_hidden", "hidden_at", "updated_at"])
        creator_rating_recount(rating=aggregate)
    return review
