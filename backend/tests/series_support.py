"""Helpers shared by the series tests (test_series_*.py)."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.utils import timezone

SERIES_URL = "/api/sessions/series/"


def series_url(series_id: int) -> str:
    return f"{SERIES_URL}{series_id}/"


def next_year() -> int:
    """A year wholly in the future, so the fixed calendar dates below never become past."""
    return timezone.now().year + 1


def last_sunday(year: int, month: int) -> date:
    """The EU's DST changes happen on the last Sunday of March and of October."""
    day = date(year, month + 1, 1) - timedelta(days=1) if month < 12 else date(year, 12, 31)
    return day - timedelta(days=(day.weekday() - 6) % 7)


def first_weekday(year: int, month: int, weekday: int) -> date:
    day = date(year, month, 1)
    return day + timedelta(days=(weekday - day.weekday()) % 7)


def series_payload(**overrides) -> dict:
    data = {
        "title": "Evening yoga",
        "description": "Eight weeks of flow.",
        "category": "yoga",
        "price": "15.00",
        "currency": "eur",
        "duration_minutes": 75,
        "capacity": 12,
        "is_online": False,
        "location": "Studio 4, Berlin",
        "status": "published",
        "timezone": "Europe/Berlin",
        "local_start": f"{next_year()}-01-04T18:30",
        "rrule": "FREQ=WEEKLY;COUNT=8",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def local(value: str, zone: str) -> datetime:
    """An API instant (`...Z`) as a naive wall-clock time in `zone`."""
    return datetime.fromisoformat(value).astimezone(ZoneInfo(zone)).replace(tzinfo=None)
