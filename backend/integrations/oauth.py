"""Google and GitHub sign-in: the only module that talks to OAuth providers.

It turns what a frontend posts (an authorization code, or a provider access token) into a
`ProviderIdentity` the user service can trust. The protocol work (token endpoint parameters,
client credentials, profile and email endpoints, classifying provider errors) is done by
social-core's backends; this module adds what a token-based API needs on top of them:

- the access-token shape checks that the token was issued to *our* client (Google: `aud`/`azp`
  from tokeninfo; GitHub: the OAuth app's token check endpoint), so a token another app
  obtained for the same person cannot be replayed here;
- whether the email is verified is reported, never assumed (GitHub: the verified primary
  address from /user/emails; Google: `email_verified`), because the user service links
  accounts by email only when it is;
- every failure becomes a domain error: the provider rejected the input (400, with its
  reason), the provider is unreachable or broken (502), the provider is not configured (503).

No database access happens here: provider calls run before the sign-in transaction opens.
Every provider request has social-core's timeout (5 s unless SOCIAL_AUTH_REQUESTS_TIMEOUT is
set), so a hung provider answers 502 instead of pinning a worker.
"""

import logging
from dataclasses import dataclass
from typing import Any

from social_core.backends.github import GithubOAuth2
from social_core.backends.google import GoogleOAuth2
from social_core.backends.oauth import BaseOAuth2
from social_core.exceptions import (
    AuthConfigurationError,
    AuthProviderError,
    AuthResponseError,
    SocialAuthBaseException,
)
from social_core.utils import normalize_user_names
from social_django.utils import load_strategy

from backend.exceptions import IntegrationNotConfigured, IntegrationUnavailable, ValidationFailed
from backend.integrations.lock_guard import assert_no_row_locks

logger = logging.getLogger(__name__)

GOOGLE_TOKENINFO_URL = "https://oauth2.googleapis.com/tokeninfo"
GOOGLE_USERINFO_URL = "https://www.googleapis.com/oauth2/v3/userinfo"
GITHUB_API_URL = "https://api.github.com/"
# Provider texts are echoed to the client; keep them short.
MAX_REASON_LENGTH = 300

# Transport-level failures and provider outages: the client cannot fix these (502).
UNAVAILABLE_CODES = {"connection_failed", "timeout", "tls_error", "unavailable", "rate_limited"}
# The provider rejected this server's client id/secret: an operator problem (503).
MISCONFIGURED_PROVIDER_CODES = {"invalid_client", "unauthorized_client"}


@dataclass(frozen=True)
class ProviderIdentity:
    """Who the provider says signed in. `email` is "" when the provider gave none."""

    provider: str  # "google" | "github", as stored in User.oauth_provider
    uid: str  # the provider's stable user id (Google `sub`, GitHub numeric `id`)
    email: str
    email_verified: bool
    first_name: str
    last_name: str
    username_hint: str
    avatar_url: str


class GoogleBackend(GoogleOAuth2):
    """social-core's Google backend, minus its refusal of unverified emails.

    social-core rejects the whole sign-in when `email_verified` is not true. We sign such a
    person in without trusting the email (no account linking by it, not stored), which is
    what the no-takeover rule needs and what GitHub users with unverified emails get too.
    """

    def user_data(self, access_token: str, *args, **kwargs) -> dict[str, Any] | None:
        return self.get_json(
            GOOGLE_USERINFO_URL, headers={"Authorization": f"Bearer {access_token}"}
        )


class GithubBackend(GithubOAuth2):
    pass


PROVIDERS: dict[str, type[BaseOAuth2]] = {"google": GoogleBackend, "github": GithubBackend}
# The provider's stable account id in its profile response.
ID_KEYS = {"google": "sub", "github": "id"}


@dataclass(frozen=True)
class ProviderForClient:
    """What a SPA needs to send a person to the provider's consent page (no secret)."""

    provider: str
    name: str
    client_id: str
    authorize_url: str
    scopes: list[str]
    scope: str  # the scopes joined as the provider expects them in the `scope` parameter


def enabled_providers() -> list[ProviderForClient]:
    """The providers with both a client id and a secret set, with social-core's authorize URL
    and scopes (its defaults plus SOCIAL_AUTH_<PROVIDER>_SCOPE)."""
    providers = []
    strategy = load_strategy()
    for provider, backend_class in PROVIDERS.items():
        backend = backend_class(strategy=strategy)
        key, secret = backend.get_key_and_secret()
        if not key or not secret:
            continue
        scopes = [str(scope) for scope in backend.get_scope()]
        providers.append(
            ProviderForClient(
                provider=provider,
                name=getattr(backend, "title", provider.title()),
                client_id=key,
                authorize_url=backend.authorization_url(),
                scopes=scopes,
                scope=backend.SCOPE_SEPARATOR.join(scopes),
            )
        )
    return providers


def _backend(provider: str, *, redirect_uri: str | None = None) -> BaseOAuth2:
    try:
        backend_class = PROVIDERS[provider]
    except KeyError as error:
        raise ValidationFailed(
            f"Unknown provider {provider!r}; use one of: {', '.join(PROVIDERS)}.",
            code="unknown_provider",
        ) from error
    backend = backend_class(strategy=load_strategy(), redirect_uri=redirect_uri)
    key, secret = backend.get_key_and_secret()
    if not key or not secret:
        prefix = "SOCIAL_AUTH_GOOGLE_OAUTH2" if provider == "google" else "SOCIAL_AUTH_GITHUB"
        raise IntegrationNotConfigured(
            f"Sign-in with {backend.title} is not configured on this server "
            f"({prefix}_KEY and {prefix}_SECRET are not set)."
        )
    return backend


def _reason(error: SocialAuthBaseException) -> str:
    reason = error.detail or str(error)
    if error.provider_code and str(error.provider_code) not in reason:
        reason = f"{error.provider_code}: {reason}"
    return reason[:MAX_REASON_LENGTH]


def _translate(backend: BaseOAuth2, error: SocialAuthBaseException) -> Exception:
    """Map social-core's classified errors onto the API's 400/502/503."""
    title = backend.title
    status_code = getattr(error, "status_code", None)
    if isinstance(error, AuthConfigurationError):
        if str(error.provider_code) in MISCONFIGURED_PROVIDER_CODES:
            logger.error("%s rejected our OAuth client credentials: %s", title, _reason(error))
            return IntegrationNotConfigured(
                f"Sign-in with {title} is misconfigured on this server: the provider "
                f"rejected its client credentials ({error.provider_code})."
            )
        if error.provider_code is None:
            # A bad setting on our side (for example an unusable URL), not a provider answer.
            logger.error("%s integration misconfigured: %s", title, error)
            return IntegrationNotConfigured(f"Sign-in with {title} is misconfigured.")
        return ValidationFailed(f"{title} rejected the request: {_reason(error)}", code="oauth")
    if isinstance(error, AuthProviderError) and (
        error.code in UNAVAILABLE_CODES or (status_code is not None and status_code >= 500)
    ):
        logger.warning("%s unavailable: %s (%s)", title, error.code, status_code)
        return IntegrationUnavailable(
            f"{title} could not be reached or failed ({error.code}). Please try again later.",
            code="provider_unavailable",
        )
    if isinstance(error, AuthResponseError):
        logger.warning("%s sent an unusable response: %s", title, error)
        return IntegrationUnavailable(
            f"{title} returned a response this server cannot use ({error.code}).",
            code="provider_unavailable",
        )
    return ValidationFailed(f"{title} rejected the sign-in: {_reason(error)}", code="oauth")


def _identity(
    backend: BaseOAuth2, provider: str, profile: dict[str, Any] | None
) -> ProviderIdentity:
    if not isinstance(profile, dict):
        raise AuthResponseError(backend, code="malformed_response", stage="user_info")
    uid = backend.get_user_id_from_sources(profile, id_key=ID_KEYS[provider])
    details = backend.get_user_details(profile)
    _, first_name, last_name = normalize_user_names(
        details.get("fullname"), details.get("first_name"), details.get("last_name")
    )
    if provider == "github":
        # Trust only the primary address GitHub lists as verified (needs the user:email
        # scope); the profile's public email says nothing about verification.
        emails = profile.get("emails") or []
        primary = next(
            (e for e in emails if isinstance(e, dict) and e.get("primary") and e.get("email")),
            None,
        )
        email = primary["email"] if primary else (profile.get("email") or "")
        email_verified = bool(primary and primary.get("verified") is True)
        avatar_url = profile.get("avatar_url") or ""
        username_hint = profile.get("login") or ""
    else:
        email = profile.get("email") or ""
        email_verified = profile.get("email_verified") is True
        avatar_url = profile.get("picture") or ""
        username_hint = email.split("@", 1)[0]
    return ProviderIdentity(
        provider=provider,
        uid=str(uid),
        email=str(email).strip(),
        email_verified=email_verified,
        first_name=first_name[:150],
        last_name=last_name[:150],
        username_hint=str(username_hint),
        avatar_url=str(avatar_url)[:500],
    )


def identity_from_code(
    *, provider: str, code: str, redirect_uri: str, code_verifier: str | None = None
) -> ProviderIdentity:
    """Exchange an authorization code (with our client secret) and read the profile.

    `redirect_uri` must be the one the frontend sent the user to the provider with, and
    `code_verifier` the PKCE verifier when the frontend used a code challenge.
    """
    assert_no_row_locks("OAuth code exchange")
    backend = _backend(provider, redirect_uri=redirect_uri)
    backend.data = {"code": code}
    params = backend.auth_complete_params()
    if code_verifier:
        params["code_verifier"] = code_verifier
    try:
        response = backend.request_access_token(
            backend.access_token_url(),
            data=params,
            headers=backend.auth_headers(),
            auth=backend.auth_complete_credentials(),
            method=backend.ACCESS_TOKEN_METHOD,
        )
        access_token = backend.get_access_token(response)
        return _identity(backend, provider, backend.user_data(access_token))
    except SocialAuthBaseException as error:
        raise _translate(backend, error) from error


def identity_from_access_token(*, provider: str, access_token: str) -> ProviderIdentity:
    """Read the profile behind a provider access token, after checking it is ours."""
    assert_no_row_locks("OAuth profile lookup")
    backend = _backend(provider)
    try:
        if provider == "google":
            _check_google_token_audience(backend, access_token)
        else:
            _check_github_token_owner(backend, access_token)
        return _identity(backend, provider, backend.user_data(access_token))
    except SocialAuthBaseException as error:
        raise _translate(backend, error) from error


def _check_google_token_audience(backend: BaseOAuth2, access_token: str) -> None:
    # Without this, any app could hand us a token some user granted *it* and sign in as them.
    info = backend.get_json(
        GOOGLE_TOKENINFO_URL,
        params={"access_token": access_token},
        stage="token_validation",
    )
    if not isinstance(info, dict):
        raise AuthResponseError(backend, code="malformed_response", stage="token_validation")
    client_id, _ = backend.get_key_and_secret()
    if client_id not in {info.get("aud"), info.get("azp")}:
        raise ValidationFailed(
            "This Google access token was issued to another application.",
            code="oauth_wrong_audience",
        )


def _check_github_token_owner(backend: BaseOAuth2, access_token: str) -> None:
    # GitHub's "check a token" endpoint answers 404 unless the token belongs to our OAuth app.
    client_id, client_secret = backend.get_key_and_secret()
    try:
        backend.get_json(
            f"{GITHUB_API_URL}applications/{client_id}/token",
            method="POST",
            json={"access_token": access_token},
            auth=(client_id, client_secret),
            headers={"Accept": "application/vnd.github+json"},
            stage="token_validation",
        )
    except AuthProviderError as error:
        if error.status_code in {404, 422}:
            raise ValidationFailed(
                "This GitHub access token is invalid or was issued to another application.",
                code="oauth_wrong_audience",
            ) from error
        raise
