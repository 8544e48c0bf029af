"""Users: sign-in with Google/GitHub, the JWT lifecycle, profile and role changes.

Account matching (no takeover): a provider identity finds its account by (oauth_provider,
oauth_uid), which the database keeps unique. Failing that, it links to an existing account
by email only when the provider vouches that the email is verified and exactly one account
has it. Otherwise it gets a new account, and an unverified email is not even stored on it:
a stored address is one a later verified sign-in may link to.

Token lifecycle: refresh tokens rotate and the used one is blacklisted in the same
transaction, under a row lock on its OutstandingToken, so two concurrent refreshes with one
token give exactly one new pair. Logout blacklists the refresh token and the access token
that made the call; `backend.authentication.JWTAuthentication` refuses blacklisted access
tokens (stock simplejwt only blacklists refresh tokens).
"""

import logging
import re
from dataclasses import dataclass
from itertools import count

from django.contrib.auth.models import update_last_login
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token
from rest_framework_simplejwt.utils import aware_utcnow, datetime_from_epoch

from backend import catalog_cache
from backend.exceptions import Forbidden, ValidationFailed
from backend.integrations import oauth
from backend.integrations.oauth import ProviderIdentity
from backend.models import User
from backend.models.users import new_calendar_token

logger = logging.getLogger(__name__)

# Attempts at a fresh username when a concurrent sign-up takes the one we picked.
USERNAME_ATTEMPTS = 5
USERNAME_BASE_MAX_LENGTH = 30
EMAIL_MAX_LENGTH = 254


@dataclass(frozen=True)
class SignIn:
    user: User
    created: bool
    access: str
    refresh: str


# --- OAuth sign-in ------------------------------------------------------------------------


def user_oauth_login(
    *,
    provider: str,
    code: str | None = None,
    redirect_uri: str | None = None,
    code_verifier: str | None = None,
    access_token: str | None = None,
    role: str | None = None,
) -> SignIn:
    """Sign in (or sign up) with a provider authorization code or access token.

    The provider is asked first, outside any transaction (a slow provider must not hold a
    database connection in a transaction); the account and the tokens are then written in
    one transaction, so a failure leaves no half-created user.
    """
    if access_token:
        identity = oauth.identity_from_access_token(provider=provider, access_token=access_token)
    else:
        identity = oauth.identity_from_code(
            provider=provider,
            code=code or "",
            redirect_uri=redirect_uri or "",
            code_verifier=code_verifier,
        )
    return user_sign_in_with_identity(identity=identity, role=role)


@transaction.atomic
def user_sign_in_with_identity(*, identity: ProviderIdentity, role: str | None = None) -> SignIn:
    """Find or create the account for a provider identity and issue a token pair.

    `role="creator"` applies to a new account only; an existing account keeps its role.
    """
    user = _user_for_identity(identity)
    created = False
    if user is None:
        user, created = _user_create_from_identity(identity=identity, role=role or User.Role.USER)
    if not user.is_active:
        raise Forbidden("This account is deactivated.", code="account_inactive")
    if not created:
        _user_refresh_from_identity(user=user, identity=identity)
    refresh = RefreshToken.for_user(user)
    update_last_login(User, user)
    logger.info("user %s signed in with %s (created=%s)", user.pk, identity.provider, created)
    return SignIn(
        user=user, created=created, access=str(refresh.access_token), refresh=str(refresh)
    )


def _user_for_identity(identity: ProviderIdentity) -> User | None:
    user = User.objects.filter(oauth_provider=identity.provider, oauth_uid=identity.uid).first()
    if user is not None:
        return user
    if identity.email_verified and identity.email:
        # Two accounts with one address: linking to either could be the wrong person.
        matches = list(User.objects.filter(email__iexact=identity.email)[:2])
        # Staff accounts sign in with their password only: a provider account with the
        # same address gets an ordinary account of its own, never the staff one.
        if len(matches) == 1 and not (matches[0].is_staff or matches[0].is_superuser):
            return matches[0]
    return None


def _trusted_email(identity: ProviderIdentity) -> str:
    if identity.email_verified and 0 < len(identity.email) <= EMAIL_MAX_LENGTH:
        return identity.email
    return ""


def _user_refresh_from_identity(*, user: User, identity: ProviderIdentity) -> None:
    """Update a returning account from the provider without overwriting profile edits."""
    changed: list[str] = []
    if not user.oauth_uid:
        # An account found by verified email (a password account, or one made with the other
        # provider before) records this identity, so the next sign-in matches it directly.
        user.oauth_provider, user.oauth_uid = identity.provider, identity.uid
        changed += ["oauth_provider", "oauth_uid"]
    is_this_identity = (user.oauth_provider, user.oauth_uid) == (identity.provider, identity.uid)
    email = _trusted_email(identity)
    if is_this_identity and email and email.lower() != user.email.lower():
        user.email = email
        changed.append("email")
    if is_this_identity and identity.avatar_url and identity.avatar_url != user.avatar_url:
        user.avatar_url = identity.avatar_url
        changed.append("avatar_url")
    for field in ("first_name", "last_name"):
        if not getattr(user, field) and getattr(identity, field):
            setattr(user, field, getattr(identity, field))
            changed.append(field)
    if changed:
        user.save(update_fields=changed)


def _username_base(identity: ProviderIdentity) -> str:
    raw = identity.username_hint or identity.email.split("@", 1)[0]
    # Django's username validator allows letters, digits and . + - _ (and @, left out here).
    base = re.sub(r"[^\w.+-]", "", raw)[:USERNAME_BASE_MAX_LENGTH]
    return base or f"{identity.provider}-user"


def _unique_username(base: str) -> str:
    taken = {
        name.lower()
        for name in User.objects.filter(username__istartswith=base).values_list(
            "username", flat=True
        )
    }
    if base.lower() not in taken:
        return base
    return next(f"{base}{n}" for n in count(2) if f"{base}{n}".lower() not in taken)


def _user_create_from_identity(*, identity: ProviderIdentity, role: str) -> tuple[User, bool]:
    base = _username_base(identity)
    for _ in range(USERNAME_ATTEMPTS):
        user = User(
            username=_unique_username(base),
            email=_trusted_email(identity),
            first_name=identity.first_name,
            last_name=identity.last_name,
            avatar_url=identity.avatar_url,
            oauth_provider=identity.provider,
            oauth_uid=identity.uid,
            role=role,
        )
        user.set_unusable_password()
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:
            # Either the same person signed up concurrently (their identity now exists) or
            # someone else took this username a moment ago (pick another one).
            existing = User.objects.filter(
                oauth_provider=identity.provider, oauth_uid=identity.uid
            ).first()
            if existing is not None:
                return existing, False
            continue
        return user, True
    raise ValidationFailed(
        "Could not pick a username for this account; please try again.", code="username_taken"
    )


# --- JWT lifecycle ------------------------------------------------------------------------


def _verified_refresh_token(raw_refresh: str) -> RefreshToken:
    """Signature, expiry, token type and blacklist, checked without any lock (fast path)."""
    try:
        # simplejwt annotates `token` as a Token; it takes the encoded string.
        return RefreshToken(raw_refresh)  # type: ignore[arg-type]
    except TokenError as error:
        raise InvalidToken(error.args[0]) from error


def _locked_outstanding_token(token: Token, *, user: User | None) -> OutstandingToken:
    """The token's OutstandingToken row, created if needed, locked until commit.

    Caller is inside a transaction. Tokens issued by `for_user` already have their row; the
    get_or_create covers access tokens (logout) and tokens issued before the blacklist app.
    """
    jti = token[jwt_settings.JTI_CLAIM]
    locked = OutstandingToken.objects.select_for_update().filter(jti=jti).first()
    if locked is not None:
        return locked
    OutstandingToken.objects.get_or_create(
        jti=jti,
        defaults={
            "user": user,
            "token": str(token),
            "created_at": datetime_from_epoch(token["iat"]) if "iat" in token else aware_utcnow(),
            "expires_at": datetime_from_epoch(token["exp"]),
        },
    )
    return OutstandingToken.objects.select_for_update().get(jti=jti)


def _blacklist_once(outstanding: OutstandingToken) -> None:
    """Blacklist a locked token; a token blacklisted meanwhile is a 401, never a success."""
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        raise InvalidToken("Token is blacklisted")
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError as error:
        # Unreachable while the caller holds the row lock; the unique constraint is the
        # backstop should a caller ever skip it.
        raise InvalidToken("Token is blacklisted") from error


def _active_user_of(token: Token) -> User:
    user_id = token.get(jwt_settings.USER_ID_CLAIM)
    user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
    if user is None or not user.is_active:
        raise AuthenticationFailed(
            "No active account found for the given token.", code="no_active_account"
        )
    return user


def auth_token_refresh(*, raw_refresh: str) -> dict[str, str]:
    """Rotate a refresh token: blacklist it and return a new `{access, refresh}` pair.

    Two requests racing with the same token both pass the unlocked check; the row lock
    makes the second wait for the first to commit, then see the token blacklisted (401).
    """
    refresh = _verified_refresh_token(raw_refresh)
    with transaction.atomic():
        user = _active_user_of(refresh)
        _blacklist_once(_locked_outstanding_token(refresh, user=user))
        new_refresh = RefreshToken.for_user(user)
    return {"access": str(new_refresh.access_token), "refresh": str(new_refresh)}


@transaction.atomic
def auth_logout(*, user: User, raw_refresh: str, access_token: Token | None) -> None:
    """End a session: blacklist its refresh token and the access token making the call.

    `access_token` is None only for a caller authenticated some other way than a JWT.
    """
    refresh = _verified_refresh_token(raw_refresh)
    if str(refresh.get(jwt_settings.USER_ID_CLAIM)) != str(user.pk):
        raise ValidationFailed(
            "This refresh token belongs to another account.", code="token_mismatch"
        )
    _blacklist_once(_locked_outstanding_token(refresh, user=user))
    if access_token is not None:
        _blacklist_once(_locked_outstanding_token(access_token, user=user))


# --- Profile and role -----------------------------------------------------------------------


@transaction.atomic
def user_update_profile(
    *,
    user: User,
    first_name: str | None = None,
    last_name: str | None = None,
    bio: str | None = None,
    timezone: str | None = None,
) -> User:
    """Change the editable profile fields; None leaves a field as it is. `timezone` was
    validated (an IANA name) by the serializer; the model's validator says the same."""
    changes = {"first_name": first_name, "last_name": last_name, "bio": bio, "timezone": timezone}
    changed = [field for field, value in changes.items() if value is not None]
    for field in changed:
        setattr(user, field, changes[field])
    if changed:
        user.save(update_fields=changed)
        catalog_cache.creators_changed()  # catalog entries show their creator's name
    return user


@transaction.atomic
def user_calendar_token_rotate(*, user: User) -> User:
    """A new secret for the user's calendar feed: the old URL 404s from the commit on."""
    user.calendar_token = new_calendar_token()
    user.save(update_fields=["calendar_token"])
    return user


@transaction.atomic
def user_become_creator(*, user: User) -> User:
    """Make the user a creator. Idempotent: a creator stays a creator, nothing is written."""
    if user.role != User.Role.CREATOR:
        user.role = User.Role.CREATOR
        user.save(update_fields=["role"])
    return user
