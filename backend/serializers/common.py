"""Nested shapes shared by several domains (CONTRACT.md: `creator`, `user`, `session`)."""

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.models import Session, User
from backend.timezones import TIMEZONE_MAX_LENGTH, is_valid_timezone


def absolute_url(serializer: serializers.Field, url: str | None) -> str | None:
    """Local media URLs are site-relative (`/media/...`); clients get them absolute."""
    request = serializer.context.get("request")
    if url and url.startswith("/") and request is not None:
        return request.build_absolute_uri(url)
    return url


class TimeZoneField(serializers.CharField):
    """An IANA time zone name ("Europe/Berlin", "UTC"); anything else is a 400."""

    default_error_messages = {
        "invalid_timezone": "Unknown time zone: use an IANA name such as Europe/Berlin or UTC.",
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", TIMEZONE_MAX_LENGTH)
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> str:
        name = super().to_internal_value(data)
        if not is_valid_timezone(name):
            self.fail("invalid_timezone")
        return name


class UserSummarySerializer(serializers.ModelSerializer):
    """A session's creator as the catalog shows it."""

    avatar = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "first_name", "last_name", "avatar"]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField(allow_null=True))
    def get_avatar(self, user: User) -> str | None:
        return absolute_url(self, user.avatar_link)


class UserRefSerializer(serializers.ModelSerializer):
    """The booking's user: `{id, username}`."""

    class Meta:
        model = User
        fields = ["id", "username"]
        read_only_fields = fields


class SessionSummarySerializer(serializers.ModelSerializer):
    """A booking's session: `{id, title, start_time, end_time, creator}`.

    Needs the session's creator loaded (`select_related("session__creator")`).
    """

    end_time = serializers.DateTimeField(read_only=True)
    creator = UserSummarySerializer(read_only=True)

    class Meta:
        model = Session
        fields = ["id", "title", "start_time", "end_time", "creator"]
        read_only_fields = fields


def page_of(
    item_serializer: type[serializers.Serializer], name: str
) -> type[serializers.Serializer]:
    """Schema only: one page of a paginated list of `item_serializer` (`name` must be unique)."""
    fields = {
        "count": serializers.IntegerField(),
        "next": serializers.URLField(allow_null=True),
        "previous": serializers.URLField(allow_null=True),
        "results": item_serializer(many=True),
        "__doc__": f"Schema only: one page of {item_serializer.__name__} items.",
    }
    return type(name, (serializers.Serializer,), fields)
