"""ensure_superuser and wait_for_db: the management commands docker-entrypoint.sh runs."""

from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command
from django.db import OperationalError

from backend.management.commands.ensure_superuser import VARIABLES
from backend.models import User
from backend.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STRONG = "vT9#qLx2!mZr8Wk4"


@pytest.fixture
def superuser_env(monkeypatch):
    def set_env(username="root_admin", email="root@example.com", password=STRONG):
        for name, value in (
            ("DJANGO_SUPERUSER_USERNAME", username),
            ("DJANGO_SUPERUSER_EMAIL", email),
            ("DJANGO_SUPERUSER_PASSWORD", password),
        ):
            monkeypatch.setenv(name, value)

    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return set_env


def run() -> str:
    out = StringIO()
    call_command("ensure_superuser", stdout=out, stderr=StringIO())
    return out.getvalue()


def test_nothing_set_creates_nobody(superuser_env):
    output = run()
    assert "not set" in output
    assert User.objects.count() == 0


def test_creates_superuser_with_strong_password_in_production(superuser_env, settings):
    settings.DEBUG = False
    superuser_env()
    output = run()
    assert "superuser 'root_admin' created" in output
    admin = User.objects.get()
    assert (admin.username, admin.email, admin.is_staff, admin.is_superuser) == (
        "root_admin",
        "root@example.com",
        True,
        True,
    )
    assert authenticate(username="root_admin", password=STRONG) == admin


def test_partial_configuration_is_an_error(superuser_env, monkeypatch):
    superuser_env()
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "")
    with pytest.raises(CommandError, match="missing: DJANGO_SUPERUSER_EMAIL"):
        run()
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("change-me", "example or placeholder"),
        ("change-me-admin-password-please", "example or placeholder"),
        ("Password123456!", "example or placeholder"),
        ("admin12", "shorter than 12"),
        ("123456789012345", "entirely numeric"),
        ("qwertyuiop123", "too common"),
        ("root_admin", "shorter than 12"),
    ],
)
def test_weak_or_example_password_refused_in_production(superuser_env, settings, password, reason):
    settings.DEBUG = False
    superuser_env(password=password)
    with pytest.raises(CommandError) as error:
        run()
    message = str(error.value)
    assert reason in message
    # The refused password never reaches the logs.
    assert password not in message
    assert User.objects.count() == 0


def test_weak_password_allowed_with_debug_but_warned(superuser_env, settings):
    settings.DEBUG = True
    superuser_env(password="change-me")
    err = StringIO()
    call_command("ensure_superuser", stdout=StringIO(), stderr=err)
    assert "weak password accepted only because DJANGO_DEBUG is true" in err.getvalue()
    assert User.objects.get().is_superuser is True


def test_existing_account_is_left_unchanged(superuser_env, settings):
    settings.DEBUG = False
    existing = UserFactory(username="root_admin", is_staff=False, is_superuser=False)
    password_hash = existing.password
    # Even a weak value does not matter once the account exists: nothing is changed.
    superuser_env(password="change-me")
    output = run()
    assert "exists, left unchanged" in output
    existing.refresh_from_db()
    assert (existing.password, existing.is_superuser, User.objects.count()) == (
        password_hash,
        False,
        1,
    )


def test_wait_for_db_returns_when_database_is_up():
    out = StringIO()
    call_command("wait_for_db", "--timeout", "1", stdout=out)
    assert out.getvalue().strip() == "wait_for_db: database is ready."


def test_wait_for_db_gives_up_after_timeout(monkeypatch):
    from django.db import connections

    attempts = []

    def refuse():
        attempts.append(1)
        raise OperationalError("connection refused")

    monkeypatch.setattr(connections["default"], "ensure_connection", refuse)
    # The real connection carries the test's transaction: keep it open.
    monkeypatch.setattr(connections["default"], "close", lambda: None)
    with pytest.raises(CommandError, match=r"still unreachable after 0\.2 s"):
        call_command("wait_for_db", "--timeout", "0.2", "--interval", "0.05", stdout=StringIO())
    assert len(attempts) >= 2
