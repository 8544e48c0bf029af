"""Helpers shared by the session catalog API tests (test_catalog_*.py)."""

from datetime import datetime, timedelta

from django.utils import timezone


def future(days: float = 3) -> datetime:
    return (timezone.now() + timedelta(days=days)).replace(microsecond=0)


def payload(**overrides) -> dict:
    data = {
        "title": "Intro to pottery",
        "description": "Hands in clay.",
        "category": "  Crafts ",
        "price": "25.50",
        "currency": "eur",
        "duration_minutes": 90,
        "start_time": future().astimezone(timezone.get_fixed_timezone(120)).isoformat(),
        "capacity": 12,
        "is_online": False,
        "location": "Studio 4, Lisbon",
        "status": "published",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}
