"""The benchmark's plain views (bench/views.py) stay honest: for every scenario bench/cpu.py
measures, they answer the same rows, counts and seat numbers as the API they are the
yardstick of, so a ratio compares the same work."""

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from django.test import override_settings
from django.utils import timezone

from backend.models import Booking
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory

pytestmark = [pytest.mark.django_db, pytest.mark.urls("bench.urls")]


@pytest.fixture
def catalog():
    now = timezone.now()
    creator = CreatorFactory(username="pat", first_name="Pat")
    for day in range(1, 46):
        session = SessionFactory(
            creator=creator,
            title=["Python clinic", "Watercolor workshop", "Yoga flow"][day % 3],
            category=["coding", "art", "yoga"][day % 3],
            price=Decimal(10 + day * 2),
            is_online=day % 4 != 0,
            capacity=2,
            start_time=now + timedelta(days=day),
            min_attendees=2 if day % 6 == 0 else None,
            decision_at=now + timedelta(days=day - 1) if day % 6 == 0 else None,
        )
        if day % 5 == 0:
            BookingFactory(session=session, seats=2)  # sold out
        elif day % 7 == 0:
            BookingFactory(session=session, status=Booking.Status.PENDING)
    SessionFactory(creator=creator, title="Python past", start_time=now - timedelta(days=1))


def _summary(answer):
    body = answer.json()
    return body["count"], [(s["id"], s["seats_left"], s["title"]) for s in body["results"]]


@pytest.mark.parametrize(
    "query",
    [
        "",
        "page=2",
        "category=coding&min_price=10&max_price=80&is_online=true&available=true&ordering=-price",
        "category=art&min_price=10&max_price=120&is_online=true&available=true&ordering=-price",
        "search=python",
        "search=watercolor%20workshop",
    ],
)
def test_the_plain_catalog_answers_what_the_api_does(catalog, api_client, query):
    with override_settings(CATALOG_CACHE_SECONDS=0):
        ours = api_client.get(f"/api/sessions/?{query}")
        plain = api_client.get(f"/bench/baseline/catalog/?{query}")
    assert ours.status_code == plain.status_code == 200
    count, rows = _summary(ours)
    assert count > 0 and rows
    assert _summary(plain) == (count, rows)
    # The same JSON, entry for entry (datetimes: the same instants, however written).
    for mine, theirs in zip(ours.json()["results"], plain.json()["results"], strict=True):
        assert set(theirs) == set(mine)
        assert {k: _instant(v) for k, v in theirs.items()} == {
            k: _instant(v) for k, v in mine.items()
        }


def _instant(value):
    if isinstance(value, str) and len(value) >= 20 and value[10:11] == "T":
        return datetime.fromisoformat(value).replace(microsecond=0)
    return value
