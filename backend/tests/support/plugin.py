"""The suite's pytest plugin: shared fixtures and hooks (loaded by backend/tests/conftest.py).

Tests ask for these fixtures by name; helpers that are plain functions (auth_client,
run_concurrently, backdate) are imported from backend.tests.support.
"""

from collections.abc import Iterator
from decimal import Decimal

import pytest
import responses
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from backend.models import User
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.support.clients import auth_client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` skip, with the reason, when the suite runs on SQLite."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (set DATABASE_URL to run it)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    # Throttle counters live in the cache: every test starts with a clean slate.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _catalog_page_cache_off(settings) -> None:
    # Tests read the catalog right after writes they never commit (on_commit retires cached
    # pages), and count its queries: they see the uncached path. test_catalog_cache.py turns
    # the page cache on (`catalog_cache_on`) and commits its writes.
    settings.CATALOG_CACHE_SECONDS = 0


@pytest.fixture
def catalog_cache_on(settings) -> int:
    """The anonymous page cache (backend/catalog_cache.py) on, for longer than any test."""
    settings.CATALOG_CACHE_SECONDS = 300
    return settings.CATALOG_CACHE_SECONDS


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2 is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user(db) -> User:
    return UserFactory.create()


@pytest.fixture
def creator(db) -> User:
    return CreatorFactory.create()


@pytest.fixture
def user_client(user: User) -> APIClient:
    return auth_client(user)


@pytest.fixture
def creator_client(creator: User) -> APIClient:
    return auth_client(creator)


@pytest.fixture
def fake_stripe(settings):
    """A Stripe stand-in on 127.0.0.1 (backend/tests/fake_stripe.py), with keys pointing at it."""
    from backend.tests.fake_stripe import API_KEY, PUBLISHABLE_KEY, WEBHOOK_SECRET, FakeStripe

    server = FakeStripe().start()
    settings.STRIPE_SECRET_KEY = API_KEY
    settings.STRIPE_PUBLISHABLE_KEY = PUBLISHABLE_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.STRIPE_API_BASE = server.base_url
    # Short enough that a stalled Stripe fails a test quickly; no retries unless a test asks.
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    yield server
    server.stop()


@pytest.fixture
def media_root(settings, tmp_path):
    """File system storage under a temporary MEDIA_ROOT (test_uploads_*.py use it on every test)."""
    settings.MEDIA_ROOT = tmp_path / "media"
    # Explicit, whatever the environment says: changing STORAGES also resets default_storage,
    # the object every FileField holds.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    }
    return settings.MEDIA_ROOT


@pytest.fixture
def oauth_providers(settings) -> None:
    """Google and GitHub configured with test credentials (test_auth_oauth_*.py, every test)."""
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "google-client-id"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "google-secret"
    settings.SOCIAL_AUTH_GITHUB_KEY = "github-client-id"
    settings.SOCIAL_AUTH_GITHUB_SECRET = "github-secret"


@pytest.fixture
def provider():
    """The OAuth providers' endpoints, stubbed with `responses`; every stub must be called."""
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


@pytest.fixture
def session(creator: User):
    """A creator's session with 5 seats at 20.00 (the catalog API tests)."""
    return SessionFactory(creator=creator, capacity=5, price=Decimal("20.00"))
