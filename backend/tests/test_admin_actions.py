"""The booking admin's actions and the session admin's cancellation call the booking services,
as a staff user in the Django test client; money is counted at the Stripe stand-in."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission

from backend.models import Booking, BookingEvent, OutboxMessage, Payment, Session
from backend.tests.admin_support import (
    BOOKINGS_URL,
    SESSIONS_URL,
    change_url,
    form_errors,
    log_in_staff,
    message_texts,
    session_form,
)
from backend.tests.factories import BookingFactory, SessionFactory, UserFactory
from backend.tests.payments_support import book, pay

pytestmark = pytest.mark.django_db


def run_action(client, action: str, bookings: list[Booking]):
    """Runs an action and follows its redirect, so its messages are shown (and consumed)."""
    response = client.post(
        BOOKINGS_URL,
        {"action": action, "_selected_action": [str(b.pk) for b in bookings]},
        follow=True,
    )
    assert response.redirect_chain == [(BOOKINGS_URL, 302)]
    return response


def paid_booking(fake_stripe, *, seats: int = 2) -> tuple[Booking, str]:
    dana = UserFactory(username="dana")
    session = SessionFactory(title="Intro to machine learning", price=Decimal("20.00"))
    booking, intent_id = pay(fake_stripe, dana, book(dana, session, seats=seats))
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
    return booking, intent_id


def refunds_at_stripe(fake_stripe) -> int:
    return len(fake_stripe.requests_to("POST", "/v1/refunds"))


def test_cancel_action_refunds_a_paid_booking_exactly_once(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    log_in_staff(client)
    booking, intent_id = paid_booking(fake_stripe)

    # The refund is a background task (issue 15): queued by the action, run after its commit.
    with django_capture_on_commit_callbacks(execute=True):
        first = run_action(client, "cancel_bookings", [booking])
    second = run_action(client, "cancel_bookings", [booking])

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "refunded")
    (request,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert request.params["payment_intent"] == intent_id
    (refund,) = fake_stripe.state.refunds.values()
    assert refund["amount"] == 4000
    assert Payment.objects.get(booking=booking, kind="refund").status == "succeeded"
    label = f"#{booking.pk} dana → Intro to machine learning, 2 seats"
    assert message_texts(first) == [f"{label}: cancelled, payment still paid: refund queued."]
    assert message_texts(second) == [
        f"{label}: not cancelled: A cancelled booking cannot be cancelled."
    ]
    assert refunds_at_stripe(fake_stripe) == 1


def test_each_row_is_reported_and_a_refused_row_changes_nothing(client):
    log_in_staff(client)
    active = BookingFactory(user__username="dana", session__title="Yoga")
    done = BookingFactory(
        user__username="lee", session__title="Pottery", status=Booking.Status.CANCELLED
    )
    before = Booking.objects.values().get(pk=done.pk)

    response = run_action(client, "cancel_bookings", [done, active])

    assert message_texts(response) == [
        f"#{active.pk} dana → Yoga, 1 seat: cancelled, payment not required.",
        f"#{done.pk} lee → Pottery, 1 seat: not cancelled: "
        "A cancelled booking cannot be cancelled.",
    ]
    assert Booking.objects.get(pk=active.pk).status == "cancelled"
    assert Booking.objects.values().get(pk=done.pk) == before


def test_confirm_action_confirms_a_pending_booking_and_refuses_an_unpaid_one(client):
    log_in_staff(client)
    free = BookingFactory(
        user__username="dana",
        session__title="Yoga",
        status=Booking.Status.PENDING,
        payment_status=Booking.PaymentStatus.NOT_REQUIRED,
    )
    unpaid = BookingFactory(
        user__username="lee",
        session__title="Pottery",
        status=Booking.Status.PENDING,
        payment_status=Booking.PaymentStatus.UNPAID,
    )
    before = Booking.objects.values().get(pk=unpaid.pk)

    response = run_action(client, "confirm_bookings", [free, unpaid])

    assert message_texts(response) == [
        f"#{free.pk} dana → Yoga, 1 seat: confirmed, payment not required.",
        f"#{unpaid.pk} lee → Pottery, 1 seat: not confirmed: "
        "This booking is for a paid session and has not been paid yet.",
    ]
    assert Booking.objects.get(pk=free.pk).status == "confirmed"
    assert Booking.objects.values().get(pk=unpaid.pk) == before


def test_staff_without_change_permission_get_the_export_only(client):
    staff = UserFactory(username="viewer", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_booking"))
    client.force_login(staff)
    booking = BookingFactory()
    before = Booking.objects.values().get(pk=booking.pk)

    listing = client.get(BOOKINGS_URL)
    response = client.post(
        BOOKINGS_URL, {"action": "cancel_bookings", "_selected_action": [str(booking.pk)]}
    )

    actions = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert actions == ["", "export_csv"]
    # The action is not among the choices, so Django refuses it before calling it.
    assert response.status_code == 302
    assert message_texts(response) == ["No action selected."]
    assert Booking.objects.values().get(pk=booking.pk) == before


def test_cancelling_a_session_in_the_admin_cancels_and_refunds_its_bookings(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    log_in_staff(client)
    paid, intent_id = paid_booking(fake_stripe)
    session = paid.session
    free_seat = BookingFactory(session=session, payment_status="not_required")

    with django_capture_on_commit_callbacks(execute=True):  # the refund task, after commit
        response = client.post(
            change_url(SESSIONS_URL, session.pk), session_form(session, status="cancelled")
        )

    assert response.status_code == 302, form_errors(response)
    session.refresh_from_db()
    assert session.status == "cancelled"
    assert sorted(session.bookings.values_list("pk", "status", "payment_status")) == sorted(
        [(paid.pk, "cancelled", "refunded"), (free_seat.pk, "cancelled", "not_required")]
    )
    (request,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert request.params["payment_intent"] == intent_id
    # Cancelled is final: the page is view-only now and a second cancel cannot refund again.
    assert (
        client.post(
            change_url(SESSIONS_URL, session.pk), session_form(session, status="published")
        ).status_code
        == 403
    )
    assert refunds_at_stripe(fake_stripe) == 1


def test_a_failed_refund_does_not_stop_the_session_cancel_in_the_admin(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    # Behaviour changed on purpose (issue 15): the cancellation stands, the refund is retried.
    log_in_staff(client)
    paid, intent_id = paid_booking(fake_stripe)
    session = paid.session
    fake_stripe.fail_next("/v1/refunds", status=500)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            change_url(SESSIONS_URL, session.pk), session_form(session, status="cancelled")
        )

    assert response.status_code == 302, form_errors(response)
    assert Session.objects.get(pk=session.pk).status == "cancelled"
    paid.refresh_from_db()
    assert (paid.status, paid.payment_status) == ("cancelled", "paid")
    assert OutboxMessage.objects.get(effect_key=f"refund:{intent_id}").status == "pending"


# --- the audit trail: one event per change, the staff user as the actor ----------------------


def events_of(booking: Booking) -> list[tuple]:
    return list(
        BookingEvent.objects.filter(booking=booking)
        .order_by("id")
        .values_list("reason", "actor_id", "from_status", "to_status", "to_payment_status")
    )


def new_events(booking: Booking, before: int) -> list[tuple]:
    return events_of(booking)[before:]


def test_the_cancel_action_writes_one_event_with_the_staff_actor(client):
    staff = log_in_staff(client)
    booking = BookingFactory()
    before = len(events_of(booking))

    run_action(client, "cancel_bookings", [booking])

    assert new_events(booking, before) == [
        ("cancelled_by_staff", staff.pk, "confirmed", "cancelled", "not_required")
    ]


def test_cancelling_a_paid_booking_records_the_cancellation_and_the_refund(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    staff = log_in_staff(client)
    booking, _ = paid_booking(fake_stripe)
    before = len(events_of(booking))

    with django_capture_on_commit_callbacks(execute=True):
        run_action(client, "cancel_bookings", [booking])

    # Two changes, two events: the status (at once, by staff) and the payment (once Stripe
    # refunded, by the refund task: the system, actor None).
    assert new_events(booking, before) == [
        ("cancelled_by_staff", staff.pk, "confirmed", "cancelled", "paid"),
        ("refunded", None, "cancelled", "cancelled", "refunded"),
    ]


def test_the_confirm_action_writes_one_event_with_the_staff_actor(client):
    staff = log_in_staff(client)
    booking = BookingFactory(status="pending", payment_status="not_required")
    before = len(events_of(booking))

    run_action(client, "confirm_bookings", [booking])

    assert new_events(booking, before) == [
        ("confirmed", staff.pk, "pending", "confirmed", "not_required")
    ]


def test_the_refund_action_refunds_a_cancelled_booking_still_paid(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    log_in_staff(client)
    booking, intent_id = paid_booking(fake_stripe)
    # What a cancellation whose refund never reached Stripe leaves behind.
    Booking.objects.filter(pk=booking.pk).update(status="cancelled")
    before = len(events_of(booking))

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(client, "refund_bookings", [booking])

    assert message_texts(response) == [
        f"#{booking.pk} dana → Intro to machine learning, 2 seats: refund requested, "
        "payment still paid: refund queued."
    ]
    assert new_events(booking, before) == [("refunded", None, "cancelled", "cancelled", "refunded")]
    (request,) = fake_stripe.requests_to("POST", "/v1/refunds")
    assert request.params["payment_intent"] == intent_id


@pytest.mark.parametrize(
    ("action", "fields", "message"),
    [
        ("cancel_bookings", {"status": "cancelled"}, "A cancelled booking cannot be cancelled."),
        (
            "confirm_bookings",
            {"status": "pending", "payment_status": "unpaid"},
            "This booking is for a paid session and has not been paid yet.",
        ),
        (
            "refund_bookings",
            {"payment_status": "paid"},
            "Cancel the booking to refund it (it still holds its seats).",
        ),
        (
            "refund_bookings",
            {"status": "cancelled", "payment_status": "not_required"},
            "Only paid bookings can be refunded; this one is not_required.",
        ),
    ],
)
def test_a_refused_action_writes_no_event_and_changes_nothing(client, action, fields, message):
    log_in_staff(client)
    booking = BookingFactory(user__username="dana", session__title="Yoga", **fields)
    before_row = Booking.objects.values().get(pk=booking.pk)
    before_events = BookingEvent.objects.count()

    response = run_action(client, action, [booking])

    (text,) = message_texts(response)
    assert text.endswith(f": {message}")
    assert BookingEvent.objects.count() == before_events
    assert Booking.objects.values().get(pk=booking.pk) == before_row


@pytest.mark.parametrize("refund_status", ["pending", "failed"])
def test_a_refund_stripe_has_not_completed_is_reported_as_such(
    client, fake_stripe, refund_status, django_capture_on_commit_callbacks
):
    log_in_staff(client)
    booking, _ = paid_booking(fake_stripe)
    fake_stripe.set_refund_status(refund_status)

    with django_capture_on_commit_callbacks(execute=True):
        run_action(client, "cancel_bookings", [booking])
    # Asked again once the refund task has run: the refund row says what Stripe said.
    response = run_action(client, "refund_bookings", [booking])

    assert message_texts(response) == [
        f"#{booking.pk} dana → Intro to machine learning, 2 seats: refund requested, "
        f"payment still paid: the refund at Stripe is {refund_status}."
    ]
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "paid")
    assert refunds_at_stripe(fake_stripe) == 1


def test_refund_after_a_failed_refund_is_a_new_attempt_that_can_succeed(
    client, fake_stripe, django_capture_on_commit_callbacks
):
    log_in_staff(client)
    booking, _ = paid_booking(fake_stripe)
    fake_stripe.set_refund_status("failed")
    with django_capture_on_commit_callbacks(execute=True):
        run_action(client, "cancel_bookings", [booking])
    fake_stripe.set_refund_status("succeeded")

    with django_capture_on_commit_callbacks(execute=True):
        run_action(client, "refund_bookings", [booking])
    with django_capture_on_commit_callbacks(execute=True):
        run_action(client, "refund_bookings", [booking])  # nothing left to refund

    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("cancelled", "refunded")
    assert refunds_at_stripe(fake_stripe) == 2
    statuses = sorted(booking.payments.filter(kind="refund").values_list("status", flat=True))
    assert statuses == ["failed", "succeeded"]


def test_a_session_cancelled_in_the_admin_records_the_staff_user(client):
    staff = log_in_staff(client)
    booking = BookingFactory(payment_status="not_required")
    session = booking.session

    client.post(change_url(SESSIONS_URL, session.pk), session_form(session, status="cancelled"))

    assert events_of(booking)[-1] == (
        "session_cancelled",
        staff.pk,
        "confirmed",
        "cancelled",
        "not_required",
    )


def test_the_booking_page_shows_its_events_read_only(client, django_assert_max_num_queries):
    staff = log_in_staff(client)
    booking = BookingFactory(status="pending", payment_status="not_required")
    run_action(client, "confirm_bookings", [booking])

    with django_assert_max_num_queries(15):
        page = client.get(change_url(BOOKINGS_URL, booking.pk))

    inline = next(f for f in page.context["inline_admin_formsets"] if f.opts.model is BookingEvent)
    assert not inline.has_add_permission and not inline.has_change_permission
    assert not inline.has_delete_permission
    text = page.content.decode()
    assert "confirmed" in text and f">{staff.username}<" in text
