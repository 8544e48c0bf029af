"""Sessions that run only if enough people book (CONTRACT.md), with the real `stripe` library
against the stand-in (fake_stripe.py), which counts what reaches "Stripe": customers, saved
cards (SetupIntents), off-session charges, detached payment methods."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend.exceptions import IntegrationUnavailable
from backend.models import Booking, OutboxMessage, Session
from backend.services import minimum, outbox, payouts, scheduled_payments
from backend.services.bookings import booking_cancel, booking_create
from backend.tasks.periodic import run_all_periodic_jobs
from backend.tests.factories import SessionFactory, UserFactory
from backend.tests.payments_support import deliver
from backend.tests.support import auth_client, backdate, run_concurrently, wait_after

pytestmark = pytest.mark.django_db

CREATE_URL = "/api/payment/create-intent/"
CONFIRM_URL = "/api/payment/confirm/"


def minimum_session(*, min_attendees=2, capacity=5, price="25.00", **fields):
    start = timezone.now() + timedelta(days=5)
    return SessionFactory(
        price=Decimal(price),
        capacity=capacity,
        min_attendees=min_attendees,
        start_time=start,
        decision_at=start - timedelta(hours=48),
        **fields,
    )


def save_card(fake, user, session, *, card="pm_card_visa", seats=1) -> Booking:
    """What a client does: book, ask for the SetupIntent, let Stripe.js save the card, confirm."""
    booking = booking_create(user=user, session_id=session.pk, seats=seats)
    client = auth_client(user)
    started = client.post(CREATE_URL, {"booking_id": booking.pk})
    assert started.status_code == 200, started.json()
    fake.save_card(started.json()["setup_intent_id"], card)
    confirmed = client.post(CONFIRM_URL, {"setup_intent_id": started.json()["setup_intent_id"]})
    assert confirmed.status_code == 200, confirmed.json()
    booking.refresh_from_db()
    return booking


def reach_decision(session: Session) -> None:
    """Moves the decision time into the past (the clock reaching it)."""
    Session.objects.filter(pk=session.pk).update(decision_at=timezone.now() - timedelta(seconds=1))


def emails_to(address: str, kind_subject: str) -> list:
    return [m for m in mail.outbox if address in m.to and kind_subject in m.subject]


# --- fields and validation --------------------------------------------------------------------


def test_creating_a_session_with_a_minimum_defaults_the_decision_to_48_hours_before(
    creator_client,
):
    start = (timezone.now() + timedelta(days=5)).replace(microsecond=0)
    body = {
        "title": "Pottery for six",
        "price": "30.00",
        "duration_minutes": 90,
        "start_time": start.isoformat(),
        "capacity": 6,
        "is_online": True,
        "status": "published",
        "min_attendees": 4,
    }
    response = creator_client.post("/api/sessions/", body, format="json")
    assert response.status_code == 201, response.json()
    session = Session.objects.get(pk=response.json()["id"])
    assert session.min_attendees == 4
    assert session.decision_at == start - timedelta(hours=48)


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"min_attendees": 7}, "invalid_minimum"),
        ({"decision_at_hours_before_start": 0.5}, "invalid_decision_at"),
        ({"decision_at_from_now_minutes": 30}, "invalid_decision_at"),
        ({"min_attendees": 0}, "invalid"),
    ],
)
def test_bad_minimum_settings_are_400_and_create_nothing(creator_client, changes, code):
    start = timezone.now() + timedelta(days=5)
    body = {
        "title": "Pottery for six",
        "price": "30.00",
        "duration_minutes": 90,
        "start_time": start.isoformat(),
        "capacity": 6,
        "is_online": True,
        "status": "published",
        "min_attendees": changes.get("min_attendees", 3),
    }
    if "decision_at_hours_before_start" in changes:
        hours = changes["decision_at_hours_before_start"]
        body["decision_at"] = (start - timedelta(hours=hours)).isoformat()
    if "decision_at_from_now_minutes" in changes:
        minutes = changes["decision_at_from_now_minutes"]
        body["decision_at"] = (timezone.now() + timedelta(minutes=minutes)).isoformat()
    response = creator_client.post("/api/sessions/", body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == code
    assert not Session.objects.exists()


def test_after_bookings_the_minimum_only_goes_down_and_the_decision_not_later(fake_stripe):
    session = minimum_session(min_attendees=3)
    save_card(fake_stripe, UserFactory(), session)
    client = auth_client(session.creator)
    url = f"/api/sessions/{session.pk}/"
    decision_at = session.decision_at

    raised = client.patch(url, {"min_attendees": 4}, format="json")
    later = client.patch(
        url, {"decision_at": (decision_at + timedelta(hours=1)).isoformat()}, format="json"
    )
    removed = client.patch(url, {"min_attendees": None}, format="json")

    assert (raised.status_code, raised.json()["code"]) == (409, "minimum_raised")
    assert (later.status_code, later.json()["code"]) == (409, "decision_moved_later")
    assert (removed.status_code, removed.json()["code"]) == (409, "minimum_raised")
    session.refresh_from_db()
    assert (session.min_attendees, session.decision_at) == (3, decision_at)

    lowered = client.patch(url, {"min_attendees": 2}, format="json")
    earlier = client.patch(
        url, {"decision_at": (decision_at - timedelta(hours=2)).isoformat()}, format="json"
    )
    assert (lowered.status_code, earlier.status_code) == (200, 200)
    session.refresh_from_db()
    assert (session.min_attendees, session.decision_at) == (2, decision_at - timedelta(hours=2))


# --- booking before the decision --------------------------------------------------------------


def test_booking_before_the_decision_saves_the_card_and_charges_nothing(fake_stripe):
    session = minimum_session()
    user = UserFactory()
    booking = booking_create(user=user, session_id=session.pk)
    client = auth_client(user)

    response = client.post(CREATE_URL, {"booking_id": booking.pk})

    assert response.status_code == 200, response.json()
    body = response.json()
    setup = fake_stripe.setup_intent(body["setup_intent_id"])
    assert body == {
        "client_secret": setup["client_secret"],
        "payment_intent_id": None,
        "setup_intent_id": setup["id"],
        "amount": "25.00",
        "currency": "USD",
        "publishable_key": "pk_test_fake_0123456789",
    }
    (sent,) = fake_stripe.requests_to("POST", "/v1/setup_intents")
    assert sent.params["usage"] == "off_session"
    assert sent.params["metadata[booking_id]"] == str(booking.pk)
    assert sent.idempotency_key == f"sm-booking-{booking.pk}-setup"
    assert setup["customer"] == Booking.objects.get(pk=booking.pk).stripe_customer_id

    fake_stripe.save_card(setup["id"])
    confirmed = client.post(CONFIRM_URL, {"setup_intent_id": setup["id"]})

    assert confirmed.status_code == 200
    assert (confirmed.json()["status"], confirmed.json()["payment_status"]) == (
        "pending",
        "scheduled",
    )
    booking.refresh_from_db()
    assert booking.hold_expires_at == session.start_time  # held until the decision
    assert booking.payment_method_id == fake_stripe.setup_intent(setup["id"])["payment_method"]
    assert fake_stripe.requests_to("POST", "/v1/payment_intents") == []


def test_the_signed_setup_intent_webhook_schedules_the_booking(fake_stripe, api_client):
    session = minimum_session()
    user = UserFactory()
    booking = booking_create(user=user, session_id=session.pk)
    setup_id = (
        auth_client(user).post(CREATE_URL, {"booking_id": booking.pk}).json()["setup_intent_id"]
    )
    saved = fake_stripe.save_card(setup_id)

    payload, signature = fake_stripe.signed_event("setup_intent.succeeded", saved)
    response = deliver(api_client, payload, signature)
    again = deliver(api_client, payload, signature)

    assert response.status_code == 200
    assert again.json()["outcome"] == "duplicate"
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("pending", "scheduled")


def test_a_free_booking_waits_for_the_decision_and_is_confirmed_when_it_runs(fake_stripe):
    session = minimum_session(min_attendees=1, price="0.00")
    booking = booking_create(user=UserFactory(), session_id=session.pk)
    assert (booking.status, booking.payment_status) == ("pending", "not_required")
    assert booking.hold_expires_at == session.start_time

    reach_decision(session)
    assert minimum.session_decide_minimum(session_id=session.pk) == "runs"

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("confirmed", "not_required")


def test_an_unsaved_card_does_not_count_towards_the_minimum(fake_stripe):
    session = minimum_session(min_attendees=2)
    save_card(fake_stripe, UserFactory(), session)
    booking_create(user=UserFactory(), session_id=session.pk)  # card never saved

    reach_decision(session)
    assert minimum.session_decide_minimum(session_id=session.pk) == "called_off"


# --- the decision: runs -----------------------------------------------------------------------


def test_minimum_reached_charges_each_card_once_and_one_needing_authentication_gets_a_hold(
    fake_stripe, django_capture_on_commit_callbacks
):
    session = minimum_session(min_attendees=2)
    visa, mastercard, strong = UserFactory(), UserFactory(), UserFactory()
    paid_one = save_card(fake_stripe, visa, session)
    paid_two = save_card(fake_stripe, mastercard, session, card="pm_card_mastercard", seats=2)
    needs_auth = save_card(fake_stripe, strong, session, card="pm_card_authenticationRequired")
    mail.outbox.clear()
    reach_decision(session)

    with django_capture_on_commit_callbacks(execute=True):
        run_all_periodic_jobs(only=["sessions.decide_minimum"])
    with django_capture_on_commit_callbacks(execute=True):
        # A second beat, and the task delivered again: nothing more happens.
        run_all_periodic_jobs(only=["sessions.decide_minimum"])
        minimum.session_decide_minimum(session_id=session.pk)

    charges = fake_stripe.off_session_charges()
    assert sorted(c["metadata"]["booking_id"] for c in charges) == sorted(
        str(b.pk) for b in (paid_one, paid_two, needs_auth)
    )
    by_booking = {c["metadata"]["booking_id"]: c for c in charges}
    assert by_booking[str(paid_two.pk)]["amount"] == 5000
    for booking in (paid_one, paid_two):
        booking.refresh_from_db()
        assert (booking.status, booking.payment_status) == ("confirmed", "paid")
        assert by_booking[str(booking.pk)]["status"] == "succeeded"
    needs_auth.refresh_from_db()
    assert (needs_auth.status, needs_auth.payment_status) == ("pending", "failed")
    assert timezone.now() < needs_auth.hold_expires_at <= timezone.now() + timedelta(minutes=15)
    assert len(emails_to(strong.email, "Action needed")) == 1
    assert emails_to(visa.email, "Action needed") == []
    session.refresh_from_db()
    assert (session.status, session.decision) == ("published", "runs")
    (creator_mail,) = emails_to(session.creator.email, "Going ahead")
    assert "4 of the minimum 2 seat(s)" in creator_mail.body

    # The user comes back and pays on-session: the same PaymentIntent, now confirmed by them.
    client = auth_client(strong)
    started = client.post(CREATE_URL, {"booking_id": needs_auth.pk})
    assert started.status_code == 200, started.json()
    intent_id = started.json()["payment_intent_id"]
    assert intent_id == by_booking[str(needs_auth.pk)]["id"]
    fake_stripe.succeed(intent_id)
    paid = client.post(CONFIRM_URL, {"payment_intent_id": intent_id})
    assert (paid.json()["status"], paid.json()["payment_status"]) == ("confirmed", "paid")
    assert len(fake_stripe.off_session_charges()) == 3


def test_the_charge_task_run_twice_charges_once(fake_stripe):
    session = minimum_session(min_attendees=1)
    booking = save_card(fake_stripe, UserFactory(), session)
    reach_decision(session)
    minimum.session_decide_minimum(session_id=session.pk)

    # A retry after the first answer was lost: the idempotency key gives the same charge.
    fake_stripe.fail_next("/v1/payment_intents", after_processing=True)
    with pytest.raises(IntegrationUnavailable):
        scheduled_payments.charge_scheduled(booking_id=booking.pk)
    assert scheduled_payments.charge_scheduled(booking_id=booking.pk) == "confirmed"
    assert scheduled_payments.charge_scheduled(booking_id=booking.pk) == "nothing_to_charge"

    assert len(fake_stripe.off_session_charges()) == 1
    keys = {r.idempotency_key for r in fake_stripe.requests_to("POST", "/v1/payment_intents")}
    assert keys == {f"sm-booking-{booking.pk}-offsession-1"}
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")


def test_a_declined_card_at_the_decision_gets_a_hold_and_is_released_when_it_runs_out(
    fake_stripe, django_capture_on_commit_callbacks
):
    session = minimum_session(min_attendees=1)
    user = UserFactory()
    booking = save_card(fake_stripe, user, session, card="pm_card_chargeCustomerFail")
    reach_decision(session)
    with django_capture_on_commit_callbacks(execute=True):
        minimum.session_decide_minimum(session_id=session.pk)
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("pending", "failed")
    assert len(emails_to(user.email, "Action needed")) == 1

    Booking.objects.filter(pk=booking.pk).update(hold_expires_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        run_all_periodic_jobs(only=["bookings.expire"])
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("expired", "failed")
    assert len(fake_stripe.off_session_charges()) == 1


# --- the decision: called off -----------------------------------------------------------------


def test_minimum_not_reached_cancels_charges_nobody_and_releases_every_card(
    fake_stripe, django_capture_on_commit_callbacks
):
    session = minimum_session(min_attendees=4)
    users = [UserFactory(), UserFactory()]
    bookings = [save_card(fake_stripe, user, session) for user in users]
    free_waiting = UserFactory()
    pending_card = booking_create(user=free_waiting, session_id=session.pk)  # never saved
    auth_client(free_waiting).post(CREATE_URL, {"booking_id": pending_card.pk})
    mail.outbox.clear()
    reach_decision(session)

    with django_capture_on_commit_callbacks(execute=True):
        assert minimum.session_decide_minimum(session_id=session.pk) == "called_off"
    with django_capture_on_commit_callbacks(execute=True):
        assert minimum.session_decide_minimum(session_id=session.pk) == "skipped"

    session.refresh_from_db()
    assert (session.status, session.cancel_reason, session.decision) == (
        "cancelled",
        "minimum_not_reached",
        "called_off",
    )
    assert fake_stripe.requests_to("POST", "/v1/payment_intents") == []
    for booking, user in zip(bookings, users, strict=True):
        booking.refresh_from_db()
        assert (booking.status, booking.payment_status) == ("cancelled", "scheduled")
        assert fake_stripe.payment_method(booking.payment_method_id)["customer"] is None
        assert len(emails_to(user.email, "Called off")) == 1
        assert len([m for m in mail.outbox if user.email in m.to]) == 1
    pending_card.refresh_from_db()
    assert pending_card.status == "cancelled"
    assert fake_stripe.setup_intent(pending_card.setup_intent_id)["status"] == "canceled"
    assert len(emails_to(free_waiting.email, "Called off")) == 1
    (creator_mail,) = emails_to(session.creator.email, "Called off")
    assert "Only 2 of the minimum 4 seat(s)" in creator_mail.body


def test_a_booking_cancelled_before_the_decision_is_never_charged(
    fake_stripe, django_capture_on_commit_callbacks
):
    session = minimum_session(min_attendees=1)
    stays, leaves = UserFactory(), UserFactory()
    kept = save_card(fake_stripe, stays, session)
    cancelled = save_card(fake_stripe, leaves, session)

    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=cancelled.pk, actor=leaves)
    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.payment_status, cancelled.refunded_amount) == (
        "cancelled",
        "scheduled",
        Decimal("0.00"),
    )
    assert fake_stripe.payment_method(cancelled.payment_method_id)["customer"] is None

    reach_decision(session)
    with django_capture_on_commit_callbacks(execute=True):
        assert minimum.session_decide_minimum(session_id=session.pk) == "runs"
    charged = [c["metadata"]["booking_id"] for c in fake_stripe.off_session_charges()]
    assert charged == [str(kept.pk)]
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []


def test_a_booking_after_the_decision_follows_the_v1_rules(fake_stripe):
    session = minimum_session(min_attendees=1)
    save_card(fake_stripe, UserFactory(), session)
    reach_decision(session)
    assert minimum.session_decide_minimum(session_id=session.pk) == "runs"
    user = UserFactory()
    booking = booking_create(user=user, session_id=session.pk)

    response = auth_client(user).post(CREATE_URL, {"booking_id": booking.pk})

    assert (booking.status, booking.payment_status) == ("pending", "unpaid")
    assert response.json()["setup_intent_id"] is None
    assert response.json()["payment_intent_id"].startswith("pi_")
    assert [
        r
        for r in fake_stripe.requests_to("POST", "/v1/setup_intents")
        if r.params["metadata[booking_id]"] == str(booking.pk)
    ] == []


def test_the_periodic_job_asks_once_per_due_session():
    due = minimum_session()
    reach_decision(due)
    minimum_session()  # decision ahead
    SessionFactory()  # no minimum

    assert minimum.minimum_decisions_enqueue() == 1
    assert minimum.minimum_decisions_enqueue() == 0
    assert list(OutboxMessage.objects.values_list("effect_key", flat=True)) == [
        f"minimum-decision:session:{due.pk}"
    ]


# --- concurrency (PostgreSQL) -----------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deciders_at_once_decide_once_and_charge_each_booking_once(fake_stripe, monkeypatch):
    session = minimum_session(min_attendees=2)
    bookings = [save_card(fake_stripe, UserFactory(), session) for _ in range(3)]
    reach_decision(session)
    OutboxMessage.objects.all().delete()
    # The tasks the decision asks for wait for the workers below (no inline run on commit).
    monkeypatch.setattr(outbox, "outbox_relay", lambda **kwargs: None)

    results = run_concurrently(
        [lambda: minimum.session_decide_minimum(session_id=session.pk)] * 2, raise_errors=True
    )
    assert sorted(results) == ["runs", "skipped"]
    # Every charge task, run by two workers at once.
    messages = list(OutboxMessage.objects.filter(task=scheduled_payments.CHARGE_TASK))
    assert len(messages) == 3
    tasks = [
        lambda booking_id=m.kwargs["booking_id"]: scheduled_payments.charge_scheduled(
            booking_id=booking_id
        )
        for m in messages
        for _ in range(2)
    ]
    run_concurrently(tasks, raise_errors=True)

    charged = sorted(c["metadata"]["booking_id"] for c in fake_stripe.off_session_charges())
    assert charged == sorted(str(b.pk) for b in bookings)
    for booking in bookings:
        booking.refresh_from_db()
        assert (booking.status, booking.payment_status) == ("confirmed", "paid")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_no_oversell_while_scheduled_bookings_hold_seats(fake_stripe):
    session = minimum_session(min_attendees=2, capacity=3)
    for _ in range(2):
        save_card(fake_stripe, UserFactory(), session)
    # Holds would have run out by now: scheduled seats are held until the decision.
    backdate(Booking.objects.filter(session=session).first(), created_at=timedelta(hours=2))
    users = [UserFactory() for _ in range(4)]

    results = run_concurrently(
        [lambda user=user: booking_create(user=user, session_id=session.pk) for user in users]
    )

    made = [r for r in results if isinstance(r, Booking)]
    assert len(made) == 1
    assert {getattr(r, "code", None) for r in results if not isinstance(r, Booking)} == {"sold_out"}


# --- catalog ----------------------------------------------------------------------------------


def test_catalog_shows_committed_seats_and_filters_by_whether_sessions_run(
    fake_stripe, api_client, django_assert_num_queries
):
    waiting = minimum_session(min_attendees=3)
    save_card(fake_stripe, UserFactory(), waiting, seats=2)
    booking_create(user=UserFactory(), session_id=waiting.pk)  # card not saved: not committed
    reached = minimum_session(min_attendees=1)
    save_card(fake_stripe, UserFactory(), reached)
    always = SessionFactory()

    with django_assert_num_queries(2):  # the total, the page
        pending = api_client.get("/api/sessions/?runs=pending_minimum")
    with django_assert_num_queries(2):
        confirmed = api_client.get("/api/sessions/?runs=confirmed")
    detail = api_client.get(f"/api/sessions/{waiting.pk}/").json()

    assert [s["id"] for s in pending.json()["results"]] == [waiting.pk]
    assert sorted(s["id"] for s in confirmed.json()["results"]) == sorted([reached.pk, always.pk])
    assert (detail["min_attendees"], detail["committed_seats"], detail["seats_to_go"]) == (3, 2, 1)
    assert detail["seats_left"] == 2  # the unsaved card's hold still takes a seat
    assert detail["decision_at"] == waiting.decision_at.isoformat().replace("+00:00", "Z")
    listed = {s["id"]: s for s in confirmed.json()["results"]}
    assert (listed[always.pk]["min_attendees"], listed[always.pk]["seats_to_go"]) == (None, 0)
    assert api_client.get("/api/sessions/?runs=maybe").status_code == 400


def test_the_creator_dashboard_lists_sessions_waiting_for_their_minimum(
    fake_stripe, django_assert_num_queries
):
    waiting = minimum_session(min_attendees=3)
    save_card(fake_stripe, UserFactory(), waiting)
    decided = minimum_session(min_attendees=1, creator=waiting.creator)
    save_card(fake_stripe, UserFactory(), decided)
    reach_decision(decided)
    minimum.session_decide_minimum(session_id=decided.pk)
    SessionFactory(creator=waiting.creator)  # no minimum
    client = auth_client(waiting.creator)

    with django_assert_num_queries(9):  # the user (JWT) and the dashboard's 8
        body = client.get("/api/dashboard/creator/").json()

    assert [
        (s["id"], s["min_attendees"], s["committed_seats"], s["seats_to_go"])
        for s in body["waiting_for_minimum"]
    ] == [(waiting.pk, 3, 1, 2)]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_past_the_check_at_once_still_charge_once(fake_stripe, monkeypatch):
    """Both workers read the booking as scheduled before either calls Stripe (the worst
    interleaving, every time): the idempotency key is what keeps it to one charge."""
    session = minimum_session(min_attendees=1)
    booking = save_card(fake_stripe, UserFactory(), session)
    monkeypatch.setattr(outbox, "outbox_relay", lambda **kwargs: None)
    reach_decision(session)
    minimum.session_decide_minimum(session_id=session.pk)
    wait_after(monkeypatch, payouts, "has_connected_account", parties=2)

    results = run_concurrently(
        [lambda: scheduled_payments.charge_scheduled(booking_id=booking.pk)] * 2,
        raise_errors=True,
    )

    assert sorted(results) == ["already_applied", "confirmed"]
    assert len(fake_stripe.off_session_charges()) == 1
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
