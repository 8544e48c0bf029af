"""Reviews of sessions by the people who attended them, and each creator's rating aggregate."""

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import models

MIN_RATING = 1
MAX_RATING = 5
# Plain-text limits (characters). The API stores and returns the text verbatim, never as HTML.
COMMENT_MAX_LENGTH = 2000
REPLY_MAX_LENGTH = 2000
REPORT_REASON_MAX_LENGTH = 1000

AVERAGE_PLACES = Decimal("0.01")


class Review(models.Model):
    """One attendee's rating of one session they attended: at most one per booking.

    `session` and `creator` repeat what `booking` implies, so that the public lists and the
    creator's aggregate are read off their own indexes without joining through bookings.
    A hidden review (staff moderation) leaves every list and every average.
    """

    booking = models.ForeignKey("backend.Booking", on_delete=models.PROTECT, related_name="reviews")
    session = models.ForeignKey("backend.Session", on_delete=models.PROTECT, related_name="reviews")
    creator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_received"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews_written"
    )
    rating = models.PositiveSmallIntegerField()
    comment = models.TextField(blank=True, max_length=COMMENT_MAX_LENGTH)
    reply = models.TextField(blank=True, max_length=REPLY_MAX_LENGTH)
    replied_at = models.DateTimeField(null=True, blank=True)
    is_hidden = models.BooleanField(default=False)
    hidden_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "reviews"
        ordering = ["-created_at", "-id"]
        constraints = [
            # Second line of defence behind the service's lock: one review per booking.
            models.UniqueConstraint(fields=["booking"], name="review_one_per_booking"),
            models.CheckConstraint(
                condition=models.Q(rating__gte=MIN_RATING, rating__lte=MAX_RATING),
                name="review_rating_1_to_5",
            ),
        ]
        indexes = [
            # The public lists: a creator's or a session's visible reviews, newest first.
            models.Index(
                fields=["creator", "-created_at", "-id"],
                condition=models.Q(is_hidden=False),
                name="review_creator_visible_idx",
            ),
            models.Index(
                fields=["session", "-created_at", "-id"],
                condition=models.Q(is_hidden=False),
                name="review_session_visible_idx",
            ),
            # The aggregate's recount: a creator's visible ratings, read off the index alone.
            models.Index(
                fields=["creator", "is_hidden", "rating"], name="review_creator_rating_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"Review #{self.pk} of booking #{self.booking_id}: {self.rating}/5"


class ReviewReport(models.Model):
    """A signed-in user's report of a review, for staff to look at (one per user and review)."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    reason = models.TextField(max_length=REPORT_REASON_MAX_LENGTH)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "review_reports"
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "reporter"], name="review_report_once"),
        ]

    def __str__(self) -> str:
        return f"Report of review #{self.review_id} by {self.reporter_id}"


class CreatorRating(models.Model):
    """A creator's visible reviews, counted: what `creator.rating` shows and the catalog sorts by.

    Written only by backend/services/reviews.py, recounted from the reviews in the same
    transaction as each review change and under this row's lock, so it is always exact.
    No row (or count 0): no rating yet, `average` null.
    """

    creator = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="creator_rating",
    )
    review_count = models.PositiveIntegerField(default=0)
    rating_sum = models.PositiveIntegerField(default=0)
    # rating_sum / review_count rounded to 2 places, stored so that the catalog can sort by it.
    average = models.DecimalField(max_digits=3, decimal_places=2, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "creator_ratings"

    def __str__(self) -> str:
        return f"{self.creator_id}: {self.average} ({self.review_count})"

    @staticmethod
    def average_of(*, rating_sum: int, review_count: int) -> Decimal | None:
        if not review_count:
            return None
        return (Decimal(rating_sum) / Decimal(review_count)).quantize(
            AVERAGE_PLACES, rounding=ROUND_HALF_UP
        )
