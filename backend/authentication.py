"""JWT authentication that also honours logout.

Stock simplejwt checks the blacklist for refresh tokens only, so an access token stays valid
until it expires (a day here) even after logout. Logout blacklists the access token's jti
too; this class refuses such tokens. The check rides on the user query simplejwt makes
anyway (an EXISTS annotation), so an authenticated request costs no extra query.
"""

from django.db.models import Exists
from rest_framework_simplejwt import authentication
from rest_framework_simplejwt.exceptions import AuthenticationFailed, InvalidToken
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken

from backend.models import User


class JWTAuthentication(authentication.JWTAuthentication):
    # simplejwt annotates its get_user with an unbound TypeVar, which no subclass can match.
    def get_user(self, validated_token) -> User:  # type: ignore[override]
        try:
            user_id = validated_token[api_settings.USER_ID_CLAIM]
        except KeyError as error:
            raise InvalidToken("Token contained no recognizable user identification") from error
        jti = validated_token.get(api_settings.JTI_CLAIM)
        revoked = BlacklistedToken.objects.filter(token__jti=jti)
        user = (
            User.objects.annotate(token_revoked=Exists(revoked))
            .filter(**{api_settings.USER_ID_FIELD: user_id})
            .first()
        )
        if user is None:
            raise AuthenticationFailed("User not found", code="user_not_found")
        if user.token_revoked:
            raise InvalidToken("Token is blacklisted")
        if not user.is_active:
            raise AuthenticationFailed("User is inactive", code="user_inactive")
        return user
