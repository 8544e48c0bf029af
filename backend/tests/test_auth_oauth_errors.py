"""OAuth sign-in with stubbed providers: access-token checks, provider errors, bad input."""

import json

import pytest
import requests
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from backend.integrations.oauth import GITHUB_API_URL, GOOGLE_TOKENINFO_URL, GOOGLE_USERINFO_URL
from backend.models import User
from backend.tests.support.oauth import (
    GITHUB_EMAILS_URL,
    GITHUB_TOKEN_URL,
    GITHUB_USER_URL,
    GOOGLE_TOKEN_URL,
    REDIRECT_URI,
    URL,
    VERIFIED_PRIMARY,
    github_code_login,
    github_user,
    google_code_login,
    google_profile,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("oauth_providers")]

GITHUB_CHECK_URL = f"{GITHUB_API_URL}applications/github-client-id/token"


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
