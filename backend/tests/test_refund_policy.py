"""Cancellation policies, partial refunds and the cancel quote (issue 19).

Money is counted at the receiving end: the refund requests the Stripe stand-in recorded (and
the amount each carried), the refund rows, `refunded_amount`, and the dashboards.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend import booking_rules
from backend.integrations import stripe_gateway
from backend.models import Booking, Payment, Session
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import book, deliver, pay
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

TIERS = [
    {"hours_before": 72, "refund_percent": 100},
    {"hours_before": 24, "refund_percent": 50},
    {"hours_before": 0, "refund_percent": 0},
]


def paid_booking(fake, user, *, seats=1, **session_fields):
    """A booking paid through the stand-in; its session starts a week from now."""
    session = SessionFactory(**session_fields)
    booking, intent_id = pay(fake, user, book(user, session, seats=seats))
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
    return booking, intent_id


def starts_in(session: Session, delta: timedelta) -> None:
    """Moves the start without the API (as time passing would): no `session_moved_at`."""
    Session.objects.filter(pk=session.pk).update(start_time=timezone.now() + delta)


def refund_requests(fake):
    return [request.params for request in fake.requests_to("POST", "/v1/refunds")]


def cancel(client, booking, capture):
    """POST cancel/, its outbox tasks (the refund) run after the commit; then the booking as
    the client reads it next (`after`), or the error response."""
    with capture(execute=True):
        response = client.post(f"/api/bookings/{booking.pk}/cancel/")
    if response.status_code != 200:
        return response
    return client.get(f"/api/bookings/{booking.pk}/")


# --- the policy on the session: validation and display ----------------------------------------


def session_body(**fields):
    return {
        "title": "Therapy",
        "price": "80.00",
        "duration_minutes": 50,
        "start_time": (timezone.now() + timedelta(days=10)).isoformat(),
        "capacity": 4,
        "is_online": True,
        **fields,
    }


def test_a_policy_is_stored_largest_tier_first_and_shown_in_the_detail(creator_client):
    tiers = [TIERS[2], TIERS[0], TIERS[1]]
    response = creator_client.post(
        "/api/sessions/", session_body(refund_policy=tiers), format="json"
    )
    assert response.status_code == 201, response.json()
    assert response.json()["refund_policy"] == TIERS
    session_id = response.json()["id"]
    assert Session.objects.get(pk=session_id).refund_policy == TIERS

    detail = creator_client.get(f"/api/sessions/{session_id}/").json()
    assert detail["refund_policy"] == TIERS


def test_without_a_policy_the_detail_shows_v1s_rule(api_client, settings):
    settings.CANCELLATION_WINDOW_HOURS = 48
    session = SessionFactory()
    assert session.refund_policy is None
    detail = api_client.get(f"/api/sessions/{session.pk}/").json()
    assert detail["refund_policy"] == [{"hours_before": 48, "refund_percent": 100}]


@pytest.mark.parametrize(
    "policy",
    [
        [{"hours_before": 24, "refund_percent": 101}],
        [{"hours_before": 24, "refund_percent": -1}],
        [{"hours_before": -1, "refund_percent": 50}],
        [{"hours_before": 24, "refund_percent": 100}, {"hours_before": 24, "refund_percent": 50}],
        [{"hours_before": hours, "refund_percent": 10} for hours in range(6)],
        [],
        [{"hours_before": 24}],
        [{"hours_before": "soon", "refund_percent": 50}],
        {"hours_before": 24, "refund_percent": 100},
        "full refund",
    ],
    ids=[
        "percent-101",
        "percent-negative",
        "hours-negative",
        "duplicate-hours",
        "six-tiers",
        "empty",
        "missing-percent",
        "hours-not-a-number",
        "not-a-list",
        "a-string",
    ],
)
def test_bad_policies_are_400_and_change_nothing(creator, creator_client, policy):
    session = SessionFactory(creator=creator, refund_policy=TIERS)
    before = Session.objects.filter(pk=session.pk).values().get()

    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"refund_policy": policy}, format="json"
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert list(body["errors"]) == ["refund_policy"]
    assert Session.objects.filter(pk=session.pk).values().get() == before

    created = creator_client.post(
        "/api/sessions/", session_body(refund_policy=policy), format="json"
    )
    assert created.status_code == 400
    assert Session.objects.filter(creator=creator).count() == 1


def test_patching_the_policy_applies_to_later_cancellations(creator, creator_client):
    session = SessionFactory(creator=creator)
    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"refund_policy": TIERS[1:]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["refund_policy"] == TIERS[1:]
    session.refresh_from_db()
    assert booking_rules.refund_policy_of(session) == TIERS[1:]

    # null goes back to the platform default.
    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"refund_policy": None}, format="json"
    )
    assert response.json()["refund_policy"] == [{"hours_before": 24, "refund_percent": 100}]
    session.refresh_from_db()
    assert session.refund_policy is None


# --- the rule itself, at exact instants ------------------------------------------------------


def quote_at(booking, hours_left, *, by_owner=True):
    start = booking.session.start_time
    return booking_rules.cancel_quote(
        booking=booking, by_owner=by_owner, now=start - timedelta(hours=hours_left)
    )


def test_the_tier_with_the_largest_hours_not_above_the_hours_left_applies():
    booking = BookingFactory(
        session=SessionFactory(refund_policy=TIERS, price=Decimal("40.00")), payment_status="paid"
    )
    cases = {100: 100, 72: 100, 71.999: 50, 30: 50, 24: 50, 23.99: 0, 2: 0, 0.01: 0}
    for hours_left, percent in cases.items():
        quote = quote_at(booking, hours_left)
        assert (quote.allowed, quote.refund_percent) == (True, percent), hours_left
        assert quote.refund_amount == Decimal("40.00") * percent / 100


def test_below_the_smallest_tier_the_cancellation_is_refused():
    booking = BookingFactory(session=SessionFactory(refund_policy=TIERS[:2]), payment_status="paid")
    quote = quote_at(booking, 23.5)
    assert (quote.allowed, quote.code, quote.refund_amount) == (
        False,
        "cancellation_window",
        Decimal("0.00"),
    )
    # The creator and staff always refund in full, whenever they cancel.
    creator_quote = quote_at(booking, 1, by_owner=False)
    assert (creator_quote.allowed, creator_quote.refund_percent) == (True, 100)


@pytest.mark.parametrize(
    ("amount", "percent", "currency", "expected"),
    [
        (Decimal("77.97"), 50, "USD", Decimal("38.99")),  # 38.985 rounds half up
        (Decimal("10.01"), 50, "EUR", Decimal("5.01")),  # 5.005
        (Decimal("10.03"), 33, "USD", Decimal("3.31")),  # 3.3099
        (Decimal("1999"), 50, "JPY", Decimal("1000")),  # 999.5 yen: no half yen
        (Decimal("1001"), 25, "JPY", Decimal("250")),  # 250.25
        (Decimal("25.00"), 100, "USD", Decimal("25.00")),
        (Decimal("25.00"), 0, "USD", Decimal("0.00")),
    ],
)
def test_refund_amounts_round_half_up_to_the_minor_unit(amount, percent, currency, expected):
    assert (
        booking_rules.refund_amount(amount=amount, percent=percent, currency=currency) == expected
    )


# --- cancelling: the partial refund at Stripe, recorded --------------------------------------


@pytest.mark.parametrize(
    ("hours_left", "percent", "refunded", "stripe_amount"),
    [(72.5, 100, "77.97", None), (30, 50, "38.99", "3899"), (2, 0, "0.00", "none")],
    ids=["72h-100", "30h-50", "2h-0"],
)
def test_a_three_seat_booking_is_refunded_by_the_policy_to_the_cent(
    fake_stripe,
    user,
    hours_left,
    percent,
    refunded,
    stripe_amount,
    django_capture_on_commit_callbacks,
):
    booking, intent_id = paid_booking(
        fake_stripe, user, seats=3, price=Decimal("25.99"), refund_policy=TIERS
    )
    assert booking.amount == Decimal("77.97")
    starts_in(booking.session, timedelta(hours=hours_left))
    client = auth_client(user)

    quote = client.get(f"/api/bookings/{booking.pk}/cancel_quote/").json()
    assert quote == {
        "allowed": True,
        "refund_percent": percent,
        "refund_amount": refunded,
        "currency": "USD",
        "code": None,
        "detail": "",
    }

    response = cancel(client, booking, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["refunded_amount"], body["refund_percent"]) == (
        "cancelled",
        refunded,
        percent,
    )
    booking.refresh_from_db()
    assert booking.refunded_amount == Decimal(refunded)
    requests = refund_requests(fake_stripe)
    if stripe_amount == "none":
        # 0 %: nothing to give back, Stripe is not asked; the creator keeps the payment.
        assert requests == []
        assert booking.payment_status == "paid"
        assert not Payment.objects.filter(booking=booking, kind="refund").exists()
        return
    (request,) = requests
    assert request.get("amount") == stripe_amount  # None: the whole charge, as in v1
    assert request["payment_intent"] == intent_id
    (row,) = Payment.objects.filter(booking=booking, kind="refund")
    assert (row.amount, row.status) == (Decimal(refunded), "succeeded")
    assert booking.payment_status == ("refunded" if percent == 100 else "paid")


def test_a_jpy_booking_gets_whole_yen_back(fake_stripe, user, django_capture_on_commit_callbacks):
    booking, _ = paid_booking(
        fake_stripe, user, price=Decimal("1999"), currency="JPY", refund_policy=TIERS
    )
    starts_in(booking.session, timedelta(hours=30))
    response = cancel(auth_client(user), booking, django_capture_on_commit_callbacks)
    assert response.json()["refunded_amount"] == "1000.00"
    (request,) = refund_requests(fake_stripe)
    assert request["amount"] == "1000"  # JPY has no minor unit: 1000 yen is 1000
    (refund,) = fake_stripe.state.refunds.values()
    assert (refund["amount"], refund["currency"]) == (1000, "jpy")


def test_inside_the_no_refund_window_the_user_is_refused_and_nothing_changes(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    booking, _ = paid_booking(fake_stripe, user, refund_policy=TIERS[:2])
    starts_in(booking.session, timedelta(hours=5))
    client = auth_client(user)
    quote = client.get(f"/api/bookings/{booking.pk}/cancel_quote/").json()
    assert (quote["allowed"], quote["code"], quote["refund_amount"]) == (
        False,
        "cancellation_window",
        "0.00",
    )
    before = Booking.objects.filter(pk=booking.pk).values().get()

    response = cancel(client, booking, django_capture_on_commit_callbacks)
    assert (response.status_code, response.json()["code"]) == (409, "cancellation_window")
    assert Booking.objects.filter(pk=booking.pk).values().get() == before
    assert refund_requests(fake_stripe) == []


def test_the_creator_cancelling_refunds_in_full_even_inside_the_window(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    booking, _ = paid_booking(fake_stripe, user, refund_policy=TIERS)
    starts_in(booking.session, timedelta(hours=2))
    creator = auth_client(booking.session.creator)
    quote = creator.get(f"/api/bookings/{booking.pk}/cancel_quote/").json()
    assert (quote["refund_percent"], quote["refund_amount"]) == (100, "25.00")
    response = cancel(creator, booking, django_capture_on_commit_callbacks)
    assert (response.json()["payment_status"], response.json()["refunded_amount"]) == (
        "refunded",
        "25.00",
    )
    assert len(refund_requests(fake_stripe)) == 1


def test_cancel_quote_is_404_for_strangers_and_needs_a_token(api_client, user):
    booking = BookingFactory(user=user)
    url = f"/api/bookings/{booking.pk}/cancel_quote/"
    assert auth_client(UserFactory()).get(url).status_code == 404
    assert api_client.get(url).status_code == 401
    assert auth_client(user).get("/api/bookings/999999/cancel_quote/").status_code == 404


def test_cancel_quote_of_a_free_or_cancelled_booking(user):
    free = BookingFactory(user=user, session=SessionFactory(price=Decimal("0")))
    assert auth_client(user).get(f"/api/bookings/{free.pk}/cancel_quote/").json() == {
        "allowed": True,
        "refund_percent": 0,
        "refund_amount": "0.00",
        "currency": "USD",
        "code": None,
        "detail": "",
    }
    gone = BookingFactory(user=user, status="cancelled")
    quote = auth_client(user).get(f"/api/bookings/{gone.pk}/cancel_quote/").json()
    assert (quote["allowed"], quote["code"]) == (False, "not_active")


# --- the same final numbers, whichever of webhook and API answer comes first ------------------


def final_numbers(booking):
    fresh = Booking.objects.get(pk=booking.pk)
    return {
        "status": fresh.status,
        "payment_status": fresh.payment_status,
        "refunded_amount": fresh.refunded_amount,
        "refund_percent": fresh.refund_percent,
        "refund_rows": sorted(
            Payment.objects.filter(booking=fresh, kind="refund").values_list("amount", "status")
        ),
    }


def spent(user):
    return auth_client(user).get("/api/dashboard/user/").json()["stats"]["total_spent"]


def revenue(creator):
    return auth_client(creator).get("/api/dashboard/creator/").json()["stats"]["revenue"]


@pytest.mark.parametrize("first", ["api_answer", "webhook"])
def test_a_partial_refund_ends_the_same_whichever_report_comes_first(
    fake_stripe, api_client, user, first, monkeypatch, django_capture_on_commit_callbacks
):
    booking, intent_id = paid_booking(
        fake_stripe, user, seats=3, price=Decimal("25.99"), refund_policy=TIERS
    )
    starts_in(booking.session, timedelta(hours=30))
    outcomes = []

    def webhook():
        charge = fake_stripe.refunded_charge(intent_id)
        assert (charge["amount_refunded"], charge["refunded"]) == (3899, False)
        response = deliver(api_client, *FakeStripe.signed_event("charge.refunded", charge))
        outcomes.append(response.json()["outcome"])

    if first == "webhook":
        real_create_refund = stripe_gateway.create_refund

        def refund_then_webhook(**kwargs):
            # Stripe made the refund and its event arrives before its answer to our request.
            refund = real_create_refund(**kwargs)
            webhook()
            return refund

        monkeypatch.setattr(stripe_gateway, "create_refund", refund_then_webhook)

    cancel(auth_client(user), booking, django_capture_on_commit_callbacks)
    if first == "api_answer":
        webhook()

    assert outcomes == (["partially_refunded"] if first == "webhook" else ["already_applied"])
    assert final_numbers(booking) == {
        "status": "cancelled",
        "payment_status": "paid",
        "refunded_amount": Decimal("38.99"),
        "refund_percent": 50,
        "refund_rows": [(Decimal("38.99"), "succeeded")],
    }
    assert fake_stripe.refund_count == 1
    # Paid minus exactly what came back: 77.97 - 38.99.
    assert spent(user) == [{"currency": "USD", "amount": "38.98"}]
    assert revenue(booking.session.creator) == [{"currency": "USD", "amount": "38.98"}]


def test_a_redelivered_refund_task_refunds_nothing_twice(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    from backend.models import OutboxMessage
    from backend.services.refunds import refund_charge_now

    booking, intent_id = paid_booking(fake_stripe, user, refund_policy=TIERS)
    starts_in(booking.session, timedelta(hours=30))
    cancel(auth_client(user), booking, django_capture_on_commit_callbacks)
    message = OutboxMessage.objects.get(effect_key=f"refund:{intent_id}")
    assert message.kwargs["amount_minor"] == 1250

    refund_charge_now(**message.kwargs)  # an acks_late redelivery after the work was done
    assert fake_stripe.refund_count == 1
    assert final_numbers(booking)["refund_rows"] == [(Decimal("12.50"), "succeeded")]


# --- the creator moves the session: the review's attack ----------------------------------------


def test_moving_a_paid_session_into_the_no_refund_window_frees_the_attendees_cancellation(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    user.email = "pat@example.com"
    user.save()
    booking, _ = paid_booking(fake_stripe, user)  # the default policy: 24 h before, 100 %
    session = booking.session
    old_start = session.start_time
    mail.outbox.clear()

    new_start = timezone.now() + timedelta(hours=1)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(session.creator).patch(
            f"/api/sessions/{session.pk}/", {"start_time": new_start.isoformat()}, format="json"
        )
    assert response.status_code == 200

    (message,) = mail.outbox
    assert message.to == ["pat@example.com"]
    assert message.subject == f"[Sessions Marketplace] New time: {session.title}"
    assert old_start.strftime("%Y-%m-%d %H:%M UTC") in message.body
    assert new_start.strftime("%Y-%m-%d %H:%M UTC") in message.body
    assert "full refund" in message.body
    booking.refresh_from_db()
    assert booking.session_moved_at is not None
    assert booking.events.filter(reason="session_moved").count() == 1

    client = auth_client(user)
    quote = client.get(f"/api/bookings/{booking.pk}/cancel_quote/").json()
    assert (quote["allowed"], quote["refund_percent"], quote["refund_amount"]) == (
        True,
        100,
        "25.00",
    )
    response = cancel(client, booking, django_capture_on_commit_callbacks)
    assert response.status_code == 200
    assert (response.json()["payment_status"], response.json()["refunded_amount"]) == (
        "refunded",
        "25.00",
    )
    assert len(refund_requests(fake_stripe)) == 1


def test_who_booked_after_the_move_follows_the_policy(
    fake_stripe, user, django_capture_on_commit_callbacks
):
    session = SessionFactory()
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(session.creator).patch(
            f"/api/sessions/{session.pk}/",
            {"start_time": (timezone.now() + timedelta(hours=3)).isoformat()},
            format="json",
        )
    booking, _ = pay(fake_stripe, user, book(user, session))
    assert booking.session_moved_at is None
    response = cancel(auth_client(user), booking, django_capture_on_commit_callbacks)
    assert (response.status_code, response.json()["code"]) == (409, "cancellation_window")


def test_changing_other_fields_does_not_free_the_cancellation(
    creator, django_capture_on_commit_callbacks
):
    session = SessionFactory(creator=creator)
    booking = BookingFactory(session=session, payment_status="paid")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        auth_client(creator).patch(f"/api/sessions/{session.pk}/", {"title": "Renamed"})
    booking.refresh_from_db()
    assert booking.session_moved_at is None
    assert mail.outbox == []


def test_a_refund_made_earlier_counts_towards_the_policys_share(
    fake_stripe, api_client, user, django_capture_on_commit_callbacks
):
    """5.00 given back from Stripe's dashboard, then a 50 % cancellation of 25.00: 7.50 more,
    12.50 in all, never 12.50 on top."""
    booking, intent_id = paid_booking(fake_stripe, user, refund_policy=TIERS)
    charge = fake_stripe.charge_for(intent_id, refunded=False)
    charge["amount_refunded"] = 500
    response = deliver(api_client, *FakeStripe.signed_event("charge.refunded", charge))
    assert response.json()["outcome"] == "partially_refunded"
    starts_in(booking.session, timedelta(hours=30))

    quote = auth_client(user).get(f"/api/bookings/{booking.pk}/cancel_quote/").json()
    assert (quote["refund_percent"], quote["refund_amount"]) == (50, "7.50")
    after = cancel(auth_client(user), booking, django_capture_on_commit_callbacks).json()
    assert after["refunded_amount"] == "12.50"
    (request,) = refund_requests(fake_stripe)
    assert request["amount"] == "750"
