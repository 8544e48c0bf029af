"""The signed-in user's own account: /api/users/me/, update_profile, become_creator."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from backend.models import User
from backend.tests.factories import UserFactory
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db

ME_URL = "/api/users/me/"
UPDATE_URL = "/api/users/update_profile/"
BECOME_CREATOR_URL = "/api/users/become_creator/"


def test_me_returns_the_full_profile():
    user = UserFactory(
        username="ada",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        bio="Poet of numbers",
        avatar_url="https://lh3.googleusercontent.com/ada.png",
        oauth_provider="google",
        oauth_uid="sub-1",
    )
    response = auth_client(user).get(ME_URL)
    assert response.status_code == 200
    assert response.json() == {
        "id": user.id,
        "username": "ada",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "user",
        "avatar": "https://lh3.googleusercontent.com/ada.png",
        "bio": "Poet of numbers",
        "oauth_provider": "google",
        "timezone": "UTC",
        "date_joined": user.date_joined.isoformat().replace("+00:00", "Z"),
        "calendar_feed_url": f"http://testserver/api/calendar/{user.calendar_token}.ics",
    }


def test_uploaded_avatar_wins_over_provider_picture(user, user_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    user.avatar_url = "https://avatars.githubusercontent.com/u/1"
    user.avatar.save("me.png", SimpleUploadedFile("me.png", b"png"), save=True)
    avatar = user_client.get(ME_URL).json()["avatar"]
    assert avatar.startswith("http://testserver/media/avatars/me")


def test_password_account_has_null_provider_and_avatar(user_client):
    body = user_client.get(ME_URL).json()
    assert body["oauth_provider"] is None
    assert body["avatar"] is None


def test_me_needs_authentication(api_client):
    response = api_client.get(ME_URL)
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication credentials were not provided."


def test_patch_changes_only_the_fields_sent(user, user_client):
    response = user_client.patch(UPDATE_URL, {"bio": "I teach chess."})
    assert response.status_code == 200
    assert response.json()["bio"] == "I teach chess."
    user.refresh_from_db()
    assert user.bio == "I teach chess."
    assert user.first_name == response.json()["first_name"]


def test_put_replaces_name_and_bio(user, user_client):
    body = {"first_name": "Grace", "last_name": "Hopper", "bio": ""}
    response = user_client.put(UPDATE_URL, body)
    assert response.status_code == 200
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.bio) == ("Grace", "Hopper", "")


def test_put_needs_every_editable_field(user, user_client):
    before = User.objects.values().get(pk=user.pk)
    response = user_client.put(UPDATE_URL, {"first_name": "Grace"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"last_name", "bio"}
    assert User.objects.values().get(pk=user.pk) == before


@pytest.mark.parametrize(
    "changes",
    [
        {"role": "creator"},
        {"email": "attacker@example.com"},
        {"is_staff": True},
        {"is_superuser": True},
        {"is_active": False},
        {"oauth_provider": "github", "oauth_uid": "1"},
        {"username": "admin"},
        {"password": "new-password-123"},
        {"bio": "fine", "role": "creator"},
    ],
)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_protected_fields_are_400_and_nothing_changes(user, user_client, changes, method):
    before = User.objects.values().get(pk=user.pk)
    body = {"first_name": "New", "last_name": "Name", "bio": "New bio", **changes}

    response = getattr(user_client, method)(UPDATE_URL, body)

    assert response.status_code == 400
    protected = set(changes) - {"bio"}
    assert set(response.json()["errors"]) == protected
    assert all(
        msg[0].startswith("This field cannot be changed here.")
        for msg in response.json()["errors"].values()
    )
    assert User.objects.values().get(pk=user.pk) == before


def test_role_error_points_to_become_creator(user_client):
    response = user_client.patch(UPDATE_URL, {"role": "creator"})
    assert response.json()["errors"] == {
        "role": ["This field cannot be changed here. Use POST /api/users/become_creator/."]
    }


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"bio": "x" * 2001}, "bio"),
        ({"first_name": "x" * 151}, "first_name"),
        ({"last_name": None}, "last_name"),
        ({"first_name": "nul\x00byte"}, "first_name"),
    ],
)
def test_invalid_values_are_400_and_nothing_changes(user, user_client, changes, field):
    before = User.objects.values().get(pk=user.pk)
    response = user_client.patch(UPDATE_URL, changes)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert User.objects.values().get(pk=user.pk) == before


def test_update_profile_needs_authentication(api_client):
    assert api_client.patch(UPDATE_URL, {"bio": "x"}).status_code == 401


def test_update_profile_rejects_get(user_client):
    assert user_client.get(UPDATE_URL).status_code == 405


def test_become_creator_is_idempotent(user, user_client):
    first = user_client.post(BECOME_CREATOR_URL)
    assert first.status_code == 200
    assert first.json()["role"] == "creator"
    user.refresh_from_db()
    assert user.role == "creator"

    second = user_client.post(BECOME_CREATOR_URL)
    assert second.status_code == 200
    assert second.json() == first.json()
    assert User.objects.filter(role="creator").count() == 1


def test_become_creator_needs_authentication(api_client):
    assert api_client.post(BECOME_CREATOR_URL).status_code == 401


def test_users_endpoints_are_in_the_schema(api_client):
    paths = api_client.get("/swagger.json").json()["paths"]
    assert set(paths["/users/update_profile/"]) >= {"put", "patch"}
    assert "get" in paths["/users/me/"]
    assert "post" in paths["/users/become_creator/"]
    assert "post" in paths["/auth/oauth/login/"]
    assert "post" in paths["/auth/logout/"]


def test_uploaded_avatar_is_returned_as_an_absolute_url(db):
    from backend.tests.factories import UserFactory
    from backend.tests.support import auth_client

    user = UserFactory(avatar="avatars/abc.webp")
    body = auth_client(user).get("/api/users/me/").json()
    assert body["avatar"] == "http://testserver/media/avatars/abc.webp"
