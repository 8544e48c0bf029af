"""The User admin's "Delete account" action: the same service as DELETE /api/users/me/."""

import pytest
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from backend.models import Booking, Session, User
from backend.tests.admin_support import log_in_staff, message_texts
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from backend.tests.privacy_support import find_everywhere

pytestmark = pytest.mark.django_db

USERS_URL = "/admin/backend/user/"


def run_action(client, users: list[User]):
    response = client.post(
        USERS_URL,
        {"action": "delete_accounts", "_selected_action": [str(u.pk) for u in users]},
        follow=True,
    )
    assert response.redirect_chain == [(USERS_URL, 302)]
    return response


def test_staff_delete_an_account_and_a_refused_one_changes_nothing(client):
    staff = log_in_staff(client)
    leaving = UserFactory(username="leaver", email="leaver@example.org", first_name="Lea")
    booking = BookingFactory(user=leaving, session=SessionFactory(price=0))
    RefreshToken.for_user(leaving)
    busy = CreatorFactory(username="busycreator")
    BookingFactory(session=SessionFactory(creator=busy))
    busy_before = User.objects.filter(pk=busy.pk).values().get()

    response = run_action(client, [leaving, busy, staff])

    # In id order: the staff member's own account first.
    assert message_texts(response) == [
        f"mona (#{staff.pk}): not deleted: you cannot delete your own account here.",
        f"leaver (#{leaving.pk}): deleted as deleted-{leaving.pk}: 1 booking(s) cancelled, "
        "0 session(s) closed, 0 file(s) deleted, 1 token(s) revoked.",
        f"busycreator (#{busy.pk}): not deleted: You have 1 upcoming session(s) with active "
        "bookings; cancel them (which refunds their attendees) before deleting your account.",
    ]
    assert Booking.objects.get(pk=booking.pk).status == "cancelled"
    assert BlacklistedToken.objects.filter(token__user=leaving).count() == 1
    for value in ("leaver", "leaver@example.org"):
        assert find_everywhere(value) == []
    assert User.objects.filter(pk=busy.pk).values().get() == busy_before
    assert Session.objects.filter(creator=busy, status="published").count() == 1
    assert User.objects.get(pk=staff.pk).is_active


def test_an_already_deleted_account_is_reported_and_users_cannot_be_hard_deleted(client):
    log_in_staff(client)
    user = UserFactory()
    run_action(client, [user])

    again = run_action(client, [user])

    assert message_texts(again) == [f"deleted-{user.pk} (#{user.pk}): already deleted."]
    listing = client.get(USERS_URL)
    actions = [name for name, _ in listing.context["action_form"].fields["action"].choices]
    assert actions == ["", "delete_accounts"]
    assert client.post(f"{USERS_URL}{user.pk}/delete/").status_code == 403
    assert User.objects.filter(pk=user.pk).exists()
