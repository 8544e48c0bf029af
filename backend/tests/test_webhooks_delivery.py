"""Outgoing webhooks end to end, against a real HTTP receiver on loopback (allowed by
WEBHOOK_ALLOW_PRIVATE_TARGETS in these tests): each event once, signed (checked with the
README's own Python and JavaScript snippets), in the order of the changes of a booking; retries
with growing gaps while the receiver fails; 410 switches the subscription off; the log.

Tasks run inline (no broker, as in `make run`); a retry is made due by moving its outbox row's
`available_at` into the past, then the sweep runs it (no sleeping, no timed assertions).
"""

import json
from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from backend.models import (
    Booking,
    OutboxMessage,
    Session,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from backend.models.webhooks import EVENT_TYPES
from backend.services import catalog, webhooks
from backend.services.bookings import booking_cancel
from backend.services.outbox import outbox_sweep
from backend.tasks.periodic import PERIODIC_JOBS
from backend.tests.factories import CreatorFactory, SessionFactory, UserFactory
from backend.tests.payments_support import book, pay
from backend.tests.payouts_support import connected
from backend.tests.reviews_support import attended_booking, review_of
from backend.tests.support import auth_client, backdate
from backend.tests.webhook_support import Receiver, Reply, node_verifies, python_verifier

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _private_targets_allowed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.stop()


def subscribe(owner, url: str, events=EVENT_TYPES) -> dict:
    response = auth_client(owner).post(
        "/api/webhooks/", {"url": url, "events": list(events)}, format="json"
    )
    assert response.status_code == 201, response.content
    return response.json()


def payloads(receiver: Receiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.received]


def make_due_and_sweep(capture) -> int:
    """Every waiting retry becomes due now; the sweep runs them (inline)."""
    OutboxMessage.objects.filter(status="pending").update(available_at=timezone.now())
    with capture(execute=True):
        return outbox_sweep()


def test_each_event_reaches_the_receiver_once_signed_and_in_order(
    receiver, fake_stripe, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    connected(creator, fake_stripe)  # a paid session is published only with payouts set up
    subscription = subscribe(creator, receiver.url)
    assert subscription["secret"].startswith("whsec_")
    attendee = UserFactory.create()
    draft = SessionFactory.create(creator=creator, status=Session.Status.DRAFT)
    with django_capture_on_commit_callbacks(execute=True):
        catalog.session_update(session_id=draft.pk, actor=creator, data={"status": "published"})
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(attendee, draft)  # paid: pending
    with django_capture_on_commit_callbacks(execute=True):
        pay(fake_stripe, attendee, booking)  # confirmed
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=creator)  # cancelled, then refunded
    with django_capture_on_commit_callbacks(execute=True):
        catalog.session_update(session_id=draft.pk, actor=creator, data={"status": "cancelled"})
    with django_capture_on_commit_callbacks(execute=True):
        review_of(
            attended_booking(
                session=SessionFactory.create(
                    creator=creator, start_time=timezone.now() - timedelta(hours=3)
                )
            ),
            5,
            "Great",
        )

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "refunded")
    received = payloads(receiver)
    assert [p["type"] for p in received] == [
        "session.published",
        "booking.created",
        "booking.confirmed",
        "booking.cancelled",
        "booking.refunded",
        "session.cancelled",
        "review.created",
    ]
    # Exactly once: one request per event id, and a sweep afterwards sends nothing more.
    assert make_due_and_sweep(django_capture_on_commit_callbacks) == 0
    assert len(receiver.received) == 7
    assert Counter(r.headers["Webhook-Id"] for r in receiver.received).most_common(1)[0][1] == 1
    verify = python_verifier()
    for request, payload in zip(receiver.received, received, strict=True):
        assert request.headers["Webhook-Id"] == payload["id"]
        assert request.headers["Content-Type"] == "application/json"
        assert verify(subscription["secret"], request.headers["Webhook-Signature"], request.body)
        assert not verify("whsec_wrong", request.headers["Webhook-Signature"], request.body)
    booking_states = [
        (p["data"]["booking"]["status"], p["data"]["booking"]["payment_status"])
        for p in received
        if p["type"].startswith("booking.")
    ]
    assert booking_states == [
        ("pending", "unpaid"),
        ("confirmed", "paid"),
        ("cancelled", "paid"),
        ("cancelled", "refunded"),
    ]
    assert received[1]["data"]["booking"]["id"] == booking.pk
    assert received[1]["data"]["booking"]["user"] == {
        "id": attendee.pk,
        "username": attendee.username,
    }
    first = receiver.received[0]
    node_says = node_verifies(
        subscription["secret"], first.headers["Webhook-Signature"], first.body
    )
    if node_says is not None:
        assert node_says is True
        assert node_verifies("whsec_wrong", first.headers["Webhook-Signature"], first.body) is False
    deliveries = WebhookDelivery.objects.filter(subscription_id=subscription["id"])
    assert sorted(set(deliveries.values_list("status", "attempts", "response_status"))) == [
        ("delivered", 1, 200)
    ]


def test_a_creator_hears_only_of_their_own_sessions_staff_of_all(
    receiver, django_capture_on_commit_callbacks
):
    mine, other = CreatorFactory.create(), CreatorFactory.create()
    staff = UserFactory.create(is_staff=True)
    other_receiver = Receiver()
    try:
        subscribe(mine, receiver.url, ["booking.created", "booking.confirmed"])
        subscribe(other, other_receiver.url)
        staff_receiver = Receiver()
        try:
            subscribe(staff, staff_receiver.url, ["booking.created"])
            session = SessionFactory.create(creator=mine, price=0)
            with django_capture_on_commit_callbacks(execute=True):
                book(UserFactory.create(), session)
            assert [p["type"] for p in payloads(receiver)] == [
                "booking.created",
                "booking.confirmed",
            ]
            assert [p["type"] for p in payloads(staff_receiver)] == ["booking.created"]
            assert other_receiver.received == []
        finally:
            staff_receiver.stop()
    finally:
        other_receiver.stop()


def test_nothing_is_recorded_or_sent_for_a_refused_change(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscribe(creator, receiver.url)
    session = SessionFactory.create(creator=creator, price=0, capacity=1)
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), session)
    sent = len(receiver.received)
    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client(UserFactory.create()).post(
            "/api/bookings/", {"session": session.pk}, format="json"
        )
    assert response.status_code == 409
    assert len(receiver.received) == sent == 2
    assert WebhookEvent.objects.count() == 2
    assert Booking.objects.count() == 1


def test_a_failing_receiver_is_retried_with_growing_gaps_and_gets_the_event_once(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscribe(creator, receiver.url, ["booking.created"])
    receiver.script(*[Reply(status=503, body=b"down for maintenance")] * 4)
    session = SessionFactory.create(creator=creator)
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), session)
    delivery = WebhookDelivery.objects.get()
    gaps = []
    for attempt in range(1, 5):
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts, delivery.response_status) == (
            "pending",
            attempt,
            503,
        )
        assert delivery.response_body == "down for maintenance"
        gaps.append((delivery.next_attempt_at - delivery.last_attempt_at).total_seconds())
        make_due_and_sweep(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("delivered", 5, 200)
    assert delivery.delivered_at is not None
    # Doubling with a jitter factor in [0.5, 1]: never shorter than the gap before.
    assert gaps == sorted(gaps)
    assert gaps[-1] > gaps[0]
    assert 15 <= gaps[0] <= 30
    # Five requests, all the same event; only the last was answered 2xx. Nothing after it.
    assert {r.headers["Webhook-Id"] for r in receiver.received} == {delivery.event.public_id}
    assert make_due_and_sweep(django_capture_on_commit_callbacks) == 0
    assert len(receiver.received) == 5


def test_a_receiver_that_is_down_gets_the_event_once_it_is_back(
    django_capture_on_commit_callbacks,
):
    receiver = Receiver()
    port, url = receiver.port, receiver.url
    creator = CreatorFactory.create()
    subscribe(creator, url, ["booking.created"])
    receiver.stop()  # connection refused from now on
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    make_due_and_sweep(django_capture_on_commit_callbacks)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("pending", 2, None)
    assert "Connection" in delivery.error or "refused" in delivery.error.lower()
    back = Receiver(port=port)
    try:
        make_due_and_sweep(django_capture_on_commit_callbacks)
        make_due_and_sweep(django_capture_on_commit_callbacks)
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("delivered", 3)
        assert len(back.received) == 1
    finally:
        back.stop()


def test_the_events_of_one_booking_keep_their_order_across_retries(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscribe(creator, receiver.url, ["booking.created", "booking.confirmed", "booking.cancelled"])
    receiver.script(Reply(status=500), Reply(status=500))
    attendee = UserFactory.create()
    with django_capture_on_commit_callbacks(execute=True):
        booking = book(attendee, SessionFactory.create(creator=creator, price=0))
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=attendee)
    # booking.created failed once; confirmed and cancelled waited behind it, unsent.
    assert [p["type"] for p in payloads(receiver)] == ["booking.created"]
    for _ in range(4):
        make_due_and_sweep(django_capture_on_commit_callbacks)
    types = [p["type"] for p in payloads(receiver)]
    assert types == [
        "booking.created",
        "booking.created",
        "booking.created",
        "booking.confirmed",
        "booking.cancelled",
    ]
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_410_switches_the_subscription_off_and_emails_its_owner(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create(email="crm-owner@example.com")
    subscription = subscribe(creator, receiver.url, ["booking.created", "booking.confirmed"])
    receiver.script(Reply(status=410, body=b"gone"))
    session = SessionFactory.create(creator=creator, price=0)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), session)
    row = WebhookSubscription.objects.get(pk=subscription["id"])
    assert (row.is_active, row.disabled_reason) == (False, "the receiver answered 410 Gone")
    statuses = dict(
        WebhookDelivery.objects.values_list("event__type", "status").order_by("event__type")
    )
    assert statuses == {"booking.created": "failed", "booking.confirmed": "cancelled"}
    owner_mails = [m for m in mail.outbox if "webhook" in m.subject]
    assert len(owner_mails) == 1
    assert owner_mails[0].to == ["crm-owner@example.com"]
    assert "switched off" in owner_mails[0].subject
    assert receiver.url in owner_mails[0].body
    # Nothing more is sent, retried or queued for it.
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), session)
    make_due_and_sweep(django_capture_on_commit_callbacks)
    assert len(receiver.received) == 1
    assert WebhookDelivery.objects.count() == 2
    # The owner switches it back on: events flow again.
    response = auth_client(creator).patch(
        f"/api/webhooks/{row.pk}/", {"is_active": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_active"] is True
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), session)
    assert [p["type"] for p in payloads(receiver)][1:] == ["booking.created", "booking.confirmed"]


def test_a_delivery_is_given_up_after_the_retry_window(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscribe(creator, receiver.url, ["booking.created"])
    receiver.script(Reply(status=500), Reply(status=500))
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    delivery = WebhookDelivery.objects.get()
    backdate(delivery, created_at=timedelta(hours=72) - timedelta(seconds=5))
    make_due_and_sweep(django_capture_on_commit_callbacks)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert delivery.error == "gave up: HTTP 500"
    assert make_due_and_sweep(django_capture_on_commit_callbacks) == 0
    assert len(receiver.received) == 2


def test_redirects_are_not_followed_and_the_body_is_cut(
    receiver, django_capture_on_commit_callbacks
):
    elsewhere = Receiver()
    try:
        creator = CreatorFactory.create()
        subscribe(creator, receiver.url, ["booking.created"])
        receiver.script(Reply(status=302, body=b"x" * 5000, headers={"Location": elsewhere.url}))
        with django_capture_on_commit_callbacks(execute=True):
            book(UserFactory.create(), SessionFactory.create(creator=creator))
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.response_status) == ("pending", 302)
        assert delivery.response_body == "x" * 1024
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_ping_and_the_delivery_log(
    receiver, django_capture_on_commit_callbacks, django_assert_num_queries
):
    creator = CreatorFactory.create()
    subscription = subscribe(creator, receiver.url, ["booking.created"])
    client = auth_client(creator)
    receiver.script(Reply(status=500, body=b"oops"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/webhooks/{subscription['id']}/ping/")
    assert response.status_code == 202
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/webhooks/{subscription['id']}/ping/")
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            book(UserFactory.create(), SessionFactory.create(creator=creator))
    assert [p["type"] for p in payloads(receiver)] == ["ping", "ping"] + ["booking.created"] * 3
    # A fixed number of queries whatever the page holds: user, subscription, count, page.
    with django_assert_num_queries(4):
        response = client.get(f"/api/webhooks/{subscription['id']}/deliveries/")
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 5
    oldest = body["results"][-1]
    assert (oldest["event_type"], oldest["status"], oldest["attempts"]) == ("ping", "pending", 1)
    assert (oldest["response_status"], oldest["response_body"]) == (500, "oops")
    assert oldest["response_time_ms"] is not None
    assert body["results"][0]["status"] == "delivered"
    with django_assert_num_queries(3):
        response = client.get("/api/webhooks/")
    assert [s["id"] for s in response.json()["results"]] == [subscription["id"]]
    assert "secret" not in response.json()["results"][0]
    # Someone else's subscription does not exist for them.
    other = auth_client(CreatorFactory.create())
    assert other.get(f"/api/webhooks/{subscription['id']}/deliveries/").status_code == 404
    assert other.post(f"/api/webhooks/{subscription['id']}/ping/").status_code == 404
    assert other.delete(f"/api/webhooks/{subscription['id']}/").status_code == 404
    assert WebhookSubscription.objects.filter(pk=subscription["id"]).exists()


def test_the_log_is_pruned_after_30_days():
    creator = CreatorFactory.create()
    subscription = WebhookSubscription.objects.create(
        owner=creator, url="https://hooks.example.com/x", events=["booking.created"], secret="s"
    )
    old_event = WebhookEvent.objects.create(public_id="evt_old", type="booking.created")
    new_event = WebhookEvent.objects.create(public_id="evt_new", type="booking.created")
    old = WebhookDelivery.objects.create(
        event=old_event, subscription=subscription, status="delivered"
    )
    new = WebhookDelivery.objects.create(
        event=new_event, subscription=subscription, status="failed"
    )
    backdate(old, created_at=timedelta(days=31))
    backdate(old_event, created_at=timedelta(days=31))
    backdate(new, created_at=timedelta(days=29))
    assert "webhooks.prune_log" in PERIODIC_JOBS
    assert PERIODIC_JOBS["webhooks.prune_log"].function() == 1
    assert list(WebhookDelivery.objects.values_list("pk", flat=True)) == [new.pk]
    assert list(WebhookEvent.objects.values_list("public_id", flat=True)) == ["evt_new"]


def test_retry_delays_double_with_jitter_up_to_the_cap(settings):
    settings.WEBHOOK_RETRY_BASE_SECONDS = 30
    settings.WEBHOOK_RETRY_MAX_SECONDS = 6 * 3600
    for attempts, ceiling in [(1, 30), (2, 60), (5, 480), (12, 6 * 3600), (40, 6 * 3600)]:
        for _ in range(20):
            seconds = webhooks.retry_delay(attempts).total_seconds()
            assert ceiling / 2 <= seconds <= ceiling


def test_the_export_lists_webhooks_without_secrets_and_deleting_the_account_removes_them(
    receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscription = subscribe(creator, receiver.url, ["booking.created"])
    client = auth_client(creator)
    exported = client.get("/api/users/me/export/").json()["webhooks"]
    assert exported == [
        {
            "id": subscription["id"],
            "url": receiver.url,
            "events": ["booking.created"],
            "description": "",
            "is_active": True,
            "created_at": subscription["created_at"],
        }
    ]
    assert subscription["secret"] not in json.dumps(exported)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.delete("/api/users/me/").status_code == 204
    assert not WebhookSubscription.objects.exists()
    assert receiver.received == []


def test_staff_read_subscriptions_and_the_log_in_the_admin_without_the_secret(
    admin_client, receiver, django_capture_on_commit_callbacks
):
    creator = CreatorFactory.create()
    subscription = subscribe(creator, receiver.url, ["booking.created"])
    with django_capture_on_commit_callbacks(execute=True):
        book(UserFactory.create(), SessionFactory.create(creator=creator))
    page = admin_client.get("/admin/backend/webhookdelivery/")
    assert page.status_code == 200
    assert b"delivered" in page.content
    detail = admin_client.get(f"/admin/backend/webhooksubscription/{subscription['id']}/change/")
    assert detail.status_code == 200
    assert receiver.url.encode() in detail.content
    assert subscription["secret"].encode() not in detail.content


def test_only_creators_and_staff_subscribe_and_bad_input_is_400(receiver):
    response = auth_client(UserFactory.create()).post(
        "/api/webhooks/", {"url": receiver.url, "events": ["booking.created"]}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    creator = auth_client(CreatorFactory.create())
    for body in [
        {"url": receiver.url, "events": []},
        {"url": receiver.url, "events": ["booking.exploded"]},
        {"url": "not a url", "events": ["booking.created"]},
        {"events": ["booking.created"]},
    ]:
        response = creator.post("/api/webhooks/", body, format="json")
        assert (response.status_code, response.json()["code"]) == (400, "invalid"), body
    assert not WebhookSubscription.objects.exists()
    # Listing is one's own subscriptions: none for a plain user.
    listing = auth_client(UserFactory.create()).get("/api/webhooks/")
    assert (listing.status_code, listing.json()["count"]) == (200, 0)
