"""Domain errors and the one handler that turns every API error into JSON.

Services raise a DomainError subclass with a message a person can read and a registered
`code` (backend/errors.py); the handler maps it to the HTTP status of CONTRACT.md. Views never
build error responses by hand. Every body is `{code, detail}`, validation errors add
`errors: {field: [message, ...]}`.
"""

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import (
    BadRequest,
    DisallowedHost,
    PermissionDenied,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import set_rollback

from backend.errors import ErrorCode, error_body
from backend.renderers import ORJSONRenderer

logger = logging.getLogger(__name__)


class DomainError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code: ErrorCode = ErrorCode.INVALID

    def __init__(self, message: str, *, code: str | ErrorCode | None = None):
        super().__init__(message)
        self.message = message
        registered_code = ErrorCode.lookup(self.default_code if code is None else code)
        if registered_code is None:
            # A code the API does not document: register it in backend/errors.py.
            raise ValueError(f"{code!r} is not a registered error code (backend/errors.py)")
        self.code: ErrorCode = registered_code


class ValidationFailed(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = ErrorCode.INVALID


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = ErrorCode.NOT_FOUND


class PayloadTooLarge(DomainError):
    """An upload over UPLOAD_MAX_MB (413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = ErrorCode.TOO_LARGE


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = ErrorCode.PERMISSION_DENIED


class Conflict(DomainError):
    """A state conflict: sold out, already booked, not cancellable (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = ErrorCode.CONFLICT


class Unprocessable(DomainError):
    """Well-formed, but cannot be done as asked (422): an Idempotency-Key reused for another
    request."""

    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = ErrorCode.IDEMPOTENCY_KEY_REUSED


class BookingError(Conflict):
    default_code = ErrorCode.BOOKING_CONFLICT


class IntegrationNotConfigured(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = ErrorCode.NOT_CONFIGURED


class IntegrationUnavailable(DomainError):
    """An external service (Stripe, S3, an OAuth provider) failed or timed out."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = ErrorCode.BAD_GATEWAY


class StorageUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = ErrorCode.STORAGE_UNAVAILABLE


# DRF's (and simplejwt's, which subclass them) exceptions, most specific first. A library
# exception whose own code is registered keeps it (simplejwt's `token_not_valid`); any other
# gets its class's code here, so the API never answers a code that is not in the registry.
LIBRARY_CODES: tuple[tuple[type[exceptions.APIException], ErrorCode], ...] = (
    (exceptions.ValidationError, ErrorCode.INVALID),
    (exceptions.ParseError, ErrorCode.PARSE_ERROR),
    (exceptions.NotAuthenticated, ErrorCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, ErrorCode.AUTHENTICATION_FAILED),
    (exceptions.PermissionDenied, ErrorCode.PERMISSION_DENIED),
    (exceptions.NotFound, ErrorCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, ErrorCode.METHOD_NOT_ALLOWED),
    (exceptions.NotAcceptable, ErrorCode.NOT_ACCEPTABLE),
    (exceptions.UnsupportedMediaType, ErrorCode.UNSUPPORTED_MEDIA_TYPE),
    (exceptions.Throttled, ErrorCode.THROTTLED),
)

# Django's own refusals of a request it cannot or will not read (it answers them 400 through
# handler400 when nothing catches them first).
DJANGO_REFUSALS: tuple[tuple[type[Exception], int, ErrorCode, str], ...] = (
    (
        RequestDataTooBig,
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        ErrorCode.REQUEST_TOO_LARGE,
        "The request body is larger than the limit.",
    ),
    (
        TooManyFieldsSent,
        status.HTTP_400_BAD_REQUEST,
        ErrorCode.TOO_MANY_FIELDS,
        "The request has too many fields.",
    ),
    (
        TooManyFilesSent,
        status.HTTP_400_BAD_REQUEST,
        ErrorCode.TOO_MANY_FIELDS,
        "The request has too many files.",
    ),
    (
        DisallowedHost,
        status.HTTP_400_BAD_REQUEST,
        ErrorCode.BAD_HOST,
        "This API is not served under that Host.",
    ),
    (
        SuspiciousOperation,
        status.HTTP_400_BAD_REQUEST,
        ErrorCode.BAD_REQUEST,
        "The request is malformed.",
    ),
    (BadRequest, status.HTTP_400_BAD_REQUEST, ErrorCode.BAD_REQUEST, "The request is malformed."),
    (
        UnreadablePostError,
        status.HTTP_400_BAD_REQUEST,
        ErrorCode.BAD_REQUEST,
        "The request body could not be read.",
    ),
)


def django_refusal(exc: Exception) -> tuple[int, dict[str, Any]] | None:
    """(status, body) for Django's request refusals, None for anything else."""
    for exception_class, status_code, code, detail in DJANGO_REFUSALS:
        if isinstance(exc, exception_class):
            return status_code, error_body(code, detail)
    return None


def registered(code: Any) -> ErrorCode | None:
    return ErrorCode.lookup(code)


def library_code(exc: exceptions.APIException) -> ErrorCode:
    own: Any = None
    if isinstance(exc.detail, exceptions.ErrorDetail):
        own = exc.detail.code
    elif isinstance(exc.detail, Mapping) and "detail" in exc.detail:  # simplejwt's shape
        own = exc.detail.get("code")
    validation = isinstance(exc, exceptions.ValidationError)
    if own is not None and not validation and (code := registered(own)) is not None:
        return code
    for exception_class, code in LIBRARY_CODES:
        if isinstance(exc, exception_class):
            return code
    if own is not None:
        logger.warning("unregistered error code %r from %s", own, type(exc).__name__)
    return ErrorCode.BAD_REQUEST if exc.status_code < 500 else ErrorCode.SERVER_ERROR


def field_errors(detail: Any) -> dict[str, Any]:
    """DRF's validation detail as `{field: [message, ...]}` (non-field ones included)."""
    if isinstance(detail, Mapping):
        return dict(detail)
    if isinstance(detail, list):
        return {"non_field_errors": detail}
    return {"non_field_errors": [detail]}


def first_message(errors: Any, path: str = "") -> str | None:
    """The first message as "field: message", so that `detail` alone says what to fix."""
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            name = path if key == "non_field_errors" else (f"{path}.{key}" if path else str(key))
            found = first_message(value, name)
            if found:
                return found
        return None
    if isinstance(errors, list):
        for index, value in enumerate(errors):
            nested = isinstance(value, Mapping | list)
            found = first_message(value, f"{path}[{index}]" if nested else path)
            if found:
                return found
        return None
    return f"{path}: {errors}" if path else str(errors)


def api_exception_response(exc: exceptions.APIException) -> Response:
    headers = {}
    if auth_header := getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = auth_header
    if wait := getattr(exc, "wait", None):
        headers["Retry-After"] = f"{int(wait)}"
    detail = exc.detail
    code = library_code(exc)
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(detail)
        body = error_body(code, first_message(errors) or "Invalid input.", errors)
    elif isinstance(detail, Mapping) and "detail" in detail:
        # simplejwt's {"detail", "code", "messages"}: its messages (which token classes were
        # tried) are not field errors, and say nothing `detail` does not.
        body = error_body(code, str(detail["detail"]))
    elif isinstance(detail, Mapping | list):
        body = error_body(code, first_message(detail) or "Invalid request.", field_errors(detail))
    else:
        body = error_body(code, str(detail))
    set_rollback()
    return Response(body, status=exc.status_code, headers=headers)


def database_error_response(error: Exception) -> Response:
    """503 with a retry hint for a database that is down, restarting or holding a lock."""
    lock_timeout = "lock timeout" in str(error).lower() or "locknotavailable" in repr(error).lower()
    logger.warning("database unavailable: %s", error.__class__.__name__)
    if lock_timeout:
        detail = "This resource is busy; please retry in a moment."
        body = error_body(ErrorCode.LOCK_TIMEOUT, detail)
    else:
        body = error_body(
            ErrorCode.DATABASE_UNAVAILABLE,
            "The database is temporarily unavailable; please retry in a moment.",
        )
    return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "1"})


def answer_errors_in_json(context: dict) -> None:
    """An endpoint whose success is not JSON (the .ics calendar) still answers errors in JSON,
    whatever the method; the browsable API keeps its HTML page in development."""
    request = context.get("request")
    renderer = getattr(request, "accepted_renderer", None)
    if request is not None and not isinstance(renderer, JSONRenderer | BrowsableAPIRenderer):
        request.accepted_renderer = ORJSONRenderer()
        request.accepted_media_type = ORJSONRenderer.media_type


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    answer_errors_in_json(context)
    if isinstance(exc, DomainError):
        set_rollback()
        return Response(error_body(exc.code, exc.message), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.APIException):
        return api_exception_response(exc)
    refusal = django_refusal(exc)
    if refusal is not None:
        status_code, body = refusal
        logger.warning("request refused: %s", exc.__class__.__name__)
        return Response(body, status=status_code)
    if isinstance(exc, OperationalError | InterfaceError):
        return database_error_response(exc)
    if isinstance(exc, DatabaseError):
        # Bad input must never reach the database as a 500: a DataError here means a
        # validator is missing. Log loudly, answer 400.
        logger.exception("database rejected a request")
        return Response(
            error_body(ErrorCode.INVALID, "The request could not be stored."),
            status=status.HTTP_400_BAD_REQUEST,
        )
    return None
