"""Domain errors and the one handler that turns every API error into JSON.

Services raise a DomainError subclass with a message a person can read; the handler maps it to
the HTTP status of CONTRACT.md. Views never build error responses by hand.
"""

import logging

from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class DomainError(Exception):
    status_code: int = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class ValidationFailed(DomainError):
    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"


class NotFound(DomainError):
    status_code = status.HTTP_404_NOT_FOUND
    default_code = "not_found"


class PayloadTooLarge(DomainError):
    """An upload over UPLOAD_MAX_MB (413)."""

    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "too_large"


class Forbidden(DomainError):
    status_code = status.HTTP_403_FORBIDDEN
    default_code = "permission_denied"


class Conflict(DomainError):
    """A state conflict: sold out, already booked, not cancellable (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class BookingError(Conflict):
    default_code = "booking_conflict"


class IntegrationNotConfigured(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "not_configured"


class IntegrationUnavailable(DomainError):
    """An external service (Stripe, S3, an OAuth provider) failed or timed out."""

    status_code = status.HTTP_502_BAD_GATEWAY
    default_code = "bad_gateway"


class StorageUnavailable(DomainError):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "storage_unavailable"


def database_error_response(error: Exception) -> Response:
    """503 with a retry hint for a database that is down, restarting or holding a lock."""
    lock_timeout = "lock timeout" in str(error).lower() or "locknotavailable" in repr(error).lower()
    logger.warning("database unavailable: %s", error.__class__.__name__)
    detail = (
        "This resource is busy; please retry in a moment."
        if lock_timeout
        else "The database is temporarily unavailable; please retry in a moment."
    )
    return Response(
        {"detail": detail, "code": "lock_timeout" if lock_timeout else "database_unavailable"},
        status=status.HTTP_503_SERVICE_UNAVAILABLE,
        headers={"Retry-After": "1"},
    )


def api_exception_handler(exc: Exception, context: dict) -> Response | None:
    if isinstance(exc, DomainError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, OperationalError | InterfaceError):
        return database_error_response(exc)
    if isinstance(exc, DatabaseError):
        # Bad input must never reach the database as a 500: a DataError here means a
        # validator is missing. Log loudly, answer 400.
        logger.exception("database rejected a request")
        return Response(
            {"detail": "The request could not be stored.", "code": "invalid"},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return exception_handler(exc, context)
