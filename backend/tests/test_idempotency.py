"""`Idempotency-Key` on POST bookings/, payment/create-intent/ and bookings/{id}/cancel/
(CONTRACT.md "Idempotent writes"): the first answer replayed byte for byte without acting
again, another body with the key is 422, keys are per user and expire after 24 h, and two
concurrent requests with one key act once (PostgreSQL)."""

import threading
from datetime import timedelta

import pytest

from backend.models import Booking, BookingEvent, IdempotencyKey
from backend.services import bookings as booking_services
from backend.services import idempotency
from backend.tasks.periodic import PERIODIC_JOBS
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate, in_background, run_concurrently

BOOKINGS = "/api/bookings/"


def post_booking(client, session_id: int, key: str | None, seats: int = 1):
    headers = {} if key is None else {"HTTP_IDEMPOTENCY_KEY": key}
    return client.post(BOOKINGS, {"session": session_id, "seats": seats}, format="json", **headers)


@pytest.mark.django_db
def test_the_same_post_twice_books_once_and_answers_the_same_twice():
    user = UserFactory.create()
    session = SessionFactory.create(price=0)
    client = auth_client(user)
    first = post_booking(client, session.pk, "key-1")
    second = post_booking(client, session.pk, "key-1")
    assert first.status_code == second.status_code == 201
    assert second.content == first.content
    assert second["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert Booking.objects.count() == 1
    assert BookingEvent.objects.count() == 1
    # Without the key the same body acts again (and is refused: one active booking each).
    third = post_booking(client, session.pk, None)
    assert (third.status_code, third.json()["code"]) == (409, "already_booked")


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_422_and_changes_nothing():
    user = UserFactory.create()
    session, other = SessionFactory.create(price=0), SessionFactory.create(price=0)
    client = auth_client(user)
    assert post_booking(client, session.pk, "k").status_code == 201
    response = post_booking(client, other.pk, "k")
    assert response.status_code == 422
    assert response.json()["code"] == "idempotency_key_reused"
    assert list(Booking.objects.values_list("session_id", flat=True)) == [session.pk]
    # On another endpoint the key is another request too.
    booking = Booking.objects.get()
    response = client.post(f"/api/bookings/{booking.pk}/cancel/", HTTP_IDEMPOTENCY_KEY="k")
    assert (response.status_code, response.json()["code"]) == (422, "idempotency_key_reused")
    assert Booking.objects.get().status == "confirmed"


@pytest.mark.django_db
def test_keys_are_per_user():
    session = SessionFactory.create(price=0)
    ana, ben = UserFactory.create(), UserFactory.create()
    first = post_booking(auth_client(ana), session.pk, "shared-key")
    second = post_booking(auth_client(ben), session.pk, "shared-key")
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert second.json()["user"]["id"] == ben.pk
    assert Booking.objects.count() == 2


@pytest.mark.django_db
def test_a_refusal_is_replayed_too():
    session = SessionFactory.create(price=0, capacity=1)
    holder = BookingFactory.create(session=session)
    client = auth_client(UserFactory.create())
    first = post_booking(client, session.pk, "retry-me")
    assert (first.status_code, first.json()["code"]) == (409, "sold_out")
    booking_services.booking_cancel(booking_id=holder.pk, actor=holder.user)
    second = post_booking(client, session.pk, "retry-me")
    assert (second.status_code, second.content) == (409, first.content)
    assert Booking.objects.filter(status="confirmed").count() == 0


@pytest.mark.django_db
def test_a_key_expires_after_24_hours_and_is_pruned():
    user = UserFactory.create()
    session = SessionFactory.create(price=0)
    client = auth_client(user)
    assert post_booking(client, session.pk, "old").status_code == 201
    row = IdempotencyKey.objects.get()
    backdate(row, created_at=timedelta(hours=24, seconds=1))
    again = post_booking(client, session.pk, "old")
    # Acted again: the booking service refused a second active booking.
    assert (again.status_code, again.json()["code"]) == (409, "already_booked")
    assert "Idempotent-Replayed" not in again
    assert Booking.objects.count() == 1
    backdate(IdempotencyKey.objects.get(), created_at=timedelta(hours=25))
    assert PERIODIC_JOBS["idempotency.prune_keys"].function() == 1
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_claim_left_by_a_dead_request_is_taken_over_only_after_abandoned_after(settings):
    """A worker killed mid-request leaves its claim `in_progress` with no answer: repeats are
    409 until ABANDONED_AFTER, then the next one acts (once)."""
    settings.IDEMPOTENCY_WAIT_SECONDS = 0
    user = UserFactory.create()
    session = SessionFactory.create(price=0)
    dead = IdempotencyKey.objects.create(
        user=user,
        key="dead",
        request_hash=idempotency.request_fingerprint(
            method="POST", path=BOOKINGS, data={"session": session.pk, "seats": 1}
        ),
    )
    backdate(dead, created_at=idempotency.ABANDONED_AFTER - timedelta(seconds=5))
    client = auth_client(user)
    still_running = post_booking(client, session.pk, "dead")
    assert (still_running.status_code, still_running.json()["code"]) == (
        409,
        "idempotency_key_in_use",
    )
    assert not Booking.objects.exists()

    backdate(dead, created_at=idempotency.ABANDONED_AFTER + timedelta(seconds=5))
    taken_over = post_booking(client, session.pk, "dead")
    assert taken_over.status_code == 201
    assert "Idempotent-Replayed" not in taken_over
    assert Booking.objects.count() == 1
    assert IdempotencyKey.objects.get(key="dead").status == "done"
    assert post_booking(client, session.pk, "dead").content == taken_over.content


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_bad_key_is_400_and_books_nothing(key):
    session = SessionFactory.create(price=0)
    response = post_booking(auth_client(UserFactory.create()), session.pk, key)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_idempotency_key"
    assert not Booking.objects.exists()
    assert not IdempotencyKey.objects.exists()


@pytest.mark.django_db
def test_a_255_character_key_works():
    session = SessionFactory.create(price=0)
    client = auth_client(UserFactory.create())
    assert post_booking(client, session.pk, "k" * 255).status_code == 201
    assert post_booking(client, session.pk, "k" * 255)["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_cancel_with_a_key_twice_cancels_once(mailoutbox):
    booking = BookingFactory.create(session=SessionFactory.create(price=0))
    client = auth_client(booking.user)
    url = f"/api/bookings/{booking.pk}/cancel/"
    first = client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-1")
    second = client.post(url, HTTP_IDEMPOTENCY_KEY="cancel-1")
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert first.json()["status"] == "cancelled"
    assert BookingEvent.objects.filter(booking=booking, to_status="cancelled").count() == 1
    # Without the key a repeat is refused (already cancelled), not replayed.
    assert client.post(url).json()["code"] == "not_active"


@pytest.mark.django_db
def test_create_intent_with_a_key_twice_calls_stripe_once(fake_stripe):
    user = UserFactory.create()
    booking = booking_services.booking_create(
        user=user, session_id=SessionFactory.create(price="20.00").pk
    )
    client = auth_client(user)
    first = client.post(
        "/api/payment/create-intent/",
        {"booking_id": booking.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="pay-1",
    )
    second = client.post(
        "/api/payment/create-intent/",
        {"booking_id": booking.pk},
        format="json",
        HTTP_IDEMPOTENCY_KEY="pay-1",
    )
    assert first.status_code == second.status_code == 200
    assert second.content == first.content
    assert len(fake_stripe.requests_to("POST", "/v1/payment_intents")) == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_with_one_key_book_once_and_answer_the_same():
    user = UserFactory.create()
    session = SessionFactory.create(price=0, capacity=50)
    clients = [auth_client(user) for _ in range(6)]

    def task(client):
        return lambda: post_booking(client, session.pk, "same-key")

    responses = run_concurrently([task(client) for client in clients], lock_timeout="30s")
    assert all(not isinstance(r, BaseException) for r in responses), responses
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert Booking.objects.count() == 1
    assert sum(r.get("Idempotent-Replayed") == "true" for r in responses) == 5


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_repeat_during_the_first_request_waits_for_its_answer(monkeypatch):
    """Deterministic interleaving: the first request is held inside booking_create until the
    repeat is seen waiting for the key; then both finish with one booking and one body."""
    user = UserFactory.create()
    session = SessionFactory.create(price=0)
    release_first = threading.Event()
    repeat_is_waiting = threading.Event()
    real_create = booking_services.booking_create
    real_sleep = idempotency.time.sleep

    def held_create(**kwargs):
        assert release_first.wait(30)
        return real_create(**kwargs)

    def noting_sleep(seconds):
        repeat_is_waiting.set()
        real_sleep(seconds)

    monkeypatch.setattr(booking_services, "booking_create", held_create)
    monkeypatch.setattr(idempotency.time, "sleep", noting_sleep)
    first = in_background(lambda: post_booking(auth_client(user), session.pk, "held"))
    claimed = IdempotencyKey.objects.filter(key="held")
    repeat = in_background(lambda: post_booking(auth_client(user), session.pk, "held"))
    assert repeat_is_waiting.wait(30)
    assert claimed.get().status == "in_progress"
    assert not Booking.objects.exists()
    release_first.set()
    first_response, repeat_response = first.result(), repeat.result()
    assert first_response.status_code == repeat_response.status_code == 201
    assert repeat_response.content == first_response.content
    # Whichever claimed the key first acted; the other replayed its answer.
    replayed = [r.get("Idempotent-Replayed") for r in (first_response, repeat_response)]
    assert replayed.count("true") == 1
    assert Booking.objects.count() == 1
