import subprocess
import sys
from decimal import Decimal

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import IntegrityError, transaction

from backend.models import Booking, Session, User
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_health_reports_database_ok(api_client):
    response = api_client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "queue": "inline"}
    assert response["X-Request-ID"]


def test_request_id_is_echoed_when_sane(api_client):
    response = api_client.get("/api/health/", HTTP_X_REQUEST_ID="abc-123")
    assert response["X-Request-ID"] == "abc-123"
    response = api_client.get("/api/health/", HTTP_X_REQUEST_ID="bad id\n<script>")
    assert response["X-Request-ID"] != "bad id\n<script>"


def test_unknown_api_url_is_json_404(api_client):
    response = api_client.get("/api/does-not-exist/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["detail"] == "Not found."


def test_api_requires_authentication_by_default(api_client):
    # The token refresh endpoint is open, anything else unknown is 404; a protected one is 401.
    response = api_client.get("/api/auth/token/")
    assert response.status_code in (401, 405)
    assert response["Content-Type"].startswith("application/json")


def test_token_obtain_and_refresh_rotates_and_blacklists(api_client):
    UserFactory(username="pat")
    response = api_client.post(
        "/api/auth/token/", {"username": "pat", "password": "correct-horse-battery"}
    )
    assert response.status_code == 200
    tokens = response.json()
    assert set(tokens) == {"access", "refresh"}

    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert refreshed.status_code == 200
    assert refreshed.json()["refresh"] != tokens["refresh"]

    reused = api_client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]})
    assert reused.status_code == 401
    assert reused.json()["code"] == "token_not_valid"


def test_wrong_password_is_401_json(api_client):
    UserFactory(username="pat")
    response = api_client.post("/api/auth/token/", {"username": "pat", "password": "nope"})
    assert response.status_code == 401
    assert "detail" in response.json()


def test_malformed_json_is_400_json(api_client):
    response = api_client.post(
        "/api/auth/token/", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "detail" in response.json()


def test_swagger_json_is_served(api_client):
    response = api_client.get("/swagger.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["swagger"] == "2.0"
    assert "/health/" in schema["paths"]
    assert "Bearer" in schema["securityDefinitions"]


def test_swagger_and_redoc_pages_render(client):
    assert client.get("/swagger/").status_code == 200
    assert client.get("/redoc/").status_code == 200


def test_admin_login_page_renders(client):
    response = client.get("/admin/login/")
    assert response.status_code == 200


def test_admin_lists_bookings_without_query_per_row(client, django_assert_max_num_queries):
    admin = User.objects.create_superuser("root", "root@example.com", "a-long-admin-pass-1")
    bookings = BookingFactory.create_batch(15)
    client.force_login(admin)
    with django_assert_max_num_queries(8):
        response = client.get("/admin/backend/booking/")
    assert response.status_code == 200
    page = response.content.decode()
    assert all(b.session.title in page and b.user.username in page for b in bookings)


# --- The database enforces the invariants, not only the serializers -------------------------


def assert_rejected(create):
    with pytest.raises(IntegrityError), transaction.atomic():
        create()


def test_database_rejects_negative_price():
    assert_rejected(lambda: SessionFactory(price=Decimal("-1.00")))


def test_database_rejects_zero_capacity():
    assert_rejected(lambda: SessionFactory(capacity=0))


def test_database_rejects_zero_duration():
    assert_rejected(lambda: SessionFactory(duration_minutes=0))


def test_database_rejects_unknown_status():
    assert_rejected(lambda: SessionFactory(status="archived"))


def test_database_rejects_zero_seats():
    assert_rejected(lambda: BookingFactory(seats=0))


def test_database_rejects_second_active_booking_for_same_user_and_session():
    booking = BookingFactory(status=Booking.Status.PENDING)
    assert_rejected(
        lambda: BookingFactory(session=booking.session, user=booking.user, status="confirmed")
    )
    assert Booking.objects.count() == 1


def test_database_allows_rebooking_after_cancellation():
    booking = BookingFactory(status=Booking.Status.CANCELLED)
    BookingFactory(session=booking.session, user=booking.user, status=Booking.Status.CONFIRMED)
    assert Booking.objects.filter(session=booking.session, user=booking.user).count() == 2


def test_database_rejects_duplicate_oauth_identity():
    UserFactory(oauth_provider="github", oauth_uid="42")
    assert_rejected(lambda: UserFactory(oauth_provider="github", oauth_uid="42"))


# --- Demo data ----------------------------------------------------------------------------


def test_seed_demo_is_idempotent(monkeypatch):
    monkeypatch.setenv("SEED_DEMO_PASSWORD", "demo-pass-for-tests-1")
    call_command("seed_demo", stdout=None)
    counts = (User.objects.count(), Session.objects.count(), Booking.objects.count())
    call_command("seed_demo", stdout=None)
    assert (User.objects.count(), Session.objects.count(), Booking.objects.count()) == counts
    assert counts[0] == 9
    assert counts[1] == 30
    assert User.objects.filter(role="creator").count() == 3
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="dana").check_password("demo-pass-for-tests-1")
    categories = set(Session.objects.values_list("category", flat=True))
    assert len(categories) >= 4
    assert Session.objects.filter(price=0).exists()
    assert Session.objects.filter(is_online=False).exists()


# --- Settings refuse insecure production configuration -------------------------------------


def run_settings(env: dict) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "core.settings", "EMAIL_URL": ""}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        env={**base, **env},
        capture_output=True,
        text=True,
        cwd=settings.BASE_DIR,
        check=False,
    )


# Long and varied enough for production (weak keys: test_production_safety.py).
STRONG_KEY = "test-only-production-key-4b7e9d2a6c1f8e3b5a0d7c9e2f4a6b8d"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DJANGO_DEBUG": "false", "DJANGO_ALLOWED_HOSTS": "api.example.com"}, "SECRET_KEY"),
        (
            {
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": "change-me",
                "DJANGO_ALLOWED_HOSTS": "x",
            },
            "SECRET_KEY",
        ),
        ({"DJANGO_DEBUG": "false", "DJANGO_SECRET_KEY": STRONG_KEY}, "ALLOWED_HOSTS"),
    ],
)
def test_production_settings_refuse_insecure_configuration(env, message):
    result = run_settings(env)
    assert result.returncode != 0
    assert message in result.stderr
    assert "started" not in result.stdout


def test_production_settings_start_when_configured():
    result = run_settings(
        {
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": STRONG_KEY,
            "DJANGO_ALLOWED_HOSTS": "api.example.com",
        }
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_postgres_connection_has_lock_and_statement_timeouts(is_postgres):
    if not is_postgres:
        pytest.skip("needs PostgreSQL (set DATABASE_URL to run it)")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] != "0"
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "0"


def test_swagger_documents_error_responses_on_every_operation(api_client):
    schema = api_client.get("/swagger.json").json()
    operations = [
        (path, method, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    assert operations
    for path, method, operation in operations:
        codes = set(operation["responses"])
        assert {"400", "401", "404", "429", "503"} <= codes, (path, method)
        if method != "get":
            assert "409" in codes, (path, method)
    health = schema["paths"]["/health/"]["get"]["responses"]
    assert health["503"]["schema"]["required"] == ["status", "database", "queue"]


def test_served_swagger_is_valid_swagger_2(api_client):
    from swagger_spec_validator.validator20 import validate_spec

    validate_spec(api_client.get("/swagger.json").json())


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_unknown_api_url_is_json_404_for_unsafe_methods_too(method):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = getattr(client, method)("/api/bookings/null,null/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
