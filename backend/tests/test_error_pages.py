"""Django's own error pages and the middleware's last resort answer the one error body under
/api/ (and leave the rest of the site to Django)."""

import json

import pytest
from django.core.exceptions import (
    DisallowedHost,
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
)
from django.db import OperationalError
from django.test import RequestFactory

from backend.errors import ErrorCode
from backend.middleware import ApiErrorMiddleware
from backend.views import errors

factory = RequestFactory()


def body_of(response) -> dict:
    assert response["Content-Type"].startswith("application/json")
    body = json.loads(response.content)
    assert ErrorCode.lookup(body["code"]) is not None and body["detail"]
    return body


@pytest.mark.parametrize(
    "exception, status, code",
    [
        (RequestDataTooBig("big"), 413, "request_too_large"),
        (TooManyFieldsSent("many"), 400, "too_many_fields"),
        (DisallowedHost("evil"), 400, "bad_host"),
        (SuspiciousOperation("odd"), 400, "bad_request"),
        (OperationalError("down"), 503, "database_unavailable"),
        (ValueError("a bug"), 500, "server_error"),
    ],
)
def test_middleware_answers_escaped_errors_under_api(exception, status, code):
    middleware = ApiErrorMiddleware(lambda request: None)
    response = middleware.process_exception(factory.post("/api/anything/"), exception)
    assert response.status_code == status
    assert body_of(response)["code"] == code


def test_middleware_leaves_other_paths_to_django():
    middleware = ApiErrorMiddleware(lambda request: None)
    assert middleware.process_exception(factory.get("/admin/"), RequestDataTooBig()) is None


@pytest.mark.parametrize(
    "view, args, status, code",
    [
        (errors.bad_request, (RequestDataTooBig(),), 413, "request_too_large"),
        (errors.bad_request, (None,), 400, "bad_request"),
        (errors.forbidden, (None,), 403, "permission_denied"),
        (errors.not_found, (None,), 404, "not_found"),
        (errors.server_error, (), 500, "server_error"),
        (errors.csrf_failure, ("no cookie",), 403, "csrf_failed"),
    ],
)
def test_error_views_under_api_are_json(view, args, status, code):
    response = view(factory.post("/api/bookings/"), *args)
    assert response.status_code == status
    assert body_of(response)["code"] == code


@pytest.mark.parametrize(
    "view, args",
    [
        (errors.bad_request, (None,)),
        (errors.forbidden, (None,)),
        (errors.csrf_failure, ("no cookie",)),
    ],
)
def test_error_views_elsewhere_are_djangos(view, args):
    response = view(factory.get("/admin/"), *args)
    assert not response["Content-Type"].startswith("application/json")
