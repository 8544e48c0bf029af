import logging
import re
import time
import uuid

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, JsonResponse

from backend.errors import ErrorCode, error_body
from backend.exceptions import django_refusal
from backend.logs import request_id_var, user_id_var

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("backend.access")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    """Takes X-Request-ID from the caller (when sane) or makes one, returns it, and writes
    one access log line per request (method, path, status, duration, user)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        request_token = request_id_var.set(request.request_id)
        user_token = user_id_var.set(None)
        try:
            response = self.get_response(request)
            response["X-Request-ID"] = request.request_id
            # DRF authenticates inside the view; its user is on the wrapped request.
            user = getattr(request, "user", None)
            if user is not None and user.is_authenticated:
                user_id_var.set(user.pk)
            access_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "request_id": request.request_id,
                    "user_id": user_id_var.get(),
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            return response
        finally:
            request_id_var.reset(request_token)
            user_id_var.reset(user_token)


class ApiErrorMiddleware:
    """Errors that escape DRF under /api/ still answer JSON, never Django's HTML pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code == 204
            and request.path.startswith("/api/")
            and "Content-Type" not in response
        ):
            # Swagger 2.0 has one `produces` list per operation, so a 204 is documented as
            # JSON too; say so on the (empty) answer.
            response["Content-Type"] = "application/json"
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> JsonResponse | None:
        if not request.path.startswith("/api/"):
            return None
        refusal = django_refusal(exception)
        if refusal is not None:
            # Django's own refusals (a body over DATA_UPLOAD_MAX_MEMORY_SIZE, too many fields,
            # a bad Host) are the client's fault: a 4xx, never the catch-all 500 below.
            status_code, body = refusal
            logger.warning("request refused on %s: %s", request.path, type(exception).__name__)
            return JsonResponse(body, status=status_code)
        if isinstance(exception, OperationalError | InterfaceError):
            logger.warning("database unavailable on %s", request.path)
            response = JsonResponse(
                error_body(
                    ErrorCode.DATABASE_UNAVAILABLE,
                    "The database is temporarily unavailable; please retry.",
                ),
                status=503,
            )
            response["Retry-After"] = "1"
            return response
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(
            error_body(ErrorCode.SERVER_ERROR, "Internal server error."), status=500
        )
