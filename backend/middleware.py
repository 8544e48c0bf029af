import logging
import re
import uuid

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

logger = logging.getLogger(__name__)

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller (when sane) or makes one, and returns it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        return response


class ApiErrorMiddleware:
    """Errors that escape DRF under /api/ still answer JSON, never Django's HTML pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning("database unavailable on %s", request.path)
            response = JsonResponse(
                {
                    "detail": "The database is temporarily unavailable; please retry.",
                    "code": "database_unavailable",
                },
                status=503,
            )
            response["Retry-After"] = "1"
            return response
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(
            {"detail": "Internal server error.", "code": "server_error"}, status=500
        )
