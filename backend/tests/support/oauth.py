"""Helpers for the OAuth sign-in tests (test_auth_oauth_*.py): URLs, profiles, provider stubs.

The stubs take the `provider` fixture (a `responses` mock) from the plugin. Nothing reaches
the internet: an unstubbed URL is a ConnectionError, which the API answers 502, so a test that
forgot a stub fails loudly.
"""

from backend.integrations.oauth import (
    GITHUB_API_URL,
    GOOGLE_USERINFO_URL,
    GithubBackend,
    GoogleBackend,
)

URL = "/api/auth/oauth/login/"
GOOGLE_TOKEN_URL = GoogleBackend.ACCESS_TOKEN_URL
GITHUB_TOKEN_URL = GithubBackend.ACCESS_TOKEN_URL
GITHUB_USER_URL = f"{GITHUB_API_URL}user"
GITHUB_EMAILS_URL = f"{GITHUB_API_URL}user/emails"
REDIRECT_URI = "http://localhost:5173/auth/callback"


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
