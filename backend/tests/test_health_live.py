"""`health/` takes an instance out of rotation when its database is down; `health/live/`
(the liveness probe's) keeps answering then, so an outage does not restart every pod."""

import pytest
from django.db import DatabaseError
from django.db.backends.utils import CursorWrapper

from backend.throttling import AnonRateThrottle

pytestmark = pytest.mark.django_db


@pytest.fixture
def database_down(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise DatabaseError("connection refused")

    monkeypatch.setattr(CursorWrapper, "execute", refuse)


def test_with_the_database_down_health_is_503_and_live_is_200(api_client, database_down):
    health = api_client.get("/api/health/")
    assert health.status_code == 503
    assert health.json()["database"] == "error"
    live = api_client.get("/api/health/live/")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


def test_live_is_not_throttled(api_client, monkeypatch):
    # The anonymous rate of every other endpoint, made tiny: a probe must never be a 429.
    monkeypatch.setitem(AnonRateThrottle.THROTTLE_RATES, "anon", "1/minute")
    assert api_client.get("/api/sessions/").status_code == 200
    assert api_client.get("/api/sessions/").status_code == 429
    assert [api_client.get("/api/health/live/").status_code for _ in range(3)] == [200] * 3
