"""POST /api/auth/oauth/login/ against stubbed Google and GitHub endpoints (`responses`).

Nothing reaches the internet: an unstubbed URL is a ConnectionError, which the API answers
502, so a test that forgot a stub fails loudly.
"""

import json
from functools import partial
from urllib.parse import parse_qs

import pytest
import requests
import responses
from django.db import DatabaseError
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from backend.integrations.oauth import (
    GITHUB_API_URL,
    GOOGLE_TOKENINFO_URL,
    GOOGLE_USERINFO_URL,
    GithubBackend,
    GoogleBackend,
)
from backend.models import User
from backend.services import users as user_services
from backend.tests.factories import UserFactory
from backend.tests.support import run_concurrently, wait_after

pytestmark = pytest.mark.django_db

URL = "/api/auth/oauth/login/"
GOOGLE_TOKEN_URL = GoogleBackend.ACCESS_TOKEN_URL
GITHUB_TOKEN_URL = GithubBackend.ACCESS_TOKEN_URL
GITHUB_USER_URL = f"{GITHUB_API_URL}user"
GITHUB_EMAILS_URL = f"{GITHUB_API_URL}user/emails"
GITHUB_CHECK_URL = f"{GITHUB_API_URL}applications/github-client-id/token"
REDIRECT_URI = "http://localhost:5173/auth/callback"
VERIFIER = "v" * 43


@pytest.fixture(autouse=True)
def _providers_configured(settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "google-client-id"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "google-secret"
    settings.SOCIAL_AUTH_GITHUB_KEY = "github-client-id"
    settings.SOCIAL_AUTH_GITHUB_SECRET = "github-secret"


@pytest.fixture
def provider():
    with responses.RequestsMock(assert_all_requests_are_fired=True) as mock:
        yield mock


def google_profile(**overrides) -> dict:
    return {
        "sub": "google-sub-1",
        "email": "ada@gmail.com",
        "email_verified": True,
        "name": "Ada Lovelace",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "picture": "https://lh3.googleusercontent.com/ada.png",
        **overrides,
    }


def stub_google_code(provider, **profile):
    provider.post(
        GOOGLE_TOKEN_URL,
        json={"access_token": "google-at", "token_type": "Bearer", "expires_in": 3599},
    )
    provider.get(GOOGLE_USERINFO_URL, json=google_profile(**profile))


def github_user(**overrides) -> dict:
    return {
        "id": 4242,
        "login": "octocat",
        "name": "Mona Octocat",
        "email": None,  # private email: not on the public profile
        "avatar_url": "https://avatars.githubusercontent.com/u/4242",
        **overrides,
    }


def stub_github_code(provider, *, emails, **user):
    provider.post(
        GITHUB_TOKEN_URL, json={"access_token": "gho_abc", "token_type": "bearer", "scope": ""}
    )
    provider.get(GITHUB_USER_URL, json=github_user(**user))
    provider.get(GITHUB_EMAILS_URL, json=emails)


def google_code_login(client, **extra):
    body = {"provider": "google", "code": "4/good-code", "redirect_uri": REDIRECT_URI, **extra}
    return client.post(URL, body)


def github_code_login(client, **extra):
    body = {"provider": "github", "code": "good-code", "redirect_uri": REDIRECT_URI, **extra}
    return client.post(URL, body)


VERIFIED_PRIMARY = [
    {"email": "old@work.example", "primary": False, "verified": True, "visibility": None},
    {"email": "mona@example.com", "primary": True, "verified": True, "visibility": "private"},
]


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


# --- Access-token shape --------------------------------------------------------------------


def test_google_access_token_for_our_client_signs_in(api_client, provider):
    provider.get(
        GOOGLE_TOKENINFO_URL,
        json={"aud": "google-client-id", "azp": "google-client-id", "sub": "google-sub-1"},
    )
    provider.get(GOOGLE_USERINFO_URL, json=google_profile())

    response = api_client.post(URL, {"provider": "google", "access_token": "ya29.token"})

    assert response.status_code == 200, response.json()
    assert response.json()["created"] is True
    assert provider.calls[0].request.params == {"access_token": "ya29.token"}


def test_google_access_token_for_another_client_is_rejected(api_client, provider):
    provider.get(
        GOOGLE_TOKENINFO_URL,
        json={"aud": "someone-elses-app", "azp": "someone-elses-app", "sub": "google-sub-1"},
    )

    response = api_client.post(URL, {"provider": "google", "access_token": "ya29.token"})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "This Google access token was issued to another application.",
        "code": "oauth_wrong_audience",
    }
    assert len(provider.calls) == 1  # the profile was never fetched
    assert User.objects.count() == 0
    assert OutstandingToken.objects.count() == 0


def test_google_invalid_access_token_is_400_with_reason(api_client, provider):
    provider.get(
        GOOGLE_TOKENINFO_URL,
        status=400,
        json={"error": "invalid_token", "error_description": "Invalid Value"},
    )
    response = api_client.post(URL, {"provider": "google", "access_token": "expired"})
    assert response.status_code == 400
    assert "Invalid Value" in response.json()["detail"]
    assert User.objects.count() == 0


def test_github_access_token_of_our_app_signs_in(api_client, provider):
    provider.post(GITHUB_CHECK_URL, json={"app": {"client_id": "github-client-id"}})
    provider.get(GITHUB_USER_URL, json=github_user())
    provider.get(GITHUB_EMAILS_URL, json=VERIFIED_PRIMARY)

    response = api_client.post(URL, {"provider": "github", "access_token": "gho_mobile"})

    assert response.status_code == 200, response.json()
    assert User.objects.get().email == "mona@example.com"
    check = provider.calls[0].request
    assert json.loads(check.body) == {"access_token": "gho_mobile"}
    assert check.headers["Authorization"].startswith("Basic ")


def test_github_access_token_of_another_app_is_rejected(api_client, provider):
    provider.post(GITHUB_CHECK_URL, status=404, json={"message": "Not Found"})
    response = api_client.post(URL, {"provider": "github", "access_token": "gho_other"})
    assert response.status_code == 400
    assert response.json()["code"] == "oauth_wrong_audience"
    assert User.objects.count() == 0


# --- Provider errors ------------------------------------------------------------------------


def test_github_bad_code_is_400_with_provider_reason(api_client, provider):
    provider.post(
        GITHUB_TOKEN_URL,
        json={
            "error": "bad_verification_code",
            "error_description": "The code passed is incorrect or expired.",
        },
    )
    response = github_code_login(api_client)
    assert response.status_code == 400
    assert response.json() == {
        "detail": "GitHub rejected the sign-in: bad_verification_code: "
        "The code passed is incorrect or expired.",
        "code": "oauth",
    }
    assert User.objects.count() == 0


def test_google_bad_code_is_400_with_provider_reason(api_client, provider):
    provider.post(
        GOOGLE_TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "Malformed auth code."},
    )
    response = google_code_login(api_client)
    assert response.status_code == 400
    assert "Malformed auth code." in response.json()["detail"]
    assert User.objects.count() == 0


def test_provider_unreachable_is_502(api_client, provider):
    provider.post(GOOGLE_TOKEN_URL, body=requests.ConnectionError("connection refused"))
    response = google_code_login(api_client)
    assert response.status_code == 502
    assert response.json() == {
        "detail": "Google could not be reached or failed (connection_failed). "
        "Please try again later.",
        "code": "provider_unavailable",
    }
    assert User.objects.count() == 0


def test_provider_failing_after_code_exchange_is_502_and_creates_nothing(api_client, provider):
    provider.post(GOOGLE_TOKEN_URL, json={"access_token": "google-at", "token_type": "Bearer"})
    provider.get(GOOGLE_USERINFO_URL, status=503, body="upstream down")
    response = google_code_login(api_client)
    assert response.status_code == 502
    assert User.objects.count() == 0


def test_provider_garbage_response_is_502(api_client, provider):
    provider.post(GITHUB_TOKEN_URL, body="<html>maintenance</html>", status=200)
    response = github_code_login(api_client)
    assert response.status_code == 502
    assert User.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"provider": "facebook", "access_token": "x"}, "provider"),
        ({"code": "x", "redirect_uri": REDIRECT_URI}, "provider"),
        ({"provider": "google"}, "code"),
        ({"provider": "github", "code": "x"}, "redirect_uri"),
        ({"provider": "github", "code": "x", "access_token": "y"}, "non_field_errors"),
        ({"provider": "google", "access_token": ""}, "access_token"),
        (
            {
                "provider": "google",
                "code": "x",
                "redirect_uri": REDIRECT_URI,
                "code_verifier": "short",
            },
            "code_verifier",
        ),
    ],
)
def test_bad_input_is_400_and_no_provider_is_called(api_client, provider, body, field):
    response = api_client.post(URL, body)
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert len(provider.calls) == 0
    assert User.objects.count() == 0


def test_non_object_body_is_400(api_client):
    response = api_client.post(URL, ["google"])
    assert response.status_code == 400


def test_provider_not_configured_is_503(api_client, provider, settings):
    settings.SOCIAL_AUTH_GITHUB_SECRET = ""
    response = github_code_login(api_client)
    assert response.status_code == 503
    assert response.json()["code"] == "not_configured"
    assert "SOCIAL_AUTH_GITHUB_KEY" in response.json()["detail"]
    assert len(provider.calls) == 0


def test_provider_rejecting_our_credentials_is_503(api_client, provider):
    provider.post(
        GOOGLE_TOKEN_URL,
        status=401,
        json={"error": "invalid_client", "error_description": "The OAuth client was not found."},
    )
    response = google_code_login(api_client)
    assert response.status_code == 503
    assert "client credentials" in response.json()["detail"]


# --- Accounts and transactions ----------------------------------------------------------


def test_deactivated_account_cannot_sign_in(api_client, provider):
    UserFactory(oauth_provider="google", oauth_uid="google-sub-1", is_active=False)
    stub_google_code(provider)
    response = google_code_login(api_client)
    assert response.status_code == 403
    assert response.json() == {"detail": "This account is deactivated.", "code": "account_inactive"}
    assert OutstandingToken.objects.count() == 0


def test_failure_after_creating_the_user_leaves_no_half_created_user(
    api_client, provider, monkeypatch
):
    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr("backend.services.users.update_last_login", fail)
    stub_google_code(provider)

    response = google_code_login(api_client)

    assert response.status_code == 400
    assert User.objects.count() == 0
    assert OutstandingToken.objects.count() == 0


def test_stale_authorization_header_does_not_block_sign_in(api_client, provider):
    stub_google_code(provider)
    response = api_client.post(
        URL,
        {"provider": "google", "code": "c", "redirect_uri": REDIRECT_URI},
        HTTP_AUTHORIZATION="Bearer not-a-jwt",
    )
    assert response.status_code == 200


def test_verified_email_never_links_a_staff_account(api_client, provider):
    admin = UserFactory(username="root", email="mona@example.com", is_staff=True)
    before = User.objects.values().get(pk=admin.pk)
    stub_github_code(provider, emails=VERIFIED_PRIMARY)

    response = github_code_login(api_client)

    assert response.status_code == 200
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != admin.id
    assert User.objects.values().get(pk=admin.pk) == before


def test_two_accounts_with_the_verified_email_link_neither(api_client, provider):
    UserFactory(email="mona@example.com")
    UserFactory(email="MONA@example.com")
    stub_github_code(provider, emails=VERIFIED_PRIMARY)
    response = github_code_login(api_client)
    assert response.json()["created"] is True
    assert User.objects.count() == 3


# --- Concurrent first sign-ins (PostgreSQL) -----------------------------------------------


def race_past_the_lookup(monkeypatch, count_: int, request) -> list:
    """Run `request` in threads that all pass the account lookup before any creates one."""
    wait_after(monkeypatch, user_services, "_user_for_identity", parties=count_)
    return run_concurrently(
        [partial(request, index) for index in range(count_)],
        start_together=False,
        raise_errors=True,
    )


def concurrent_google_stubs(provider, profiles):
    # Each thread sends its own code; the token and profile endpoints answer per code.
    def token_callback(request):
        code = parse_qs(request.body)["code"][0]
        return 200, {}, json.dumps({"access_token": f"at-{code}", "token_type": "Bearer"})

    def profile_callback(request):
        index = int(request.headers["Authorization"].rsplit("-", 1)[1])
        return 200, {}, json.dumps(google_profile(**profiles[index]))

    provider.add_callback("POST", GOOGLE_TOKEN_URL, callback=token_callback)
    provider.add_callback("GET", GOOGLE_USERINFO_URL, callback=profile_callback)


def google_login_with_code(index):
    body = {"provider": "google", "code": str(index), "redirect_uri": REDIRECT_URI}
    response = APIClient().post(URL, body)
    return response.status_code, response.json()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_double_submitted_first_sign_in_creates_one_account(monkeypatch):
    with responses.RequestsMock() as provider:
        concurrent_google_stubs(provider, [{}, {}])
        results = race_past_the_lookup(monkeypatch, 2, google_login_with_code)

    assert [status for status, _ in results] == [200, 200]
    assert sorted(body["created"] for _, body in results) == [False, True]
    assert {body["user"]["id"] for _, body in results} == {User.objects.get().id}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_with_one_username_sign_up_at_once(monkeypatch):
    profiles = [
        {"sub": "sub-a", "email": "sam@gmail.com"},
        {"sub": "sub-b", "email": "sam@example.org"},
    ]
    with responses.RequestsMock() as provider:
        concurrent_google_stubs(provider, profiles)
        results = race_past_the_lookup(monkeypatch, 2, google_login_with_code)

    assert [status for status, _ in results] == [200, 200]
    assert all(body["created"] for _, body in results)
    assert sorted(User.objects.values_list("username", flat=True)) == ["sam", "sam2"]
