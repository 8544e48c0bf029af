"""The signed-in user's own profile (CONTRACT.md "User") and what may be changed in it."""

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import User
from backend.serializers.common import absolute_url

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
            "date_joined",
        ]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_avatar(self, user: User) -> str | None:
        return absolute_url(self, user.avatar_link)


class UserProfileUpdateSerializer(serializers.Serializer):
    """PUT sends all three fields, PATCH any of them. Other profile keys are ignored."""

    first_name = serializers.CharField(max_length=150, allow_blank=True)
    last_name = serializers.CharField(max_length=150, allow_blank=True)
    bio = serializers.CharField(max_length=2000, allow_blank=True, trim_whitespace=False)

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
