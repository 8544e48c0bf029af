"""POST /api/sessions/series/: a recurring session's dates, at the same wall-clock time across
DST changes, and every rule a series cannot have refused with its reason, creating nothing."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from django.utils import timezone

from backend.models import Session, SessionSeries
from backend.tests.factories import UserFactory
from backend.tests.series_support import (
    SERIES_URL,
    first_weekday,
    last_sunday,
    local,
    next_year,
    series_payload,
)
from backend.tests.support import auth_client
from backend.tests.test_bad_input import BAD_BODIES

pytestmark = pytest.mark.django_db

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, SUNDAY = 0, 1, 2, 3, 6


def create(client, **overrides):
    return client.post(SERIES_URL, series_payload(**overrides), format="json")


def starts(body: dict) -> list[datetime]:
    return [datetime.fromisoformat(s["start_time"]) for s in body["sessions"]]


def test_weekly_berlin_1830_across_the_october_dst_change(creator, creator_client):
    year = next_year()
    first_monday = first_weekday(year, 10, MONDAY)
    dst_ends = last_sunday(year, 10)
    response = create(
        creator_client, local_start=f"{first_monday}T18:30", rrule="FREQ=WEEKLY;COUNT=8"
    )

    assert response.status_code == 201, response.content
    body = response.json()
    series = SessionSeries.objects.get()
    assert (body["id"], body["rrule"], body["timezone"], body["local_start"]) == (
        series.pk,
        "FREQ=WEEKLY;COUNT=8",
        "Europe/Berlin",
        f"{first_monday}T18:30",
    )
    assert body["occurrence_count"] == 8
    mondays = [first_monday + timedelta(weeks=n) for n in range(8)]
    assert [local(s["start_time"], "Europe/Berlin") for s in body["sessions"]] == [
        datetime(day.year, day.month, day.day, 18, 30) for day in mondays
    ]
    # The instants: 16:30 UTC while summer time lasts (CEST, +2), 17:30 UTC after (CET, +1).
    expected_utc = [
        datetime(day.year, day.month, day.day, 16 if day < dst_ends else 17, 30, tzinfo=UTC)
        for day in mondays
    ]
    assert starts(body) == expected_utc
    before = [s for s in expected_utc if s.date() < dst_ends]
    after = [s for s in expected_utc if s.date() > dst_ends]
    assert before and after  # the series really crosses the change
    assert {s.hour for s in before} == {16} and {s.hour for s in after} == {17}
    # Consecutive dates are a week apart, except across the change: a week and an hour.
    gaps = {later - earlier for earlier, later in pairwise(starts(body))}
    assert gaps == {timedelta(weeks=1), timedelta(weeks=1, hours=1)}

    sessions = list(Session.objects.order_by("series_position"))
    assert [s.series_position for s in sessions] == list(range(1, 9))
    assert {s.series_id for s in sessions} == {series.pk}
    assert {s.timezone for s in sessions} == {"Europe/Berlin"}
    assert [s.start_time for s in sessions] == expected_utc
    assert {(s.title, s.price, s.currency, s.capacity, s.duration_minutes) for s in sessions} == {
        ("Evening yoga", Decimal("15.00"), "EUR", 12, 75)
    }
    assert {s.creator_id for s in sessions} == {creator.pk}
    assert {s.status for s in sessions} == {"published"}
    first = body["sessions"][0]
    assert first["series"] == series.pk
    assert first["series_position"] == {"index": 1, "count": 8}
    assert body["sessions"][7]["series_position"] == {"index": 8, "count": 8}
    assert first["end_time"] == (expected_utc[0] + timedelta(minutes=75)).isoformat().replace(
        "+00:00", "Z"
    )


def test_new_york_across_the_march_change(creator_client):
    year = next_year()
    response = create(
        creator_client,
        timezone="America/New_York",
        local_start=f"{year}-02-23T09:00",  # a Tuesday or not: BYDAY decides
        rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=6",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    locals_ = [local(s["start_time"], "America/New_York") for s in body["sessions"]]
    assert {(t.weekday(), t.hour, t.minute) for t in locals_} == {(TUESDAY, 9, 0)}
    # EST (-5) then EDT (-4) from the second Sunday of March.
    dst_starts = first_weekday(year, 3, SUNDAY) + timedelta(weeks=1)
    assert [s.hour for s in starts(body)] == [14 if t.date() < dst_starts else 13 for t in locals_]
    assert {s.hour for s in starts(body)} == {13, 14}


def test_byday_gives_the_listed_weekdays_in_order(creator_client):
    monday = first_weekday(next_year(), 3, MONDAY)
    response = create(
        creator_client, local_start=f"{monday}T07:15", rrule="FREQ=WEEKLY;BYDAY=MO,WE,TH;COUNT=7"
    )
    assert response.status_code == 201, response.content
    days = [local(s["start_time"], "Europe/Berlin") for s in response.json()["sessions"]]
    assert [d.weekday() for d in days] == [MONDAY, WEDNESDAY, THURSDAY] * 2 + [MONDAY]
    assert days[0].date() == monday and days[-1].date() == monday + timedelta(weeks=2)
    assert {(d.hour, d.minute) for d in days} == {(7, 15)}


def test_a_start_that_does_not_match_byday_begins_on_the_next_match(creator_client):
    monday = first_weekday(next_year(), 5, MONDAY)
    response = create(
        creator_client, local_start=f"{monday}T18:30", rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=2"
    )
    assert response.status_code == 201, response.content
    days = [local(s["start_time"], "Europe/Berlin").date() for s in response.json()["sessions"]]
    assert days == [monday + timedelta(days=1), monday + timedelta(days=8)]


def test_interval_every_other_week(creator_client):
    monday = first_weekday(next_year(), 2, MONDAY)
    response = create(
        creator_client, local_start=f"{monday}T18:30", rrule="FREQ=WEEKLY;INTERVAL=2;COUNT=4"
    )
    days = [local(s["start_time"], "Europe/Berlin").date() for s in response.json()["sessions"]]
    assert days == [monday + timedelta(weeks=2 * n) for n in range(4)]


def test_monthly_last_friday(creator_client):
    year = next_year()
    response = create(
        creator_client, local_start=f"{year}-01-01T19:00", rrule="FREQ=MONTHLY;BYDAY=-1FR;COUNT=3"
    )
    days = [local(s["start_time"], "Europe/Berlin").date() for s in response.json()["sessions"]]
    assert days == [
        last_weekday for month in (1, 2, 3) for last_weekday in [_last_friday(year, month)]
    ]


def _last_friday(year: int, month: int) -> date:
    end = (date(year, month + 1, 1) if month < 12 else date(year + 1, 1, 1)) - timedelta(days=1)
    return end - timedelta(days=(end.weekday() - 4) % 7)


@pytest.mark.parametrize(
    ("until", "expected_weeks"),
    [
        # A date: that whole local day is included.
        ("{d3}", 4),
        # A floating date-time: the local wall clock; UNTIL is inclusive.
        ("{d3}T183000", 4),
        ("{d3}T182959", 3),
        # UTC (what RFC 5545 asks for when the start has a zone): 18:30 CEST is 16:30Z.
        ("{d3}T163000Z", 4),
        ("{d3}T162959Z", 3),
    ],
)
def test_until_is_inclusive_in_every_form(creator_client, until, expected_weeks):
    # June: CEST all along, so the UTC case is 16:30Z.
    monday = first_weekday(next_year(), 6, MONDAY)
    d3 = (monday + timedelta(weeks=3)).strftime("%Y%m%d")
    response = create(
        creator_client,
        local_start=f"{monday}T18:30",
        rrule=f"FREQ=WEEKLY;UNTIL={until.format(d3=d3)}",
    )
    assert response.status_code == 201, response.content
    days = [local(s["start_time"], "Europe/Berlin").date() for s in response.json()["sessions"]]
    assert days == [monday + timedelta(weeks=n) for n in range(expected_weeks)]
    assert response.json()["occurrence_count"] == expected_weeks


def test_count_gives_exactly_that_many_and_52_is_allowed(creator_client):
    response = create(creator_client, rrule="RRULE:freq=daily;count=52")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["rrule"] == "FREQ=DAILY;COUNT=52"
    assert len(body["sessions"]) == 52 == Session.objects.count()
    assert [s["series_position"]["index"] for s in body["sessions"]] == list(range(1, 53))


def test_a_time_in_the_spring_gap_moves_forward_by_the_gap(creator_client):
    year = next_year()
    change = last_sunday(year, 3)  # 02:00 CET -> 03:00 CEST: 02:30 does not exist that day
    response = create(
        creator_client,
        local_start=f"{change - timedelta(days=1)}T02:30",
        rrule="FREQ=DAILY;COUNT=3",
    )
    assert response.status_code == 201, response.content
    times = [local(s["start_time"], "Europe/Berlin") for s in response.json()["sessions"]]
    assert [(t.date(), t.hour, t.minute) for t in times] == [
        (change - timedelta(days=1), 2, 30),
        (change, 3, 30),
        (change + timedelta(days=1), 2, 30),
    ]


def far(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).strftime("%Y%m%d")


def past_local_start() -> str:
    return (timezone.now() - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")


BAD_RULES = {
    "no count or until": ({"rrule": "FREQ=WEEKLY"}, "rrule_unbounded"),
    "count over 52": ({"rrule": "FREQ=WEEKLY;COUNT=53"}, "too_many_occurrences"),
    "until gives 53": ({"rrule": "FREQ=DAILY;UNTIL={in_100_days}"}, "too_many_occurrences"),
    "count and until": ({"rrule": "FREQ=WEEKLY;COUNT=2;UNTIL={in_100_days}"}, "invalid_rrule"),
    "unknown weekday": ({"rrule": "FREQ=WEEKLY;BYDAY=XX;COUNT=2"}, "invalid_rrule"),
    "interval zero": ({"rrule": "FREQ=WEEKLY;INTERVAL=0;COUNT=2"}, "invalid_rrule"),
    "month day zero": ({"rrule": "FREQ=MONTHLY;BYMONTHDAY=0;COUNT=2"}, "invalid_rrule"),
    "not name=value": ({"rrule": "every monday"}, "invalid_rrule"),
    "no freq": ({"rrule": "COUNT=3"}, "invalid_rrule"),
    "hourly": ({"rrule": "FREQ=HOURLY;COUNT=3"}, "unsupported_rrule"),
    "byhour": ({"rrule": "FREQ=DAILY;BYHOUR=9,18;COUNT=4"}, "unsupported_rrule"),
    "unknown part": ({"rrule": "FREQ=DAILY;COUNT=2;X-FOO=1"}, "invalid_rrule"),
    "dtstart line": (
        {"rrule": "DTSTART:20270101T100000\nRRULE:FREQ=DAILY;COUNT=2"},
        "invalid_rrule",
    ),
    "bad until": ({"rrule": "FREQ=DAILY;UNTIL=2027-01-01"}, "invalid_rrule"),
    "impossible date": ({"rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30;COUNT=2"}, "no_occurrences"),
    "until beyond 5 years": (
        {"rrule": "FREQ=YEARLY;UNTIL={in_6_years}"},
        "occurrence_too_far",
    ),
    "count beyond 5 years": ({"rrule": "FREQ=YEARLY;COUNT=7"}, "occurrence_too_far"),
    "first date in the past": (
        {"rrule": "FREQ=DAILY;COUNT=5", "local_start": "{past}"},
        "occurrence_in_past",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_RULES))
def test_bad_rules_are_400_with_reason_and_code_and_create_nothing(creator_client, case):
    overrides, code = BAD_RULES[case]
    values = {"in_100_days": far(100), "in_6_years": far(6 * 366), "past": past_local_start()}
    overrides = {key: value.format(**values) for key, value in overrides.items()}
    response = create(creator_client, **overrides)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    assert SessionSeries.objects.count() == 0
    assert Session.objects.count() == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"timezone": None}, "timezone"),
        ({"local_start": "2027-01-04T18:30:00+01:00"}, "local_start"),
        ({"local_start": "2027-01-04T18:30Z"}, "local_start"),
        ({"local_start": "next monday"}, "local_start"),
        ({"rrule": "F" * 501}, "rrule"),
        ({"status": "cancelled"}, "status"),
        ({"price": "-1.00"}, "price"),
        ({"is_online": False, "location": ""}, "location"),
        ({"currency": "JPY", "price": "10.50"}, "price"),
    ],
)
def test_invalid_fields_are_400_and_create_nothing(creator_client, overrides, field):
    response = create(creator_client, **overrides)
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert SessionSeries.objects.count() == 0
    assert Session.objects.count() == 0


def test_only_creators_create_series(user_client, api_client):
    assert create(user_client).status_code == 403
    assert create(api_client).status_code == 401
    assert SessionSeries.objects.count() == Session.objects.count() == 0


def test_others_cannot_see_a_series(creator_client):
    series_id = create(creator_client).json()["id"]
    url = f"{SERIES_URL}{series_id}/"
    other_creator = auth_client(UserFactory(role="creator"))
    for client in (other_creator, auth_client(UserFactory())):
        assert client.get(url).status_code == 404
        assert client.patch(url, {"title": "Mine now"}, format="json").status_code == 404
        assert client.delete(url).status_code == 404
    assert set(Session.objects.values_list("title", "status")) == {("Evening yoga", "published")}
    assert creator_client.get(url).status_code == 200
    assert creator_client.get(f"{SERIES_URL}{10**20}/").status_code == 404


SERIES_BAD_BODIES = {
    **BAD_BODIES,
    "wrong series types": '{"timezone": {"a": 1}, "local_start": 5, "rrule": ["FREQ=DAILY"]}',
    "nul in rule": '{"rrule": "FREQ=DAILY;COUNT=2\\u0000", "timezone": "UTC\\u0000"}',
}


@pytest.mark.parametrize("kind", sorted(SERIES_BAD_BODIES))
def test_bad_bodies_to_series_endpoints_are_json_4xx_and_change_nothing(creator_client, kind):
    series_id = create(creator_client, rrule="FREQ=DAILY;COUNT=2").json()["id"]
    before = (
        list(Session.objects.order_by("pk").values()),
        list(SessionSeries.objects.order_by("pk").values()),
    )
    for method, url in (("post", SERIES_URL), ("patch", f"{SERIES_URL}{series_id}/")):
        response = getattr(creator_client, method)(
            url, data=SERIES_BAD_BODIES[kind], content_type="application/json"
        )
        assert 400 <= response.status_code < 500, (kind, method, response.status_code)
        assert response["Content-Type"].startswith("application/json")
        assert isinstance(response.json(), dict)
    assert before == (
        list(Session.objects.order_by("pk").values()),
        list(SessionSeries.objects.order_by("pk").values()),
    )
