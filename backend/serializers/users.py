"""The signed-in user's own profile (CONTRACT.md "User") and what may be changed in it."""

from django.urls import reverse
from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import User
from backend.serializers.common import TimeZoneField, absolute_url

# Never writable through a profile update (CONTRACT.md): sending one is a 400, not a silent
# no-op, so a client learns at once that e.g. the role changes via become_creator.
PROTECTED_PROFILE_FIELDS = (
    "username",
    "email",
    "role",
    "oauth_provider",
    "oauth_uid",
    "is_staff",
    "is_superuser",
    "is_active",
    "password",
    "groups",
    "user_permissions",
    "last_login",
    "date_joined",
    "calendar_token",
    "calendar_feed_url",
)


class UserProfileSerializer(serializers.ModelSerializer):
    """The full profile, for its owner: `GET /api/users/me/` and sign-in answers."""

    avatar = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "avatar",
            "bio",
            "oauth_provider",
            "timezone",
            "date_joined",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_avatar(self, user: User) -> str | None:
        return absolute_url(self, user.avatar_link)


def calendar_feed_path(user: User) -> str:
    return reverse("calendar-feed", kwargs={"calendar_token": user.calendar_token})


class UserMeSerializer(UserProfileSerializer):
    """`GET /api/users/me/` and the answers of its own writes: the profile plus the secret URL
    of the owner's calendar feed (only ever shown to them)."""

    calendar_feed_url = serializers.SerializerMethodField(
        help_text=(
            "Subscribe to it in a calendar app (or replace https:// with webcal://). No sign-in: "
            "the URL is the secret; POST /api/users/calendar_token/rotate/ replaces it."
        )
    )

    class Meta(UserProfileSerializer.Meta):
        fields = [*UserProfileSerializer.Meta.fields, "calendar_feed_url"]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField())
    def get_calendar_feed_url(self, user: User) -> str:
        return absolute_url(self, calendar_feed_path(user)) or calendar_feed_path(user)


class CalendarFeedUrlSerializer(serializers.Serializer):
    """The answer of a token rotation."""

    calendar_feed_url = serializers.URLField()


class UserProfileUpdateSerializer(serializers.Serializer):
    """PUT sends the three text fields (and `timezone` if it changes), PATCH any of them.
    Other profile keys are ignored."""

    first_name = serializers.CharField(max_length=150, allow_blank=True)
    last_name = serializers.CharField(max_length=150, allow_blank=True)
    bio = serializers.CharField(max_length=2000, allow_blank=True, trim_whitespace=False)
    # Optional even for PUT: clients written before it existed keep working.
    timezone = TimeZoneField(
        required=False,
        help_text="IANA name (Europe/Paris, America/New_York, UTC): e-mails state times in it.",
    )

    def validate(self, attrs: dict) -> dict:
        if isinstance(self.initial_data, dict):
            sent = [field for field in PROTECTED_PROFILE_FIELDS if field in self.initial_data]
            if sent:
                raise serializers.ValidationError(
                    {
                        field: [
                            "This field cannot be changed here."
                            + (" Use POST /api/users/become_creator/." if field == "role" else "")
                        ]
                        for field in sent
                    }
                )
        return attrs
