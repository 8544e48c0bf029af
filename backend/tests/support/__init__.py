"""What tests share: clients, threads, back-dating. Fixtures come from the plugin
(backend/tests/support/plugin.py, loaded by backend/tests/conftest.py), never by import.
Helpers for one group of test files live in their own module (bookings, catalog, dashboards,
oauth, uploads), imported as backend.tests.support.<module>."""

from backend.tests.support.backdating import backdate, expire_hold
from backend.tests.support.clients import auth_client
from backend.tests.support.concurrency import (
    Background,
    in_background,
    run_concurrently,
    wait_after,
)

__all__ = [
    "Background",
    "auth_client",
    "backdate",
    "expire_hold",
    "in_background",
    "run_concurrently",
    "wait_after",
]
