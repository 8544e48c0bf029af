"""Creator shapes: the rating everyone sees, the creator in catalog entries, the public profile."""

from typing import Any

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import CreatorRating, User
from backend.serializers.common import UserSummarySerializer, absolute_url, page_of


class CreatorRatingSerializer(serializers.Serializer):
    """`{average, count}` over the creator's visible reviews; `average` is null without any."""

    average = serializers.FloatField(
        allow_null=True, read_only=True, help_text="Mean rating (1-5), 2 decimals; null if none."
    )
    count = serializers.IntegerField(read_only=True, help_text="Visible reviews counted.")


def rating_of(user: User) -> dict[str, Any]:
    """The creator's `{average, count}`. Load it with `select_related("creator_rating")`
    (`"creator__creator_rating"` from a session), or this costs a query."""
    try:
        aggregate = user.creator_rating
    except CreatorRating.DoesNotExist:
        return {"average": None, "count": 0}
    average = aggregate.average
    return {
        "average": None if average is None or not aggregate.review_count else float(average),
        "count": aggregate.review_count,
    }


class CreatorSummarySerializer(UserSummarySerializer):
    """A session's creator in catalog entries and session detail, with their rating."""

    rating = serializers.SerializerMethodField()

    class Meta(UserSummarySerializer.Meta):
        fields = [*UserSummarySerializer.Meta.fields, "rating"]
        read_only_fields = fields

    @swagger_serializer_method(CreatorRatingSerializer)
    def get_rating(self, user: User) -> dict[str, Any]:
        return rating_of(user)


class CreatorProfileSerializer(serializers.ModelSerializer):
    """A public creator profile (`creators/`, `creators/{username}/`).

    Needs `creator_list()` rows (rating joined, session counts annotated) and
    `context["categories"]`: `{creator id: [category, ...]}` from `creator_categories()`.
    """

    avatar = serializers.SerializerMethodField()
    categories = serializers.SerializerMethodField()
    rating = serializers.SerializerMethodField()
    sessions_held = serializers.IntegerField(
        read_only=True, help_text="Published sessions that have ended."
    )
    upcoming_sessions = serializers.IntegerField(
        read_only=True, help_text="Published sessions that have not started."
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "first_name",
            "last_name",
            "avatar",
            "bio",
            "categories",
            "rating",
            "sessions_held",
            "upcoming_sessions",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_avatar(self, user: User) -> str | None:
        return absolute_url(self, user.avatar_link)

    @swagger_serializer_method(serializers.ListField(child=serializers.CharField()))
    def get_categories(self, user: User) -> list[str]:
        return list(self.context.get("categories", {}).get(user.pk, []))

    @swagger_serializer_method(CreatorRatingSerializer)
    def get_rating(self, user: User) -> dict[str, Any]:
        return rating_of(user)


CreatorProfilePageSerializer = page_of(CreatorProfileSerializer, "CreatorProfilePageSerializer")
