"""Production refuses what the outside review found open: a weak secret key, weak demo
passwords, webhook signatures dated in the future, and (check --deploy) throttles that count per
process or a missing mail server."""

import time
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from backend.models import Booking, Session, StripeEvent, User
from backend.tests.factories import SessionFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import book, booking_state, deliver, start_payment
from backend.tests.test_deploy import manage, production_env

# --- A weak DJANGO_SECRET_KEY stops start-up like a missing one -------------------------------


@pytest.mark.parametrize(
    "secret",
    [
        "Zq7-xV2p",  # short, varied
        "ab" * 30,  # long, 2 different characters
        "x" * 80,  # long, 1 character
        "abcd" * 20,  # long, 4 different characters (Django asks for 5)
    ],
)
def test_production_refuses_to_start_with_a_weak_secret_key(secret):
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=secret))
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is too weak" in result.stderr
    # The key itself is never echoed into the logs.
    assert secret not in result.stderr


def test_a_key_just_long_and_varied_enough_starts():
    # 50 characters, 5 different ones: Django's own minimum (security.W009).
    result = manage("check", env=production_env(DJANGO_SECRET_KEY="abcde" * 10))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("secret", ["dev", "", "change-me"])
def test_development_still_starts_with_a_short_missing_or_example_key(secret):
    result = manage("check", env={"DJANGO_DEBUG": "true", "DJANGO_SECRET_KEY": secret})
    assert result.returncode == 0, result.stderr


# --- check --deploy: a shared cache and a mail server -----------------------------------------


def test_check_deploy_fails_without_a_shared_cache():
    result = manage("check", "--deploy", env=production_env(REDIS_URL=""))
    assert result.returncode == 1
    assert "backend.E001" in result.stderr
    assert "REDIS_URL" in result.stderr


def test_check_deploy_warns_without_a_mail_server():
    for email_url in ("", "console://"):
        result = manage(
            "check", "--deploy", "--fail-level", "WARNING", env=production_env(EMAIL_URL=email_url)
        )
        assert result.returncode == 1, email_url
        assert "backend.W002" in result.stderr
        assert "backend.E001" not in result.stderr


def test_check_deploy_with_redis_and_smtp_reports_neither():
    result = manage("check", "--deploy", env=production_env())
    assert result.returncode == 0, result.stderr
    assert "backend.E001" not in result.stdout + result.stderr
    assert "backend.W002" not in result.stdout + result.stderr


# --- seed_demo with DJANGO_DEBUG=false: ensure_superuser's password check ---------------------


@pytest.fixture
def seed_env(monkeypatch, settings):
    settings.DEBUG = False
    for name in ("SEED_DEMO_PASSWORD", "DJANGO_SUPERUSER_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("variable", "password", "reason"),
    [
        ("SEED_DEMO_PASSWORD", "qwerty", "shorter than 12 characters"),
        ("SEED_DEMO_PASSWORD", "change-me-please-now", "example or placeholder"),
        ("DJANGO_SUPERUSER_PASSWORD", "123456789012", "entirely numeric"),
    ],
)
def test_seed_demo_in_production_refuses_a_weak_password(seed_env, variable, password, reason):
    seed_env.setenv(variable, password)
    with pytest.raises(CommandError) as error:
        call_command("seed_demo", stdout=StringIO())
    assert reason in str(error.value)
    assert password not in str(error.value)
    assert (User.objects.count(), Session.objects.count()) == (0, 0)


@pytest.mark.django_db
def test_seed_demo_in_production_accepts_a_strong_or_generated_password(seed_env):
    seed_env.setenv("SEED_DEMO_PASSWORD", "vT9#qLx2!mZr8Wk4")
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.get(username="admin").check_password("vT9#qLx2!mZr8Wk4")
    seed_env.delenv("SEED_DEMO_PASSWORD")
    out = StringIO()
    call_command("seed_demo", "--reset-passwords", stdout=out)
    assert not User.objects.get(username="admin").check_password("vT9#qLx2!mZr8Wk4")


@pytest.mark.django_db
def test_seed_demo_in_development_keeps_the_easy_password(monkeypatch, settings):
    settings.DEBUG = True
    monkeypatch.setenv("SEED_DEMO_PASSWORD", "demo")
    call_command("seed_demo", stdout=StringIO())
    assert User.objects.get(username="dana").check_password("demo")


# --- Stripe webhooks signed in the future -----------------------------------------------------


def signed_at(fake, user, *, offset: int):
    booking = book(user, SessionFactory())
    intent = fake.succeed(start_payment(user, booking))
    payload, signature = FakeStripe.signed_event(
        "payment_intent.succeeded", intent, timestamp=int(time.time()) + offset
    )
    return booking, payload, signature


@pytest.mark.django_db
@pytest.mark.parametrize("offset", [306, 3600, 10 * 365 * 86400])
def test_webhook_signed_in_the_future_is_400_and_changes_nothing(
    fake_stripe, api_client, user, offset
):
    booking, payload, signature = signed_at(fake_stripe, user, offset=offset)
    before = booking_state(booking)

    response = deliver(api_client, payload, signature)

    assert response.status_code == 400
    assert response.json() == {"detail": "Invalid Stripe signature.", "code": "invalid_signature"}
    assert booking_state(booking) == before
    assert StripeEvent.objects.count() == 0


@pytest.mark.django_db
def test_webhook_from_a_clock_a_minute_ahead_is_accepted(fake_stripe, api_client, user):
    booking, payload, signature = signed_at(fake_stripe, user, offset=60)
    response = deliver(api_client, payload, signature)
    assert response.status_code == 200, response.content
    assert Booking.objects.get(pk=booking.pk).status == "confirmed"


@pytest.mark.django_db
def test_a_second_timestamp_in_the_header_does_not_hide_a_future_one(fake_stripe, api_client, user):
    # Stripe's library verifies against the first item named exactly "t"; " t=<now>" (with a
    # space) is not that item, so the future one is what was signed and must be the one checked.
    booking, payload, signature = signed_at(fake_stripe, user, offset=3600)
    before = booking_state(booking)
    response = deliver(api_client, payload, f" t={int(time.time())},{signature}")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_signature"
    assert booking_state(booking) == before


# --- More than one app instance: nothing kept per instance -----------------------------------


# `manage check` never connects to the database, so an address nothing listens on will do.
SHARED = {
    "REDIS_URL": "redis://127.0.0.1:6379/13",
    "AWS_STORAGE_BUCKET_NAME": "media",
    "DATABASE_URL": "postgres://app@127.0.0.1:1/marketplace",
}


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ({"REDIS_URL": ""}, "APP_INSTANCES=2 needs REDIS_URL"),
        ({"AWS_STORAGE_BUCKET_NAME": ""}, "APP_INSTANCES=2 needs AWS_STORAGE_BUCKET_NAME"),
        ({"DATABASE_URL": ""}, "APP_INSTANCES=2 needs DATABASE_URL"),
    ],
)
def test_many_instances_refuse_a_local_cache_local_media_or_an_sqlite_file(missing, message):
    result = manage("check", env=production_env(APP_INSTANCES="2", **{**SHARED, **missing}))
    assert result.returncode == 1
    assert message in result.stderr


def test_many_instances_start_with_postgres_redis_and_s3_and_one_instance_needs_none():
    result = manage("check", env=production_env(APP_INSTANCES="2", **SHARED))
    assert result.returncode == 0, result.stderr
    alone = manage("check", env={"DJANGO_DEBUG": "true", "APP_INSTANCES": "1", "REDIS_URL": ""})
    assert alone.returncode == 0, alone.stderr
