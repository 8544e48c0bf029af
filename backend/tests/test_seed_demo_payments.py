"""seed_demo pays its paid demo bookings through the payment service (fake_stripe stand-in),
so every one of them has its Payment rows and can be cancelled and refunded."""

import io

import pytest
from django.core.management import call_command

from backend.models import Booking, Payment, User
from backend.tests.conftest import auth_client

pytestmark = pytest.mark.django_db

# seed_demo's BOOKINGS: 6 paid, 1 refunded (cancelled), 5 free, 1 pending unpaid.
PAID_DEMO_BOOKINGS = 6


CHOSEN_PASSWORD = "demo-pass-for-tests-1"


def seed(monkeypatch, password: str | None = CHOSEN_PASSWORD, *args: str) -> str:
    if password is None:
        monkeypatch.delenv("SEED_DEMO_PASSWORD", raising=False)
    else:
        monkeypatch.setenv("SEED_DEMO_PASSWORD", password)
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Runs what a block commits to the outbox (tasks run inline after commit, as in make run)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def test_paid_demo_bookings_are_paid_through_stripe_with_payment_rows(
    monkeypatch, fake_stripe, run_tasks
):
    with run_tasks():
        seed(monkeypatch)
    paid = Booking.objects.filter(payment_status="paid")
    assert paid.count() == PAID_DEMO_BOOKINGS
    assert set(paid.values_list("status", flat=True)) == {"confirmed"}
    for booking in paid:
        (charge,) = booking.payments.filter(kind=Payment.Kind.CHARGE)
        assert charge.status == "succeeded"
        assert charge.amount == booking.amount
        assert fake_stripe.intent(charge.stripe_id)["status"] == "succeeded"
        assert fake_stripe.intent(charge.stripe_id)["metadata"]["booking_id"] == str(booking.pk)
    refunded = Booking.objects.get(payment_status="refunded")
    assert refunded.status == "cancelled"
    assert sorted(refunded.payments.values_list("kind", "status")) == [
        ("charge", "succeeded"),
        ("refund", "succeeded"),
    ]
    assert fake_stripe.intent_count == PAID_DEMO_BOOKINGS + 1
    assert fake_stripe.refund_count == 1
    # No demo booking claims a payment that is not on record.
    for booking in Booking.objects.filter(payment_status__in=["paid", "refunded"]):
        assert booking.payments.filter(kind="charge", status="succeeded").exists()


def test_every_paid_demo_booking_can_be_cancelled_and_refunded(monkeypatch, fake_stripe, run_tasks):
    with run_tasks():
        seed(monkeypatch)
    refunds_before = fake_stripe.refund_count
    for booking in Booking.objects.filter(payment_status="paid").select_related("session"):
        # Its creator may cancel at any time (some demo sessions have already taken place).
        client = auth_client(booking.session.creator)
        with run_tasks():
            response = client.post(f"/api/bookings/{booking.pk}/cancel/")
        assert response.status_code == 200, response.json()
        assert response.json()["status"] == "cancelled"
        # The refund is queued by the cancellation and made by its task right after.
        booking.refresh_from_db()
        assert booking.payment_status == "refunded"
        assert booking.payments.filter(kind="refund", status="succeeded").count() == 1
    assert fake_stripe.refund_count == refunds_before + PAID_DEMO_BOOKINGS
    assert not Booking.objects.filter(payment_status="paid").exists()


def test_an_upcoming_paid_demo_booking_is_refunded_when_its_user_cancels(
    monkeypatch, fake_stripe, run_tasks
):
    with run_tasks():
        seed(monkeypatch)
    booking = Booking.objects.get(user__username="dana", session__title="Python from zero")
    with run_tasks():
        response = auth_client(booking.user).post(f"/api/bookings/{booking.pk}/cancel/")
    assert response.status_code == 200, response.json()
    booking.refresh_from_db()
    assert booking.payment_status == "refunded"


def test_seeding_twice_pays_nothing_twice(monkeypatch, fake_stripe):
    seed(monkeypatch)
    counts = (Booking.objects.count(), Payment.objects.count(), fake_stripe.intent_count)
    seed(monkeypatch)
    assert (Booking.objects.count(), Payment.objects.count(), fake_stripe.intent_count) == counts


def test_without_a_test_mode_key_paid_demo_bookings_are_skipped_not_faked(monkeypatch, settings):
    settings.STRIPE_SECRET_KEY = ""
    out = seed(monkeypatch)
    assert "7 paid demo booking(s) skipped" in out
    assert not Booking.objects.filter(payment_status__in=["paid", "refunded"]).exists()
    assert Booking.objects.filter(payment_status="not_required").count() == 5
    assert Payment.objects.count() == 0


def test_a_live_key_is_never_used_to_pay_demo_bookings(monkeypatch, settings, fake_stripe):
    settings.STRIPE_SECRET_KEY = "sk_live_not_a_real_key"
    out = seed(monkeypatch)
    assert "7 paid demo booking(s) skipped" in out
    assert fake_stripe.requests_to("POST", "/v1/payment_intents") == []


def test_generated_password_is_one_for_every_demo_account_and_printed(monkeypatch, fake_stripe):
    out = seed(monkeypatch, password=None)
    line = next(line for line in out.splitlines() if line.startswith("Demo password"))
    password = line.rsplit(" ", 1)[1]
    assert len(password) >= 12
    for user in User.objects.all():
        assert user.check_password(password), user.username


def test_reset_passwords_sets_and_prints_a_new_shared_password(monkeypatch, fake_stripe):
    seed(monkeypatch, password=None)
    out = seed(monkeypatch, None)
    assert "Passwords unchanged" in out
    assert "--reset-passwords" in out
    out = seed(monkeypatch, None, "--reset-passwords")
    password = next(x for x in out.splitlines() if x.startswith("Demo password")).rsplit(" ", 1)[1]
    assert User.objects.get(username="dana").check_password(password)
    assert User.objects.get(username="alice_coach").check_password(password)
