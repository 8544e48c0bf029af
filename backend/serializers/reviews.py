"""Review shapes: one output shape, separate input shapes (CONTRACT.md "Creator profiles and
reviews").

All text is plain text: stored and returned exactly as sent, never rendered or accepted as
HTML by this API (clients must display it as text). DRF's CharField already refuses NUL and
lone surrogate characters; the lengths are the model's.
"""

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import Review, ReviewReport
from backend.models.reviews import (
    COMMENT_MAX_LENGTH,
    MAX_RATING,
    MIN_RATING,
    REPLY_MAX_LENGTH,
    REPORT_REASON_MAX_LENGTH,
)
from backend.serializers.catalog import UtcDateTimeField
from backend.serializers.common import UserRefSerializer, page_of


class ReviewSerializer(serializers.ModelSerializer):
    """A visible review. Needs `select_related("author")`."""

    author = UserRefSerializer(read_only=True)
    booking = serializers.IntegerField(source="booking_id", read_only=True)
    session = serializers.IntegerField(source="session_id", read_only=True)
    reply = serializers.SerializerMethodField()
    replied_at = UtcDateTimeField(read_only=True, allow_null=True)
    created_at = UtcDateTimeField(read_only=True)
    updated_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "booking",
            "session",
            "author",
            "rating",
            "comment",
            "reply",
            "replied_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.CharField(allow_null=True))
    def get_reply(self, review: Review) -> str | None:
        """The creator's answer (plain text), null until they reply."""
        return review.reply if review.replied_at is not None else None


class ReviewCreateSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=MIN_RATING, max_value=MAX_RATING)
    comment = serializers.CharField(
        max_length=COMMENT_MAX_LENGTH, required=False, allow_blank=True, default=""
    )


class ReviewUpdateSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=MIN_RATING, max_value=MAX_RATING, required=False)
    comment = serializers.CharField(max_length=COMMENT_MAX_LENGTH, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("Send `rating`, `comment` or both.")
        return attrs


class ReviewReplySerializer(serializers.Serializer):
    text = serializers.CharField(max_length=REPLY_MAX_LENGTH)


class ReviewReportCreateSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=REPORT_REASON_MAX_LENGTH)


class ReviewReportSerializer(serializers.ModelSerializer):
    review = serializers.IntegerField(source="review_id", read_only=True)
    created_at = UtcDateTimeField(read_only=True)

    class Meta:
        model = ReviewReport
        fields = ["id", "review", "reason", "created_at"]
        read_only_fields = fields


ReviewPageSerializer = page_of(ReviewSerializer, "ReviewPageSerializer")
