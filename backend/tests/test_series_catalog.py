"""Series dates in the catalog: the `series` filter, `series` and `series_position` on every
entry, at the catalog's unchanged query count; and a 52-date series in a fixed number of
queries."""

import math

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from backend.models import Session, SessionSeries
from backend.selectors import catalog as selectors
from backend.serializers.catalog import MySessionSerializer, SessionSerializer
from backend.tests.factories import BookingFactory, SessionFactory
from backend.tests.series_support import SERIES_URL, series_payload, series_url

pytestmark = pytest.mark.django_db


def make_series(client, **overrides) -> dict:
    response = client.post(SERIES_URL, series_payload(**overrides), format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_series_filter_lists_one_series_dates_in_order(api_client, creator_client, creator):
    yoga = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=3")
    make_series(creator_client, title="Pottery", rrule="FREQ=DAILY;COUNT=2")
    SessionFactory(creator=creator)

    response = api_client.get("/api/sessions/", {"series": yoga["id"]})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["id"] for r in results] == [s["id"] for s in yoga["sessions"]]
    assert [r["series"] for r in results] == [yoga["id"]] * 3
    assert [r["series_position"] for r in results] == [{"index": n, "count": 3} for n in (1, 2, 3)]
    assert api_client.get("/api/sessions/", {"series": 10**9}).json()["count"] == 0


def test_catalog_entries_say_series_or_null(api_client, creator_client, creator):
    series = make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=2")
    one_off = SessionFactory(creator=creator)
    rows = {r["id"]: r for r in api_client.get("/api/sessions/").json()["results"]}
    assert (rows[one_off.pk]["series"], rows[one_off.pk]["series_position"]) == (None, None)
    assert rows[one_off.pk]["timezone"] == "UTC"
    second = series["sessions"][1]["id"]
    assert rows[second]["series"] == series["id"]
    assert rows[second]["series_position"] == {"index": 2, "count": 2}
    assert rows[second]["timezone"] == "Europe/Berlin"
    detail = api_client.get(f"/api/sessions/{second}/").json()
    assert (detail["series"], detail["series_position"]) == (series["id"], {"index": 2, "count": 2})
    mine = creator_client.get("/api/sessions/my_sessions/").json()["results"]
    assert {r["id"]: r["series_position"] for r in mine}[second] == {"index": 2, "count": 2}


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", str(2**63)])
def test_bad_series_filter_is_400(api_client, value):
    response = api_client.get("/api/sessions/", {"series": value})
    assert response.status_code == 400
    assert "series" in response.json()["errors"]


def catalog_queries(client, params=None) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/sessions/", params or {})
    assert response.status_code == 200
    return len(queries)


def test_series_dates_cost_the_catalog_no_extra_query(
    api_client, creator_client, creator, django_assert_max_num_queries
):
    for _ in range(10):
        SessionFactory(creator=creator)
    one_offs_only = catalog_queries(api_client)

    make_series(creator_client, rrule="FREQ=DAILY;COUNT=10")
    make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=10", title="Weekly")
    with django_assert_max_num_queries(2):  # the page and its count, as before
        response = api_client.get("/api/sessions/", {"page_size": 30})
    assert sum(r["series"] is not None for r in response.json()["results"]) == 20
    assert catalog_queries(api_client, {"page_size": 30}) == one_offs_only
    series_id = SessionSeries.objects.first().pk
    assert catalog_queries(api_client, {"series": series_id}) == one_offs_only


def generic(serializer_class, instance, context):
    return serializers.ModelSerializer.to_representation(
        serializer_class(context=context), instance
    )


def test_lean_rendering_matches_the_generic_one_for_series_dates(creator_client, creator):
    make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=2")
    SessionFactory(creator=creator)
    BookingFactory(session=Session.objects.filter(series__isnull=False).first())
    context = {"request": RequestFactory().get("/api/sessions/")}
    first, second = {"index": 1, "count": 2}, {"index": 2, "count": 2}
    for serializer_class, rows, positions in (
        # By id: the two dates, then the one-off.
        (
            SessionSerializer,
            selectors.session_visible_to(viewer=creator).order_by("id"),
            [
                first,
                second,
                None,
            ],
        ),
        # Latest start first: the dates (next year) before the one-off (next week).
        (MySessionSerializer, selectors.my_sessions(creator=creator), [second, first, None]),
    ):
        rows = list(rows)
        lean = serializer_class(rows, many=True, context=context).data
        reference = [generic(serializer_class, row, context) for row in rows]
        assert [json_ready(row) for row in lean] == [json_ready(row) for row in reference]
        assert [row["series_position"] for row in lean] == positions


def json_ready(row) -> dict:
    return {key: dict(value) if isinstance(value, dict) else value for key, value in row.items()}


def create_queries(client, count: int) -> int:
    with CaptureQueriesContext(connection) as queries:
        make_series(client, rrule=f"FREQ=DAILY;COUNT={count}")
    return len(queries)


def insert_batches(count: int) -> int:
    """INSERTs bulk_create needs for `count` sessions (1 on PostgreSQL; SQLite caps the
    parameters of one statement, so it may split them)."""
    fields = [f for f in Session._meta.concrete_fields if not f.primary_key]
    batch = connection.ops.bulk_batch_size(fields, [Session()] * count) or count
    return math.ceil(count / batch)


def test_a_52_date_series_is_created_in_a_fixed_number_of_queries(
    creator_client, django_assert_num_queries
):
    two = create_queries(creator_client, 2)
    fifty_two = create_queries(creator_client, 52)

    assert fifty_two == two + insert_batches(52) - insert_batches(2)
    assert Session.objects.filter(series__isnull=False).count() == 54
    if connection.vendor == "postgresql":
        assert fifty_two == two
    # The user (JWT), SAVEPOINT, INSERT series, INSERT sessions (one per batch), RELEASE, then
    # the answer: the series and its dates.
    with django_assert_num_queries(6 + insert_batches(52)):
        make_series(creator_client, rrule="FREQ=WEEKLY;COUNT=52")


def test_reading_a_series_costs_the_same_for_2_or_52_dates(creator_client):
    small = make_series(creator_client, rrule="FREQ=DAILY;COUNT=2")
    large = make_series(creator_client, rrule="FREQ=DAILY;COUNT=52")
    counts = []
    for series in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = creator_client.get(series_url(series["id"]))
        assert response.status_code == 200
        counts.append(len(queries))
    assert len(response.json()["sessions"]) == 52
    assert counts[0] == counts[1] <= 3


def session_body(**overrides) -> dict:
    body = {
        "title": "One-off",
        "price": "10.00",
        "duration_minutes": 60,
        "start_time": "2030-01-15T17:00:00Z",
        "capacity": 5,
        "is_online": True,
        "status": "published",
    }
    return {**body, **overrides}


def test_a_session_has_a_validated_timezone_defaulting_to_its_creators(creator, creator_client):
    assert creator.timezone == "UTC"  # the default for users
    creator.timezone = "Nowhere/Special"
    with pytest.raises(ValidationError) as error:
        creator.full_clean()
    assert set(error.value.message_dict) == {"timezone"}
    creator.timezone = "UTC"
    response = creator_client.post("/api/sessions/", session_body(timezone="Asia/Tokyo"))
    assert response.status_code == 201, response.content
    assert response.json()["timezone"] == "Asia/Tokyo"
    session_id = response.json()["id"]

    creator.timezone = "America/Sao_Paulo"
    creator.save(update_fields=["timezone"])
    response = creator_client.post("/api/sessions/", session_body())
    assert response.json()["timezone"] == "America/Sao_Paulo"

    for bad in ("Mars/Base", "", "x" * 65):
        response = creator_client.patch(f"/api/sessions/{session_id}/", {"timezone": bad})
        assert response.status_code == 400
        assert "timezone" in response.json()["errors"]
    assert Session.objects.get(pk=session_id).timezone == "Asia/Tokyo"
    response = creator_client.patch(f"/api/sessions/{session_id}/", {"timezone": "Europe/Paris"})
    assert response.json()["timezone"] == "Europe/Paris"
