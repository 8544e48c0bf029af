"""DELETE /api/users/me/: the account is anonymised, upcoming bookings cancelled (refunded per
the rules), tokens revoked; bookings and payments stay for accounting."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from social_django.models import Code, UserSocialAuth

from backend.models import Booking, BookingEvent, Payment, Session, User
from backend.services.privacy import user_delete
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.payments_support import book, pay
from backend.tests.privacy_support import ME_URL, find_everywhere, tables_with
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
TOKEN_URL = "/api/auth/token/"
REFRESH_URL = "/api/auth/token/refresh/"
CREATOR_DASHBOARD_URL = "/api/dashboard/creator/"

IDENTITY = {
    "username": "zebedee_quux",
    "email": "Zebedee.Quuxworth@example.org",
    "first_name": "Zebedee",
    "last_name": "Quuxworth",
}


def sign_in(username: str) -> dict:
    response = APIClient().post(TOKEN_URL, {"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.content
    return response.json()


def bearer(access: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client


def move_to_past(session: Session) -> None:
    Session.objects.filter(pk=session.pk).update(start_time=timezone.now() - timedelta(days=3))


def revenue(creator: User) -> list:
    response = auth_client(creator).get(CREATOR_DASHBOARD_URL)
    assert response.status_code == 200
    return response.json()["stats"]["revenue"]


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Runs what a block commits to the outbox (refunds, e-mails), as `make run` does inline."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


def delete_me(client, run_tasks) -> int:
    with run_tasks():
        status = client.delete(ME_URL).status_code
    return status


@pytest.fixture
def footprint(fake_stripe, run_tasks):
    """A user who left traces everywhere: bookings past and upcoming (paid, free, unpaid),
    notes naming them, admin log entries, social_django rows, tokens."""
    user = UserFactory(
        **IDENTITY,
        bio="Zebedee Quuxworth, juggler.",
        avatar_url="https://img.example.org/zebedee.png",
        oauth_provider="github",
        oauth_uid="gh-zq-4242",
    )
    creator = CreatorFactory()
    with run_tasks():
        past_paid, _ = pay(fake_stripe, user, book(user, SessionFactory(creator=creator, price=40)))
    move_to_past(past_paid.session)
    Booking.objects.filter(pk=past_paid.pk).update(notes="Zebedee needs a ramp")
    upcoming_paid, intent_id = pay(
        fake_stripe, user, book(user, SessionFactory(creator=creator, price=25))
    )
    upcoming_free = book(user, SessionFactory(creator=creator, price=0))
    upcoming_unpaid = book(user, SessionFactory(creator=creator, price=30))
    Booking.objects.filter(pk=upcoming_unpaid.pk).update(notes="Quuxworth, table for one")
    staff = User.objects.create_superuser("mona", "mona@example.com", "a-long-pass-1")
    for model, obj in ((User, user), (Booking, past_paid)):
        LogEntry.objects.create(
            user=staff,
            content_type=ContentType.objects.get_for_model(model),
            object_id=str(obj.pk),
            object_repr=str(Booking.objects.get(pk=obj.pk)) if model is Booking else str(obj),
            action_flag=CHANGE,
            change_message=f"Support call with {IDENTITY['email']}",
        )
    UserSocialAuth.objects.create(
        user=user, provider="github", uid="gh-zq-4242", extra_data={"email": IDENTITY["email"]}
    )
    Code.objects.create(email=IDENTITY["email"], code="c0de")
    return {
        "user": user,
        "creator": creator,
        "past_paid": past_paid,
        "upcoming_paid": upcoming_paid,
        "upcoming_paid_intent": intent_id,
        "upcoming_free": upcoming_free,
        "upcoming_unpaid": upcoming_unpaid,
        "stripe": fake_stripe,
    }


def test_after_deletion_the_user_appears_in_no_text_column_of_any_table(footprint, run_tasks):
    user = footprint["user"]
    searched = [*IDENTITY.values(), "gh-zq-4242", "img.example.org/zebedee"]
    # The search finds them before: it looks where they are (users, bookings, the admin log,
    # social_django's tables).
    assert ("users", "email") in tables_with(IDENTITY["email"])
    assert ("django_admin_log", "object_repr") in tables_with(IDENTITY["username"])
    assert ("django_admin_log", "change_message") in tables_with(IDENTITY["email"])
    assert ("social_auth_code", "email") in tables_with(IDENTITY["email"])
    assert ("social_auth_usersocialauth", "uid") in tables_with("gh-zq-4242")
    assert ("bookings", "notes") in tables_with(IDENTITY["first_name"])
    assert ("bookings", "notes") in tables_with(IDENTITY["last_name"])
    bookings_before = set(Booking.objects.filter(user=user).values_list("pk", flat=True))
    payments_before = set(Payment.objects.filter(booking__user=user).values_list("pk", flat=True))

    with run_tasks():
        response = auth_client(user).delete(ME_URL)

    assert response.status_code == 204, response.content
    assert response.content == b""
    for value in searched:
        assert find_everywhere(value) == [], value
    user.refresh_from_db()
    assert user.username == f"deleted-{user.pk}"
    assert (user.email, user.first_name, user.last_name, user.bio) == ("", "", "", "")
    assert (user.avatar.name, user.avatar_url, user.oauth_provider, user.oauth_uid) == (
        "",
        "",
        None,
        "",
    )
    assert not user.is_active
    assert not user.has_usable_password()
    # Kept for accounting, pointing at the anonymised account.
    assert set(Booking.objects.filter(user=user).values_list("pk", flat=True)) == bookings_before
    assert payments_before <= set(
        Payment.objects.filter(booking__user=user).values_list("pk", flat=True)
    )
    assert not Booking.objects.filter(user=user).exclude(notes="").exists()


def test_upcoming_bookings_are_cancelled_through_the_booking_service(footprint, run_tasks):
    user, stripe = footprint["user"], footprint["stripe"]
    mail.outbox.clear()

    assert delete_me(auth_client(user), run_tasks) == 204

    def state(key: str) -> tuple[str, str]:
        booking = Booking.objects.get(pk=footprint[key].pk)
        return booking.status, booking.payment_status

    assert state("upcoming_paid") == ("cancelled", "refunded")
    assert state("upcoming_free") == ("cancelled", "not_required")
    assert state("upcoming_unpaid") == ("cancelled", "unpaid")
    assert state("past_paid") == ("confirmed", "paid")
    # One refund, of the upcoming paid booking, with the refund service's idempotency key.
    (refund,) = stripe.requests_to("POST", "/v1/refunds")
    intent_id = footprint["upcoming_paid_intent"]
    assert refund.params["payment_intent"] == intent_id
    assert refund.idempotency_key == f"sm-refund-{intent_id}"
    refund_row = Payment.objects.get(booking=footprint["upcoming_paid"], kind="refund")
    assert (refund_row.amount, refund_row.status) == (Decimal("25.00"), "succeeded")
    # Each cancellation is audited as the user's, with the reason.
    for key in ("upcoming_paid", "upcoming_free", "upcoming_unpaid"):
        event = (
            BookingEvent.objects.filter(booking=footprint[key], to_status="cancelled")
            .exclude(from_status="cancelled")
            .get()
        )
        assert (event.reason, event.actor_id) == ("account_deleted", user.pk)
    # The creator hears of each cancellation; the e-mails to the user, queued with the address
    # they asked us to forget, are dropped.
    recipients = [message.to for message in mail.outbox]
    assert recipients == [[footprint["creator"].email]] * 3


def test_creator_revenue_from_past_paid_bookings_is_unchanged(footprint, run_tasks):
    creator = footprint["creator"]
    # 40.00 of a past session plus 25.00 of an upcoming one.
    assert revenue(creator) == [{"currency": "USD", "amount": "65.00"}]

    assert delete_me(auth_client(footprint["user"]), run_tasks) == 204

    # The upcoming booking was refunded; the past one still counts in full.
    assert revenue(creator) == [{"currency": "USD", "amount": "40.00"}]


def test_revenue_is_identical_when_the_user_had_only_past_bookings(fake_stripe, run_tasks):
    user = UserFactory()
    creator = CreatorFactory()
    for price in (40, 15):
        booking, _ = pay(
            fake_stripe, user, book(user, SessionFactory(creator=creator, price=price))
        )
        move_to_past(booking.session)
    before = revenue(creator)
    dashboard_before = auth_client(creator).get(CREATOR_DASHBOARD_URL).json()["stats"]

    assert delete_me(auth_client(user), run_tasks) == 204

    assert before == [{"currency": "USD", "amount": "55.00"}]
    assert auth_client(creator).get(CREATOR_DASHBOARD_URL).json()["stats"] == dashboard_before
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []


def test_tokens_issued_before_deletion_are_refused():
    user = UserFactory(username="tok")
    first, second = sign_in("tok"), sign_in("tok")

    assert bearer(first["access"]).delete(ME_URL).status_code == 204

    for pair in (first, second):
        assert bearer(pair["access"]).get(ME_URL).status_code == 401
        refreshed = APIClient().post(REFRESH_URL, {"refresh": pair["refresh"]})
        assert refreshed.status_code == 401
        assert "access" not in refreshed.json()
    # Every refresh token issued to the account is on the blacklist, and no new one is issued.
    outstanding = OutstandingToken.objects.filter(user=user)
    assert outstanding.count() == 2
    assert BlacklistedToken.objects.filter(token__in=outstanding).count() == 2
    assert APIClient().post(TOKEN_URL, {"username": "tok", "password": PASSWORD}).status_code == 401


def creator_state(creator: User) -> dict:
    """Everything the deletion could touch, to assert that nothing did."""
    return {
        "user": User.objects.filter(pk=creator.pk).values().get(),
        "sessions": list(Session.objects.filter(creator=creator).order_by("pk").values()),
        "bookings": list(Booking.objects.order_by("pk").values()),
        "events": BookingEvent.objects.count(),
        "payments": list(Payment.objects.order_by("pk").values()),
        "blacklisted": BlacklistedToken.objects.count(),
    }


def test_creator_with_booked_upcoming_session_gets_409_and_nothing_changes():
    creator = CreatorFactory(username="cora")
    booked = SessionFactory(creator=creator, price=0)
    BookingFactory(session=booked)
    SessionFactory(creator=creator)  # upcoming, unbooked: would be closed by a deletion
    own_booking = BookingFactory(user=creator, session=SessionFactory(price=0))
    client = auth_client(creator)
    before = creator_state(creator)

    response = client.delete(ME_URL)

    assert response.status_code == 409
    assert response.json()["code"] == "has_upcoming_sessions"
    assert "detail" in response.json()
    assert creator_state(creator) == before
    assert Booking.objects.get(pk=own_booking.pk).status == "confirmed"
    # Still signed in: the same token works.
    assert client.get(ME_URL).json()["username"] == "cora"


def test_a_held_but_unpaid_booking_blocks_too_an_expired_hold_does_not():
    creator = CreatorFactory()
    session = SessionFactory(creator=creator)
    hold = BookingFactory(session=session, status="pending", payment_status="unpaid")

    assert auth_client(creator).delete(ME_URL).status_code == 409

    Booking.objects.filter(pk=hold.pk).update(
        created_at=timezone.now() - timedelta(hours=1), hold_expires_at=timezone.now()
    )
    assert auth_client(creator).delete(ME_URL).status_code == 204
    hold.refresh_from_db()
    assert hold.status == "expired"
    assert Session.objects.get(pk=session.pk).status == "cancelled"


def test_creator_without_booked_upcoming_sessions_is_deleted_and_their_sessions_closed():
    creator = CreatorFactory()
    never_booked = SessionFactory(creator=creator)
    draft = SessionFactory(creator=creator, status="draft")
    cancelled_booking_only = SessionFactory(creator=creator, price=0)
    BookingFactory(session=cancelled_booking_only, status="cancelled")
    past = SessionFactory(creator=creator)
    past_booking = BookingFactory(session=past, payment_status="paid")
    move_to_past(past)

    assert auth_client(creator).delete(ME_URL).status_code == 204

    assert not Session.objects.filter(pk__in=[never_booked.pk, draft.pk]).exists()
    assert Session.objects.get(pk=cancelled_booking_only.pk).status == "cancelled"
    # The past session and its booking stay for the attendee's and the accounting's sake.
    assert Session.objects.get(pk=past.pk).status == "published"
    assert Booking.objects.get(pk=past_booking.pk).status == "confirmed"


def test_paid_booking_inside_the_cancellation_window_is_kept_not_refunded(fake_stripe):
    user = UserFactory()
    session = SessionFactory(price=20)
    booking, _ = pay(fake_stripe, user, book(user, session))
    Session.objects.filter(pk=session.pk).update(start_time=timezone.now() + timedelta(hours=2))

    deletion = user_delete(user=user)

    assert deletion.bookings_kept == [booking.pk]
    booking.refresh_from_db()
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
    assert fake_stripe.requests_to("POST", "/v1/refunds") == []
    user.refresh_from_db()
    assert user.username == f"deleted-{user.pk}"


def test_deleting_twice_changes_nothing_more():
    user = UserFactory()
    user_delete(user=user)
    user.refresh_from_db()
    before = User.objects.filter(pk=user.pk).values().get()

    deletion = user_delete(user=user)

    assert User.objects.filter(pk=user.pk).values().get() == before
    assert deletion.bookings_cancelled == []
    assert deletion.tokens_revoked == 0


def test_a_taken_deleted_username_gets_a_unique_variant():
    user = UserFactory()
    UserFactory(username=f"deleted-{user.pk}")

    user_delete(user=user)

    user.refresh_from_db()
    assert user.username.startswith(f"deleted-{user.pk}-")
    assert not user.is_active


def test_other_users_are_untouched():
    user, other = UserFactory(), UserFactory(username="bystander", email="by@example.org")
    session = SessionFactory(price=0)
    mine, theirs = (
        BookingFactory(user=user, session=session),
        BookingFactory(user=other, session=session),
    )
    other_before = User.objects.filter(pk=other.pk).values().get()

    assert auth_client(user).delete(ME_URL).status_code == 204

    assert User.objects.filter(pk=other.pk).values().get() == other_before
    assert Booking.objects.get(pk=theirs.pk).status == "confirmed"
    assert Booking.objects.get(pk=mine.pk).status == "cancelled"
    assert auth_client(other).get(ME_URL).status_code == 200


def test_delete_needs_authentication(api_client):
    user = UserFactory()
    response = api_client.delete(ME_URL)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert User.objects.get(pk=user.pk).is_active
