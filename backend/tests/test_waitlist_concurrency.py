"""Freed seats go to the waitlist exactly once, under concurrency, on PostgreSQL.

Real threads behind a barrier, one connection each (run_concurrently). The offers are counted
where they arrive: bookings in the database and e-mails in the mail outbox (tasks run inline
after each commit, so every thread's mail lands there).
"""

from collections import Counter
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone

from backend import booking_rules
from backend.models import Booking, WaitlistEntry
from backend.services import waitlist as waitlist_services
from backend.services.bookings import booking_create
from backend.services.waitlist import waitlist_join
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.support import auth_client, backdate, run_concurrently

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def offer_mails(session):
    return Counter(
        message.to[0]
        for message in mail.outbox
        if "came free" in message.body and session.title in message.body
    )


def cancel(booking):
    client = auth_client(booking.user)

    def task():
        return client.post(f"/api/bookings/{booking.pk}/cancel/").status_code

    return task


@pytest.mark.slow
@pytest.mark.parametrize("price", [Decimal("20.00"), Decimal("0.00")])
def test_five_concurrent_cancellations_offer_five_seats_to_the_first_five_of_twenty(price):
    waiters = [UserFactory() for _ in range(20)]
    for round_number in range(10):
        session = SessionFactory(capacity=5, price=price, title=f"Race {price} #{round_number}")
        holders = [
            BookingFactory(
                session=session,
                status="confirmed",
                payment_status="paid" if price else "not_required",
                confirmed_at=timezone.now(),
            )
            for _ in range(5)
        ]
        if price:
            # Paid bookings refund through Stripe; these five are unpaid holds being cancelled.
            Booking.objects.filter(pk__in=[h.pk for h in holders]).update(
                status="pending",
                payment_status="unpaid",
                confirmed_at=None,
                hold_expires_at=booking_rules.new_hold_expires_at(),
            )
        for waiter in waiters:
            waitlist_join(user=waiter, session_id=session.pk)
        mail.outbox.clear()

        results = run_concurrently([cancel(h) for h in holders], lock_timeout="30s")

        assert results == [200] * 5, f"round {round_number}: {results}"
        entries = list(WaitlistEntry.objects.filter(session=session).order_by("created_at", "id"))
        served = "booked" if price == 0 else "offered"
        assert [e.status for e in entries] == [served] * 5 + ["waiting"] * 15, round_number
        offers = Booking.objects.filter(session=session).exclude(pk__in=[h.pk for h in holders])
        assert sorted(offers.values_list("user_id", flat=True)) == sorted(
            e.user_id for e in entries[:5]
        )
        assert booking_rules.seats_taken(session=session) == 5
        assert offer_mails(session) == Counter({e.user.email: 1 for e in entries[:5]})


@pytest.mark.slow
def test_cancellations_racing_new_bookings_and_joins_never_oversell():
    """Three cancellations, three latecomers booking, three more joining, all at once."""
    for round_number in range(5):
        session = SessionFactory(capacity=3, price=Decimal("0.00"), title=f"Mix #{round_number}")
        holders = [BookingFactory(session=session) for _ in range(3)]
        waiters = [UserFactory() for _ in range(4)]
        for waiter in waiters:
            waitlist_join(user=waiter, session_id=session.pk)
        latecomers = [UserFactory() for _ in range(3)]
        joiners = [UserFactory() for _ in range(3)]
        mail.outbox.clear()

        def book(user, session_id=session.pk):
            return lambda: booking_create(user=user, session_id=session_id)

        def join(user, session_id=session.pk):
            return lambda: waitlist_join(user=user, session_id=session_id)

        tasks = [cancel(h) for h in holders] + [book(u) for u in latecomers]
        tasks += [join(u) for u in joiners]
        run_concurrently(tasks, lock_timeout="30s")

        confirmed = Booking.objects.filter(session=session, status="confirmed")
        assert sum(confirmed.values_list("seats", flat=True)) <= 3, round_number
        assert booking_rules.seats_taken(session=session) == 3
        # Freed seats went to the earliest waiters first: a latecomer only got a seat that no
        # earlier waiter was owed, so the booked waiters are a prefix of the line.
        line = list(WaitlistEntry.objects.filter(session=session).order_by("created_at", "id"))
        statuses = [e.status for e in line[:4]]
        booked = statuses.count("booked")
        assert statuses == ["booked"] * booked + ["waiting"] * (4 - booked), statuses
        assert booked + confirmed.filter(user__in=latecomers).count() == 3
        assert sum(offer_mails(session).values()) == booked
        assert all(count == 1 for count in offer_mails(session).values())


def test_the_periodic_job_and_a_request_expiring_the_same_offer_make_one_next_offer():
    session = SessionFactory(capacity=1, price=Decimal("20.00"), title="Expiry race")
    first, second, third = (UserFactory() for _ in range(3))
    hold = BookingFactory(session=session, status="pending", payment_status="unpaid")
    for waiter in (first, second, third):
        waitlist_join(user=waiter, session_id=session.pk)
    backdate(hold, hold_expires_at=timezone.now())
    mail.outbox.clear()
    holder_client = auth_client(hold.user)

    def request_expiry():
        return holder_client.post(f"/api/bookings/{hold.pk}/cancel/").status_code

    results = run_concurrently(
        [waitlist_services.bookings_expire_and_offer, request_expiry, request_expiry],
        lock_timeout="30s",
    )
    assert results[1:] == [409, 409]
    statuses = [
        WaitlistEntry.objects.get(session=session, user=u).status for u in (first, second, third)
    ]
    assert statuses == ["offered", "waiting", "waiting"]
    assert Booking.objects.filter(session=session, status="pending").count() == 1
    assert offer_mails(session) == Counter({first.email: 1})
