"""Disputes (charge.dispute.created / .closed) before and after the transfer (issue 16)."""

from decimal import Decimal

import pytest
from django.core import mail

from backend.models import BookingEvent, OutboxMessage, Transfer
from backend.services.outbox import outbox_execute
from backend.services.payouts import payouts_schedule_due
from backend.tests.factories import UserFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import deliver
from backend.tests.payouts_support import connected, ended_paid_booking
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True, email="support@example.com")


def dispute_event(api_client, fake, intent_id, event_type, status, capture):
    obj = fake.dispute_for(intent_id, status=status)
    with capture(execute=True):
        response = deliver(api_client, *FakeStripe.signed_event(event_type, obj))
    assert response.status_code == 200, response.content
    return response.json()["outcome"]


def run_job(capture) -> int:
    with capture(execute=True):
        return payouts_schedule_due()


def test_dispute_before_the_transfer_holds_it_and_a_won_dispute_releases_it(
    fake_stripe, api_client, user, creator, staff, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    mail.outbox.clear()
    cap = django_capture_on_commit_callbacks

    assert dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.created",
                         "needs_response", cap) == "disputed"  # fmt: skip
    booking.refresh_from_db()
    assert booking.payment_status == "disputed"
    assert sorted(m.to[0] for m in mail.outbox) == sorted([creator.email, staff.email])
    assert all("disputed" in m.subject.lower() for m in mail.outbox)

    assert run_job(cap) == 0
    assert fake_stripe.transfer_count == 0

    assert dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "won",
                         cap) == "dispute_won"  # fmt: skip
    booking.refresh_from_db()
    assert booking.payment_status == "paid"
    assert run_job(cap) == 1
    assert fake_stripe.transfer_count == 1
    assert Transfer.objects.get(booking=booking).status == "paid"
    reasons = list(BookingEvent.objects.filter(booking=booking).values_list("reason", flat=True))
    assert reasons[-2:] == ["disputed", "dispute_won"]
    assert len(mail.outbox) == 4  # creator and staff, opened and closed


def test_dispute_lost_before_the_transfer_means_no_transfer_ever(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    cap = django_capture_on_commit_callbacks
    dispute_event(
        api_client, fake_stripe, intent_id, "charge.dispute.created", "needs_response", cap
    )
    assert dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "lost",
                         cap) == "dispute_lost"  # fmt: skip

    booking.refresh_from_db()
    assert booking.payment_status == "refunded"
    assert run_job(cap) == 0
    assert fake_stripe.transfer_count == 0
    stats = _stats(creator)
    assert stats["revenue"] == [{"currency": "USD", "amount": "0.00"}]
    assert stats["earnings"] == {
        "pending": [{"currency": "USD", "amount": "0.00"}],
        "transferred": [{"currency": "USD", "amount": "0.00"}],
    }
    assert stats["platform_fees"] == [{"currency": "USD", "amount": "0.00"}]


def test_dispute_after_the_transfer_lost_reverses_it_in_full(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    cap = django_capture_on_commit_callbacks
    run_job(cap)
    (transfer_id,) = fake_stripe.state.transfers

    dispute_event(
        api_client, fake_stripe, intent_id, "charge.dispute.created", "needs_response", cap
    )
    # Opened: the money is with the creator already; nothing is taken back yet.
    assert fake_stripe.transfer(transfer_id)["amount_reversed"] == 0
    assert _stats(creator)["earnings"]["transferred"] == [{"currency": "USD", "amount": "90.00"}]

    dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "lost", cap)

    at_stripe = fake_stripe.transfer(transfer_id)
    assert (at_stripe["amount_reversed"], at_stripe["reversed"]) == (9000, True)
    (call,) = fake_stripe.requests_to("POST", f"/v1/transfers/{transfer_id}/reversals")
    assert call.params["metadata[reason]"] == "dispute_lost"
    transfer = Transfer.objects.get(booking=booking)
    assert transfer.reversed_amount == Decimal("90.00")
    assert _stats(creator)["earnings"]["transferred"] == [{"currency": "USD", "amount": "0.00"}]
    # Redelivered: nothing more.
    assert dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "lost",
                         cap) == "already_applied"  # fmt: skip
    assert fake_stripe.transfer(transfer_id)["amount_reversed"] == 9000


def test_dispute_after_the_transfer_won_keeps_it(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    cap = django_capture_on_commit_callbacks
    run_job(cap)
    (transfer_id,) = fake_stripe.state.transfers

    dispute_event(
        api_client, fake_stripe, intent_id, "charge.dispute.created", "needs_response", cap
    )
    dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "won", cap)

    booking.refresh_from_db()
    assert booking.payment_status == "paid"
    assert fake_stripe.requests_to("POST", f"/v1/transfers/{transfer_id}/reversals") == []
    assert run_job(cap) == 0
    assert fake_stripe.transfer_count == 1


def test_dispute_while_the_transfer_is_queued_holds_it_until_won(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    cap = django_capture_on_commit_callbacks
    assert payouts_schedule_due() == 1  # committed, the task not run yet
    dispute_event(
        api_client, fake_stripe, intent_id, "charge.dispute.created", "needs_response", cap
    )
    transfer = Transfer.objects.get(booking=booking)
    assert transfer.status == "held"

    # The queued task runs now: nothing goes to the creator.
    message = OutboxMessage.objects.get(effect_key=f"transfer:booking:{booking.pk}")
    assert outbox_execute(message_id=message.pk) == "done"
    assert fake_stripe.transfer_count == 0

    dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.closed", "won", cap)
    transfer.refresh_from_db()
    assert transfer.status == "paid"
    assert fake_stripe.transfer_count == 1
    assert run_job(cap) == 0


def test_a_dispute_on_a_booking_that_is_not_paid_is_acknowledged_and_ignored(
    fake_stripe, api_client, user, creator, django_capture_on_commit_callbacks
):
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    cap = django_capture_on_commit_callbacks
    full = fake_stripe.charge_for(intent_id)
    deliver(api_client, *FakeStripe.signed_event("charge.refunded", full))
    assert dispute_event(api_client, fake_stripe, intent_id, "charge.dispute.created",
                         "needs_response", cap) == "ignored"  # fmt: skip
    booking.refresh_from_db()
    assert booking.payment_status == "refunded"


def test_a_malformed_dispute_is_refused_and_changes_nothing(fake_stripe, api_client, user, creator):
    booking, intent_id = ended_paid_booking(fake_stripe, user, creator)
    bad = {**fake_stripe.dispute_for(intent_id), "status": None}
    response = deliver(api_client, *FakeStripe.signed_event("charge.dispute.created", bad))
    assert (response.status_code, response.json()["code"]) == (400, "invalid_event")
    booking.refresh_from_db()
    assert booking.payment_status == "paid"


def _stats(creator):
    return auth_client(creator).get("/api/dashboard/creator/").json()["stats"]
