"""Swagger lists, per operation, the errors it can really answer (issue 13, "Error codes"):
the error body schema, and `code` an enum of that operation's codes for each status."""

import pytest

from backend.error_docs import domain_codes
from backend.errors import ErrorCode
from backend.services import bookings as booking_services

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api_client):
    response = api_client.get("/swagger.json")
    assert response.status_code == 200
    return response.json()


def codes(schema, path: str, method: str, status: int) -> list[str] | None:
    response = schema["paths"][path][method]["responses"].get(str(status))
    if response is None:
        return None
    return response["schema"]["properties"]["code"]["enum"]


def test_booking_create_documents_its_conflicts(schema):
    conflicts = codes(schema, "/bookings/", "post", 409)
    assert conflicts is not None
    assert {"sold_out", "not_enough_seats", "already_booked", "own_session"} <= set(conflicts)
    # ...and not the conflicts of other operations.
    assert "has_bookings" not in conflicts
    assert "already_paid" not in conflicts
    assert "invalid_seats" in codes(schema, "/bookings/", "post", 400)
    assert "invalid_json" in codes(schema, "/bookings/", "post", 400)
    described = schema["paths"]["/bookings/"]["post"]["responses"]["409"]["description"]
    assert f"`sold_out`: {ErrorCode.SOLD_OUT.meaning}" in described


def test_reads_document_no_conflict(schema):
    assert codes(schema, "/sessions/", "get", 409) is None
    assert codes(schema, "/bookings/{id}/", "get", 409) is None
    assert "not_found" in codes(schema, "/bookings/{id}/", "get", 404)


def test_codes_differ_per_operation(schema):
    assert codes(schema, "/payment/create-intent/", "post", 409) != codes(
        schema, "/bookings/{id}/cancel/", "post", 409
    )
    assert "already_paid" in codes(schema, "/payment/create-intent/", "post", 409)
    assert "cancellation_window" in codes(schema, "/bookings/{id}/cancel/", "post", 409)
    assert set(codes(schema, "/payment/webhook/", "post", 400)) >= {
        "invalid_signature",
        "invalid_payload",
        "invalid_event",
    }
    # The webhook reads no token: no 401 at all; a token endpoint's 401 is its own.
    assert codes(schema, "/payment/webhook/", "post", 401) is None
    assert codes(schema, "/auth/token/", "post", 401) == ["no_active_account"]
    assert "not_authenticated" in codes(schema, "/bookings/", "get", 401)
    assert codes(schema, "/storage/upload/", "post", 413) == ["request_too_large", "too_large"]


def test_every_error_response_has_the_error_body_and_registered_codes(schema):
    seen = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400 or path == "/health/":
                    continue
                seen += 1
                body = response["schema"]
                assert body["required"] == ["code", "detail"], (path, method, status)
                enum = body["properties"]["code"].get("enum")
                if enum is None:
                    continue  # declared by a view, no code found: any registered one
                for code in enum:
                    assert ErrorCode(code).status == int(status), (path, method, status, code)
                assert ("errors" in body["properties"]) == ("invalid" in enum)
    assert seen > 100


def test_codes_are_followed_through_the_services():
    # booking_create raises sold_out in check_seats_available, two calls down.
    assert ErrorCode.SOLD_OUT in domain_codes(booking_services.booking_create, None)
    assert ErrorCode.HAS_BOOKINGS not in domain_codes(booking_services.booking_create, None)


def test_imports_inside_a_function_are_followed():
    # booking_cancel reaches payment_refund_booking through a function-level import (the two
    # service modules import each other); schemathesis met its 409 on the cancel endpoint.
    assert ErrorCode.PAYMENT_RECORD_MISSING in domain_codes(booking_services.booking_cancel, None)


def test_a_code_chosen_from_a_table_is_documented(schema):
    # booking_for_update raises Forbidden(message, code=code) with the code from a table.
    assert "not_creator" in codes(schema, "/bookings/{id}/confirm/", "post", 403)
    assert "not_owner" in codes(schema, "/bookings/{id}/", "patch", 403)
