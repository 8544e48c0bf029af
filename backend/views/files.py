"""Uploads: `POST /api/storage/upload/` and `DELETE /api/storage/delete/`."""

from drf_yasg import openapi
from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from backend.serializers.files import (
    FileDeleteInputSerializer,
    FileUploadInputSerializer,
    StoredFileResultSerializer,
)
from backend.services.files import (
    file_delete,
    file_upload,
    too_large_error,
    upload_max_request_bytes,
)
from backend.throttling import ScopedRateThrottle, UserRateThrottle

error_response_schema = openapi.Schema(
    type=openapi.TYPE_OBJECT,
    properties={
        "detail": openapi.Schema(type=openapi.TYPE_STRING),
        "code": openapi.Schema(type=openapi.TYPE_STRING),
    },
)


def error_response(description: str) -> openapi.Response:
    return openapi.Response(description, error_response_schema)


class UploadMultiPartParser(MultiPartParser):
    """Refuses an oversize body from its Content-Length, before reading any of it.

    Django would otherwise spool the whole body to a temporary file before the view could look
    at the file's size. nginx's client_max_body_size is the first line of the same defence.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        request = parser_context["request"]
        try:
            content_length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            content_length = 0
        if content_length > upload_max_request_bytes():
            raise too_large_error()
        return super().parse(stream, media_type, parser_context)


class FileUploadView(APIView):
    parser_classes = [UploadMultiPartParser]
    # Decoding images costs CPU and memory: uploads have their own, lower rate.
    throttle_classes = [UserRateThrottle, ScopedRateThrottle]
    throttle_scope = "uploads"

    @swagger_auto_schema(
        operation_id="storage_upload",
        operation_summary="Upload an avatar or a session image",
        operation_description=(
            "Multipart form. The image is decoded (JPEG, PNG or WebP only, whatever its name or "
            "declared type), re-encoded without metadata, stored under a random key and set "
            "as your avatar or your session's image; the previous one is deleted. An image "
            "whose decoding would need more than 48 MB (about 12 megapixels of RGB PNG or "
            "JPEG, 3 of WebP; JPEGs are decoded scaled down) is a 400 `image_too_large`."
        ),
        request_body=FileUploadInputSerializer,
        responses={
            201: StoredFileResultSerializer,
            400: error_response("Not an accepted image, or invalid fields."),
            404: error_response("session_id is not one of your sessions."),
            413: error_response("The file is larger than UPLOAD_MAX_MB."),
            503: error_response(
                "Storage is unavailable (`storage_unavailable`), or every image decode slot "
                "of the server stayed busy (`uploads_busy`); nothing was stored."
            ),
        },
    )
    def post(self, request):
        serializer = FileUploadInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        stored = file_upload(
            owner=request.user,
            purpose=data["purpose"],
            upload=data["file"],
            session_id=data.get("session_id"),
        )
        return Response(
            StoredFileResultSerializer(stored, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class FileDeleteView(APIView):
    parser_classes = [JSONParser]

    @swagger_auto_schema(
        operation_id="storage_delete",
        operation_summary="Delete one of your uploaded files",
        operation_description=(
            "Deletes the object and clears the avatar or session image that uses it. "
            "Someone else's key is a 404."
        ),
        request_body=FileDeleteInputSerializer,
        responses={
            204: "Deleted.",
            404: error_response("No such file of yours."),
            503: error_response("Storage is unavailable; nothing was deleted."),
        },
    )
    def delete(self, request):
        serializer = FileDeleteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        file_delete(owner=request.user, key=serializer.validated_data["key"])
        return Response(status=status.HTTP_204_NO_CONTENT)
