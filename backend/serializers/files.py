"""Uploads (CONTRACT.md, Storage): multipart input, `{key, url}` output, `{key}` to delete."""

from drf_yasg.utils import swagger_serializer_method
from rest_framework import serializers

from backend.integrations.storage import object_url
from backend.models import StoredFile


class FileUploadInputSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text="A JPEG, PNG or WebP image (the content decides, not the name), "
        "at most UPLOAD_MAX_MB (5 MB by default)."
    )
    purpose = serializers.ChoiceField(
        choices=StoredFile.Purpose.choices,
        help_text="`avatar` (stored as WebP, at most 512 px) or `session_image` "
        "(stored as JPEG, at most 2048 px).",
    )
    session_id = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Required for `session_image`: one of your own sessions.",
    )

    def validate(self, attrs):
        if attrs["purpose"] == StoredFile.Purpose.SESSION_IMAGE and "session_id" not in attrs:
            raise serializers.ValidationError(
                {"session_id": ["This field is required for a session image."]}
            )
        if attrs["purpose"] == StoredFile.Purpose.AVATAR and "session_id" in attrs:
            raise serializers.ValidationError(
                {"session_id": ["Only session images belong to a session."]}
            )
        return attrs


class StoredFileResultSerializer(serializers.ModelSerializer):
    """The stored object's key (to delete it later) and a URL a browser can load."""

    url = serializers.SerializerMethodField()

    class Meta:
        model = StoredFile
        fields = ["key", "url"]
        read_only_fields = fields

    @swagger_serializer_method(serializers.URLField())
    def get_url(self, stored: StoredFile) -> str:
        url = object_url(key=stored.key)
        request = self.context.get("request")
        # File system storage answers a path (/media/...); S3 answers an absolute URL, which
        # build_absolute_uri returns unchanged.
        return request.build_absolute_uri(url) if request is not None else url


class FileDeleteInputSerializer(serializers.Serializer):
    key = serializers.CharField(
        max_length=255, help_text="The `key` returned by the upload; only your own files."
    )
