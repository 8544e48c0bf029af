"""The served /swagger.json is precise enough to generate a client from: every operation and
parameter is described, and query filters carry their real types (numbers, booleans,
date-times, enums), not the untyped strings drf-yasg falls back to for django-filter."""

import pytest

from backend.filters import BookingFilter, MySessionFilter, SessionFilter

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "put", "patch", "post", "delete", "head", "options"}
# Free text by nature: a string is their real type.
FREE_TEXT_QUERY_PARAMETERS = {"search", "category", "creator"}
BOOKING_LISTS = ["/bookings/", "/bookings/my_bookings/", "/bookings/active/", "/bookings/past/"]


@pytest.fixture
def schema(api_client) -> dict:
    response = api_client.get("/swagger.json")
    assert response.status_code == 200
    return response.json()


def operations(schema: dict):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield (
                    path,
                    method,
                    operation,
                    [*item.get("parameters", []), *operation.get("parameters", [])],
                )


def query_parameters(schema: dict, path: str) -> dict[str, dict]:
    return {
        parameter["name"]: parameter
        for parameter in schema["paths"][path]["get"].get("parameters", [])
        if parameter["in"] == "query"
    }


def test_every_operation_has_a_description(schema):
    missing = [
        f"{method.upper()} {path}"
        for path, method, operation, _ in operations(schema)
        if not operation.get("description", "").strip()
    ]
    assert missing == []


def test_every_parameter_has_a_description(schema):
    missing = [
        f"{method.upper()} {path} {parameter['in']}:{parameter['name']}"
        for path, method, _, parameters in operations(schema)
        for parameter in parameters
        if parameter["in"] != "body" and not parameter.get("description", "").strip()
    ]
    assert missing == []


def test_no_query_parameter_is_an_untyped_string(schema):
    untyped = [
        f"{method.upper()} {path} {parameter['name']}"
        for path, method, _, parameters in operations(schema)
        for parameter in parameters
        if parameter["in"] == "query"
        and parameter.get("type") == "string"
        and not parameter.get("enum")
        and not parameter.get("format")
        and parameter["name"] not in FREE_TEXT_QUERY_PARAMETERS
    ]
    assert untyped == []


def test_catalog_filters_are_typed(schema):
    parameters = query_parameters(schema, "/sessions/")
    assert set(SessionFilter.base_filters) <= set(parameters)
    for name in ("min_price", "max_price"):
        assert (parameters[name]["type"], parameters[name]["minimum"]) == ("number", 0)
    for name in ("start_after", "start_before"):
        assert (parameters[name]["type"], parameters[name]["format"]) == ("string", "date-time")
    for name in ("is_online", "available"):
        assert parameters[name]["type"] == "boolean"
    assert parameters["ordering"]["type"] == "string"
    assert parameters["ordering"]["enum"] == [
        "start_time",
        "-start_time",
        "price",
        "-price",
        "created_at",
        "-created_at",
        "rating",
        "-rating",
    ]
    for name in ("page", "page_size"):
        assert parameters[name]["type"] == "integer"
    assert parameters["search"]["maxLength"] == 200


def test_my_sessions_filters_are_typed(schema):
    parameters = query_parameters(schema, "/sessions/my_sessions/")
    assert set(MySessionFilter.base_filters) <= set(parameters)
    assert parameters["status"]["enum"] == ["draft", "published", "cancelled"]
    assert "-price" in parameters["ordering"]["enum"]


@pytest.mark.parametrize("path", BOOKING_LISTS)
def test_booking_list_filters_are_typed(schema, path):
    parameters = query_parameters(schema, path)
    assert set(BookingFilter.base_filters) <= set(parameters)
    assert parameters["status"]["enum"] == ["pending", "confirmed", "cancelled", "expired"]
    assert parameters["payment_status"]["enum"] == [
        "not_required",
        "unpaid",
        "paid",
        "refunded",
        "failed",
        "disputed",  # issue 16: a chargeback is open
        "scheduled",  # issue 25: card saved, charged at the session's decision
    ]
    assert (parameters["session"]["type"], parameters["session"]["minimum"]) == ("integer", 1)


def test_typed_values_are_what_the_filters_accept(api_client, user_client):
    # What a generated client sends for those types is accepted...
    for query in (
        {"min_price": "10.5", "is_online": "true", "available": "false", "ordering": "-price"},
        {"start_after": "2026-12-01T18:00:00Z", "start_before": "2027-12-01T18:00:00+02:00"},
    ):
        assert api_client.get("/api/sessions/", query).status_code == 200
    assert user_client.get("/api/bookings/", {"session": 3, "status": "paid"}).status_code == 400
    assert user_client.get("/api/bookings/", {"session": 3, "status": "pending"}).status_code == 200
    # ...and what the types exclude is a 400.
    for query in ({"min_price": "cheap"}, {"start_after": "tomorrow"}, {"ordering": "title"}):
        assert api_client.get("/api/sessions/", query).status_code == 400, query
    assert user_client.get("/api/bookings/", {"session": "1.5"}).status_code == 400


@pytest.mark.parametrize(
    ("value", "status"),
    [
        # Any offset Python reads is fine (PostgreSQL alone would refuse beyond 15:59)...
        ("2026-12-01T09:00:43+21:03", 200),
        ("0039-02-24T09:00:43+21:03", 200),
        # ...but a time with no UTC equivalent is a 400, not a database error.
        ("0001-01-01T00:00:00+05:00", 400),
    ],
)
def test_date_time_filters_take_any_offset_a_client_may_send(api_client, value, status):
    for name in ("start_after", "start_before"):
        response = api_client.get("/api/sessions/", {name: value})
        assert response.status_code == status, response.json()
