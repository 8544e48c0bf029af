"""OAuth sign-in with stubbed Google and GitHub: new and returning users, email matching."""

from urllib.parse import parse_qs

import pytest

from backend.models import User
from backend.tests.factories import UserFactory
from backend.tests.support.oauth import (
    REDIRECT_URI,
    VERIFIED_PRIMARY,
    github_code_login,
    google_code_login,
    stub_github_code,
    stub_google_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("oauth_providers")]

VERIFIER = "v" * 43


# --- New and returning users ------------------------------------------------------------


def test_google_code_creates_user_and_returns_working_tokens(api_client, provider):
    stub_google_code(provider)

    response = google_code_login(api_client, code_verifier=VERIFIER)

    assert response.status_code == 200, response.json()
    body = response.json()
    assert set(body) == {"access", "refresh", "user", "created"}
    assert body["created"] is True
    user = User.objects.get()
    assert body["user"] == {
        "id": user.id,
        "username": "ada",
        "email": "ada@gmail.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "user",
        "avatar": "https://lh3.googleusercontent.com/ada.png",
        "bio": "",
        "oauth_provider": "google",
        "timezone": "UTC",
        "date_joined": body["user"]["date_joined"],
    }
    assert (user.oauth_provider, user.oauth_uid) == ("google", "google-sub-1")
    assert not user.has_usable_password()
    assert user.last_login is not None
    # The code exchange used our secret, the frontend's redirect_uri and PKCE verifier.
    sent = parse_qs(provider.calls[0].request.body)
    assert sent == {
        "grant_type": ["authorization_code"],
        "code": ["4/good-code"],
        "redirect_uri": [REDIRECT_URI],
        "client_id": ["google-client-id"],
        "client_secret": ["google-secret"],
        "code_verifier": [VERIFIER],
    }
    assert provider.calls[1].request.headers["Authorization"] == "Bearer google-at"

    me = api_client.get("/api/users/me/", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert me.status_code == 200
    assert me.json()["id"] == user.id
    refreshed = api_client.post("/api/auth/token/refresh/", {"refresh": body["refresh"]})
    assert refreshed.status_code == 200


def test_returning_google_user_gets_same_account_and_keeps_profile_edits(api_client, provider):
    stub_google_code(provider)
    first = google_code_login(api_client).json()
    User.objects.filter(pk=first["user"]["id"]).update(first_name="Augusta", bio="Mathematician")

    stub_google_code(provider, picture="https://lh3.googleusercontent.com/new.png")
    response = google_code_login(api_client)

    assert response.status_code == 200
    body = response.json()
    assert body["created"] is False
    assert body["user"]["id"] == first["user"]["id"]
    assert User.objects.count() == 1
    user = User.objects.get()
    assert user.first_name == "Augusta"
    assert user.bio == "Mathematician"
    assert user.avatar_url == "https://lh3.googleusercontent.com/new.png"


def test_role_creator_applies_on_signup(api_client, provider):
    stub_google_code(provider)
    response = google_code_login(api_client, role="creator")
    assert response.status_code == 200
    assert response.json()["user"]["role"] == "creator"
    assert User.objects.get().role == "creator"


def test_role_creator_is_ignored_for_an_existing_account(api_client, provider):
    existing = UserFactory(oauth_provider="google", oauth_uid="google-sub-1", role="user")
    stub_google_code(provider)
    response = google_code_login(api_client, role="creator")
    assert response.status_code == 200
    assert response.json()["created"] is False
    existing.refresh_from_db()
    assert existing.role == "user"


def test_unknown_role_is_400_and_nothing_is_called(api_client, provider):
    response = google_code_login(api_client, role="admin")
    assert response.status_code == 400
    assert "role" in response.json()["errors"]
    assert len(provider.calls) == 0
    assert User.objects.count() == 0


# --- Email matching: only verified emails link accounts ---------------------------------


def test_github_private_email_uses_verified_primary_from_user_emails(api_client, provider):
    stub_github_code(provider, emails=VERIFIED_PRIMARY)

    response = github_code_login(api_client)

    assert response.status_code == 200, response.json()
    user = User.objects.get()
    assert user.email == "mona@example.com"
    assert (user.username, user.first_name, user.last_name) == ("octocat", "Mona", "Octocat")
    assert (user.oauth_provider, user.oauth_uid) == ("github", "4242")
    assert user.avatar_url == "https://avatars.githubusercontent.com/u/4242"
    assert provider.calls[1].request.headers["Authorization"] == "token gho_abc"
    sent = parse_qs(provider.calls[0].request.body)
    assert sent["client_secret"] == ["github-secret"]
    assert "code_verifier" not in sent


def test_verified_email_links_existing_account(api_client, provider):
    existing = UserFactory(username="mona", email="Mona@Example.com")
    stub_github_code(provider, emails=VERIFIED_PRIMARY)

    response = github_code_login(api_client)

    assert response.status_code == 200
    assert response.json()["created"] is False
    assert response.json()["user"]["id"] == existing.id
    assert User.objects.count() == 1
    existing.refresh_from_db()
    assert (existing.oauth_provider, existing.oauth_uid) == ("github", "4242")
    assert existing.username == "mona"


def test_unverified_email_matching_an_account_gets_a_new_account(api_client, provider):
    victim = UserFactory(username="mona", email="mona@example.com", role="creator")
    before = User.objects.values().get(pk=victim.pk)
    unverified = [{"email": "mona@example.com", "primary": True, "verified": False}]
    stub_github_code(provider, emails=unverified, login="mona")

    response = github_code_login(api_client)

    assert response.status_code == 200
    body = response.json()
    assert body["created"] is True
    assert body["user"]["id"] != victim.id
    # A different username, no email stored (an unverified address must not link later).
    assert body["user"]["username"] == "mona2"
    assert body["user"]["email"] == ""
    assert User.objects.values().get(pk=victim.pk) == before
    assert User.objects.count() == 2


def test_unverified_google_email_is_not_linked_nor_stored(api_client, provider):
    victim = UserFactory(email="ada@gmail.com")
    stub_google_code(provider, email_verified=False)

    response = google_code_login(api_client)

    assert response.status_code == 200
    assert response.json()["created"] is True
    new_user = User.objects.exclude(pk=victim.pk).get()
    assert new_user.email == ""
    assert new_user.username == "ada"


def test_same_email_local_part_from_two_people_gets_two_usernames(api_client, provider):
    stub_google_code(provider, sub="sub-a", email="sam@gmail.com")
    first = google_code_login(api_client).json()
    stub_google_code(provider, sub="sub-b", email="sam@example.org")
    second = google_code_login(api_client).json()

    assert first["user"]["username"] == "sam"
    assert second["user"]["username"] == "sam2"
    assert User.objects.count() == 2
