"""Transfers of the creator's share after the session (issue 16), counted at the stand-in.

The periodic job (`payouts_schedule_due`) writes a Transfer row and an outbox message per due
booking; the task (`transfer_send`) calls Stripe. Tests run the task inline through
`django_capture_on_commit_callbacks(execute=True)`, or call the outbox by hand.
"""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from backend.exceptions import Conflict
from backend.integrations import stripe_connect
from backend.models import OutboxMessage, Payment, Transfer
from backend.services import payouts
from backend.services.bookings import booking_cancel
from backend.services.outbox import outbox_execute
from backend.services.payouts import payouts_schedule_due, transfer_retry, transfer_send
from backend.tasks.periodic import PERIODIC_JOBS
from backend.tests.factories import CreatorFactory, UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import deliver
from backend.tests.payouts_support import (
    TRANSFERS_URL,
    connected,
    end_session,
    ended_paid_booking,
)
from backend.tests.support import auth_client, in_background, run_concurrently, wait_after

pytestmark = pytest.mark.django_db


def run_payout_job(capture) -> int:
    with capture(execute=True):
        return payouts_schedule_due()


def test_a_session_that_ended_25_hours_ago_is_transferred_exactly_once(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    account = connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator, seats=2)
    assert (booking.amount, booking.platform_fee) == (Decimal("200.00"), Decimal("20.00"))
    (intent_call,) = fake_stripe.requests_to("POST", "/v1/payment_intents")
    assert intent_call.params["transfer_group"] == f"booking-{booking.pk}"

    assert run_payout_job(django_capture_on_commit_callbacks) == 1

    (sent,) = fake_stripe.requests_to("POST", "/v1/transfers")
    charge_id = fake_stripe.intent(intent_id)["latest_charge"]
    assert sent.params == {
        "amount": "18000",
        "currency": "usd",
        "destination": account.stripe_account_id,
        "source_transaction": charge_id,
        "transfer_group": f"booking-{booking.pk}",
        "metadata[booking_id]": str(booking.pk),
        "metadata[transfer_id]": str(booking.transfer.pk),
    }
    assert sent.idempotency_key == f"sm-transfer-booking-{booking.pk}"
    (at_stripe,) = fake_stripe.transfers_to(account.stripe_account_id)
    transfer = Transfer.objects.get(booking=booking)
    assert (transfer.status, transfer.stripe_transfer_id, transfer.amount, transfer.fee) == (
        "paid",
        at_stripe["id"],
        Decimal("180.00"),
        Decimal("20.00"),
    )
    assert transfer.amount + transfer.fee == booking.amount

    # The job runs every few minutes, and the periodic registry knows it.
    assert "payouts.schedule" in PERIODIC_JOBS
    assert run_payout_job(django_capture_on_commit_callbacks) == 0
    assert fake_stripe.transfer_count == 1


def test_nothing_is_transferred_before_the_payout_delay(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    ended_paid_booking(fake_stripe, user, creator, hours_ago=23)

    assert run_payout_job(django_capture_on_commit_callbacks) == 0
    assert fake_stripe.transfer_count == 0
    assert not Transfer.objects.exists()

    # Two hours later it is due.
    assert payouts_schedule_due(now=timezone.now() + timedelta(hours=2)) == 1


def test_no_account_no_transfer_until_onboarded(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    ended_paid_booking(fake_stripe, user, creator)
    assert run_payout_job(django_capture_on_commit_callbacks) == 0
    connected(creator, fake_stripe)
    assert run_payout_job(django_capture_on_commit_callbacks) == 1
    assert fake_stripe.transfer_count == 1


def test_cancelled_refunded_or_disputed_bookings_are_never_transferred(
    fake_stripe, api_client, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    users = UserFactory.create_batch(3)
    cancelled, _ = ended_paid_booking(fake_stripe, users[0], creator, hours_ago=-48)
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=cancelled.pk, actor=creator)  # refunded through the outbox
    refunded_by_stripe, intent_refunded = ended_paid_booking(fake_stripe, users[1], creator)
    deliver(
        api_client,
        *FakeStripe.signed_event("charge.refunded", fake_stripe.charge_for(intent_refunded)),
    )
    disputed, intent_disputed = ended_paid_booking(fake_stripe, users[2], creator)
    deliver(
        api_client,
        *FakeStripe.signed_event(
            "charge.dispute.created", fake_stripe.dispute_for(intent_disputed)
        ),
    )
    # The cancelled one's session has ended too, by now.
    end_session(cancelled.session, hours_ago=25)

    assert run_payout_job(django_capture_on_commit_callbacks) == 0
    assert fake_stripe.transfer_count == 0
    assert not Transfer.objects.exists()
    for booking in (cancelled, refunded_by_stripe, disputed):
        booking.refresh_from_db()
    statuses = {
        b.pk: (b.status, b.payment_status) for b in (cancelled, refunded_by_stripe, disputed)
    }
    assert statuses == {
        cancelled.pk: ("cancelled", "refunded"),
        refunded_by_stripe.pk: ("cancelled", "refunded"),
        disputed.pk: ("confirmed", "disputed"),
    }


def test_a_booking_refunded_after_scheduling_is_not_sent(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, user, creator)
    # Scheduled (row + message committed), the task not run yet ...
    assert payouts_schedule_due() == 1
    # ... then staff refund it.
    with django_capture_on_commit_callbacks(execute=True):
        booking_cancel(booking_id=booking.pk, actor=creator)
    message = OutboxMessage.objects.get(effect_key=f"transfer:booking:{booking.pk}")
    assert outbox_execute(message_id=message.pk) == "done"

    assert fake_stripe.transfer_count == 0
    assert Transfer.objects.get(booking=booking).status == "cancelled"


def test_stripe_failing_during_the_payout_task_is_retried_and_sends_once(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, user, creator)
    fake_stripe.fail_next("/v1/transfers", status=500)

    run_payout_job(django_capture_on_commit_callbacks)

    message = OutboxMessage.objects.get(effect_key=f"transfer:booking:{booking.pk}")
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.available_at > timezone.now()
    assert fake_stripe.transfer_count == 0
    assert Transfer.objects.get(booking=booking).status == "pending"  # nothing lost

    # Stripe makes the transfer but the answer is lost (a timeout after processing) ...
    fake_stripe.delay_next("/v1/transfers", 1.0, after_processing=True)
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    assert outbox_execute(message_id=message.pk) == "retry"
    assert fake_stripe.transfer_count == 1
    assert Transfer.objects.get(booking=booking).stripe_transfer_id is None

    # ... and the next retry gets Stripe's first transfer back: still one.
    OutboxMessage.objects.filter(pk=message.pk).update(available_at=timezone.now())
    assert outbox_execute(message_id=message.pk) == "done"
    calls = fake_stripe.requests_to("POST", "/v1/transfers")
    assert len(calls) == 2  # the 500 failed before the stand-in processed (or recorded) it
    assert {c.idempotency_key for c in calls} == {f"sm-transfer-booking-{booking.pk}"}
    assert fake_stripe.transfer_count == 1
    (only,) = fake_stripe.state.transfers
    transfer = Transfer.objects.get(booking=booking)
    assert (transfer.status, transfer.stripe_transfer_id) == ("paid", only)
    # The job running again meanwhile asks for nothing more.
    assert run_payout_job(django_capture_on_commit_callbacks) == 0


def test_stripe_refusing_the_transfer_is_left_to_staff_who_retry_it(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, user, creator)
    fake_stripe.fail_next(
        "/v1/transfers", status=400, error_type="invalid_request_error", message="No."
    )

    run_payout_job(django_capture_on_commit_callbacks)

    transfer = Transfer.objects.get(booking=booking)
    assert transfer.status == "failed"
    assert OutboxMessage.objects.get(effect_key=f"transfer:booking:{booking.pk}").status == (
        "failed"
    )
    assert fake_stripe.transfer_count == 0

    with django_capture_on_commit_callbacks(execute=True):
        transfer_retry(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == "paid"
    assert fake_stripe.transfer_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_payout_job_at_once_transfer_once(fake_stripe):
    creator = CreatorFactory()
    connected(creator, fake_stripe)
    bookings = [ended_paid_booking(fake_stripe, u, creator)[0] for u in UserFactory.create_batch(3)]

    # Two beat processes (or a retry) run the job at the same moment; each task runs inline
    # right after its job's commit.
    results = run_concurrently([payouts_schedule_due, payouts_schedule_due], raise_errors=True)

    assert sum(results) == 3
    assert fake_stripe.transfer_count == 3
    assert sorted(t["metadata"]["booking_id"] for t in fake_stripe.state.transfers.values()) == (
        sorted(str(b.pk) for b in bookings)
    )
    assert Transfer.objects.filter(status="paid").count() == 3


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_transfer_task_run_twice_at_once_transfers_once(fake_stripe, monkeypatch):
    creator = CreatorFactory()
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, UserFactory(), creator)
    monkeypatch.setattr(payouts, "outbox_enqueue", lambda **kwargs: None)  # no inline run
    payouts_schedule_due()
    transfer = Transfer.objects.get(booking=booking)
    # Both deliveries have Stripe's answer before either records it.
    wait_after(monkeypatch, stripe_connect, "create_transfer", parties=2)

    run_concurrently([lambda: transfer_send(transfer_id=transfer.pk)] * 2, raise_errors=True)

    assert len(fake_stripe.requests_to("POST", "/v1/transfers")) == 2
    assert fake_stripe.transfer_count == 1
    transfer.refresh_from_db()
    assert (transfer.status, transfer.stripe_transfer_id) == (
        "paid",
        next(iter(fake_stripe.state.transfers)),
    )


def test_transfers_list_is_the_creators_own_in_fixed_queries(
    fake_stripe, creator, django_capture_on_commit_callbacks, django_assert_num_queries
):
    connected(creator, fake_stripe)
    other = CreatorFactory()
    connected(other, fake_stripe)
    mine = [ended_paid_booking(fake_stripe, u, creator)[0] for u in UserFactory.create_batch(2)]
    ended_paid_booking(fake_stripe, UserFactory(), other)
    run_payout_job(django_capture_on_commit_callbacks)
    client = auth_client(creator)

    # The JWT user, the count, the page: however many transfers.
    with django_assert_num_queries(3):
        response = client.get(TRANSFERS_URL)

    body = response.json()
    assert body["count"] == 2
    assert [t["booking"] for t in body["results"]] == [b.pk for b in reversed(mine)]
    first = body["results"][0]
    assert set(first) == {
        "id",
        "booking",
        "amount",
        "currency",
        "fee",
        "status",
        "reversed_amount",
        "created_at",
        "transferred_at",
    }
    assert (first["amount"], first["fee"], first["currency"], first["status"]) == (
        "90.00",
        "10.00",
        "USD",
        "paid",
    )
    for u in UserFactory.create_batch(3):
        ended_paid_booking(fake_stripe, u, creator)
    run_payout_job(django_capture_on_commit_callbacks)
    with django_assert_num_queries(3):
        assert client.get(TRANSFERS_URL).json()["count"] == 5
    assert auth_client(UserFactory()).get(TRANSFERS_URL).status_code == 403


# --- refunds after the transfer ----------------------------------------------------------------


def test_refund_after_transfer_reverses_in_proportion_and_dashboards_match(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    account = connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator, price=Decimal("99.99"))
    run_payout_job(django_capture_on_commit_callbacks)
    transfer = Transfer.objects.get(booking=booking)
    assert (transfer.amount, transfer.fee) == (Decimal("89.99"), Decimal("10.00"))

    # Stripe's dashboard refunds half (4999 of 9999 cents): charge.refunded, partial.
    partial = fake_stripe.charge_for(intent_id, refunded=False)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(api_client, *FakeStripe.signed_event("charge.refunded", partial)).json()[
            "outcome"
        ] == ("partially_refunded")
    # 50.00 left: fee 10.00 * 5000 / 9999 = 5.0005 -> 5.00, share 45.00; 89.99 - 45.00 back.
    ((_, at_stripe),) = fake_stripe.state.transfers.items()
    (reversal,) = at_stripe["reversals"]["data"]
    assert reversal["amount"] == 4499
    transfer.refresh_from_db()
    assert transfer.reversed_amount == Decimal("44.99")
    assert transfer.reversals.get().amount == Decimal("44.99")

    stats = auth_client(creator).get("/api/dashboard/creator/").json()["stats"]
    assert stats["revenue"] == [{"currency": "USD", "amount": "50.00"}]
    assert stats["earnings"] == {
        "pending": [{"currency": "USD", "amount": "0.00"}],
        "transferred": [{"currency": "USD", "amount": "45.00"}],
    }
    assert stats["platform_fees"] == [{"currency": "USD", "amount": "5.00"}]
    listed = auth_client(creator).get(TRANSFERS_URL).json()["results"][0]
    assert (listed["amount"], listed["reversed_amount"]) == ("89.99", "44.99")

    # The same event again: no second reversal. Then the rest is refunded: the rest goes back.
    with django_capture_on_commit_callbacks(execute=True):
        deliver(api_client, *FakeStripe.signed_event("charge.refunded", partial))
    assert len(fake_stripe.requests_to("POST", f"/v1/transfers/{at_stripe['id']}/reversals")) == 1
    full = fake_stripe.charge_for(intent_id, refunded=True)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(api_client, *FakeStripe.signed_event("charge.refunded", full))
    at_stripe = fake_stripe.transfer(at_stripe["id"])
    assert [r["amount"] for r in at_stripe["reversals"]["data"]] == [4499, 4500]
    assert at_stripe["reversed"] is True
    transfer.refresh_from_db()
    assert transfer.reversed_amount == transfer.amount
    stats = auth_client(creator).get("/api/dashboard/creator/").json()["stats"]
    assert stats["revenue"] == [{"currency": "USD", "amount": "0.00"}]
    assert stats["earnings"]["transferred"] == [{"currency": "USD", "amount": "0.00"}]
    assert fake_stripe.transfers_to(account.stripe_account_id)[0]["amount_reversed"] == 8999


def test_partial_refund_before_the_transfer_sends_the_reduced_share(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator, price=Decimal("100.00"))
    partial = fake_stripe.charge_for(intent_id, refunded=False)  # 50.00 back
    deliver(api_client, *FakeStripe.signed_event("charge.refunded", partial))
    assert Payment.objects.filter(booking=booking, kind="refund").count() == 1

    run_payout_job(django_capture_on_commit_callbacks)

    (sent,) = fake_stripe.state.transfers.values()
    assert sent["amount"] == 4500  # (100 - 50) minus 10 % of it
    transfer = Transfer.objects.get(booking=booking)
    assert (transfer.amount, transfer.fee, transfer.reversed_amount) == (
        Decimal("45.00"),
        Decimal("5.00"),
        Decimal("0.00"),
    )
    assert not fake_stripe.requests_to("POST", f"/v1/transfers/{sent['id']}/reversals")


def test_only_a_failed_transfer_can_be_retried(
    fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, user, creator)
    run_payout_job(django_capture_on_commit_callbacks)
    transfer = Transfer.objects.get(booking=booking)

    with pytest.raises(Conflict) as refused:
        transfer_retry(transfer_id=transfer.pk)

    assert refused.value.code == "transfer_not_retryable"
    assert fake_stripe.transfer_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refund_landing_while_the_transfer_is_in_flight_is_reversed(fake_stripe, monkeypatch):
    """The worst interleaving: Stripe has made the transfer, and before the task records it the
    booking is refunded. The refund sees an unsent transfer (nothing to reverse yet); the task
    then records the transfer and reverses it, so the creator keeps nothing."""
    creator = CreatorFactory()
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, UserFactory(), creator)
    monkeypatch.setattr(payouts, "outbox_enqueue", lambda **kwargs: None)
    payouts_schedule_due()
    monkeypatch.undo()
    transfer = Transfer.objects.get(booking=booking)
    sent, refunded = threading.Event(), threading.Event()
    original = stripe_connect.create_transfer

    def transfer_then_wait(**kwargs):
        result = original(**kwargs)
        sent.set()
        assert refunded.wait(10)
        return result

    monkeypatch.setattr(stripe_connect, "create_transfer", transfer_then_wait)
    worker = in_background(lambda: transfer_send(transfer_id=transfer.pk))
    assert sent.wait(10)
    charge = fake_stripe.charge_for(intent_id)
    outcome = deliver(APIClient(), *FakeStripe.signed_event("charge.refunded", charge)).json()
    assert outcome["outcome"] == "refunded"
    refunded.set()
    worker.result()

    # The reversal was queued by the task and ran after its commit (inline, as with no broker).
    (message,) = OutboxMessage.objects.filter(task=payouts.REVERSAL_TASK)
    assert message.status == "done"
    transfer.refresh_from_db()
    assert (transfer.status, transfer.reversed_amount) == ("paid", transfer.amount)
    (at_stripe,) = fake_stripe.state.transfers.values()
    assert at_stripe["amount_reversed"] == at_stripe["amount"] == 9000
