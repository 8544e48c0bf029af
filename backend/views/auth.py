"""Sign-in and token endpoints: OAuth login, password login, refresh, logout.

All of them are throttled per client IP in the `auth` scope (THROTTLE_AUTH_RATE), counted in
the shared cache (Redis when REDIS_URL is set) so every gunicorn worker counts together.
"""

from drf_yasg.utils import swagger_auto_schema
from rest_framework import status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView

from backend.integrations.oauth import enabled_providers
from backend.serializers.auth import (
    AuthLogoutInputSerializer,
    AuthRefreshInputSerializer,
    AuthTokenPairSerializer,
    OAuthLoginInputSerializer,
    OAuthLoginResultSerializer,
    OAuthProvidersSerializer,
)
from backend.serializers.users import UserProfileSerializer
from backend.services.users import auth_logout, auth_token_refresh, user_oauth_login
from backend.throttling import CountingRateThrottle


class AuthRateThrottle(CountingRateThrottle):
    """Per client IP, signed in or not: these endpoints are what a password or token
    guesser hits. The IP is `backend.throttling.client_ip`: REMOTE_ADDR, or with NUM_PROXIES=n
    the n-th address from the right of X-Forwarded-For, the one our own proxy appended, and only
    when the request comes from one of TRUSTED_PROXIES, so a client cannot pick its identity by
    sending its own X-Forwarded-For."""

    scope = "auth"

    def get_rate(self) -> str | None:
        # Read at request time (not import time) so a changed setting takes effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class NoAuthenticationMixin:
    """For endpoints that read no Authorization header (the token is in the body).

    DRF turns 401 into 403 on a view without authentication classes; a bad token must still
    answer 401 with a WWW-Authenticate challenge, as simplejwt's own views do.
    """

    authentication_classes = []
    permission_classes = [AllowAny]

    def get_authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'


class OAuthProvidersView(NoAuthenticationMixin, APIView):
    @swagger_auto_schema(
        operation_summary="The OAuth providers a client can offer",
        operation_description=(
            "The sign-in providers configured on this server, with what a SPA needs to build "
            "its buttons and send the user to the provider: `client_id`, `authorize_url` and "
            "the `scopes` to request. The code the provider returns goes to "
            "`POST /api/auth/oauth/login/`. An empty list when none is configured."
        ),
        responses={200: OAuthProvidersSerializer},
        security=[],
    )
    def get(self, request):
        providers = [vars(provider) for provider in enabled_providers()]
        return Response(OAuthProvidersSerializer({"providers": providers}).data)


class OAuthLoginView(NoAuthenticationMixin, APIView):
    # No authentication: a stale Authorization header must not stop a new sign-in.
    throttle_classes = [AuthRateThrottle]

    @swagger_auto_schema(
        operation_summary="Sign in with Google or GitHub",
        operation_description=(
            "Authorization-code shape `{provider, code, redirect_uri, code_verifier?}` (the "
            "server exchanges the code with its client secret; PKCE verifier when used), or "
            "access-token shape `{provider, access_token}` (the token must have been issued "
            'to this server\'s client id). `role: "creator"` applies to a new account only. '
            "400: bad input or the provider rejected the code/token (its reason is in "
            "`detail`); 403: account deactivated; 502: provider unreachable or failing; "
            "503: provider not configured."
        ),
        request_body=OAuthLoginInputSerializer,
        responses={
            200: OAuthLoginResultSerializer,
        },
        security=[],
    )
    def post(self, request):
        data = OAuthLoginInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sign_in = user_oauth_login(**data.validated_data)
        return Response(
            {
                "access": sign_in.access,
                "refresh": sign_in.refresh,
                "user": UserProfileSerializer(sign_in.user, context={"request": request}).data,
                "created": sign_in.created,
            }
        )


class PasswordTokenView(TokenObtainPairView):
    """simplejwt's username/password login (admin, demo accounts), throttled."""

    throttle_classes = [AuthRateThrottle]

    @swagger_auto_schema(
        operation_summary="Get a token pair with a username and password",
        responses={200: AuthTokenPairSerializer},
        security=[],
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class TokenRefreshView(NoAuthenticationMixin, APIView):
    throttle_classes = [AuthRateThrottle]

    @swagger_auto_schema(
        operation_summary="Rotate a refresh token",
        operation_description=(
            "Returns a new `{access, refresh}` pair and blacklists the refresh token sent. "
            "Each refresh token works once: a reused, expired or invalid one is 401, and "
            "of two concurrent requests with the same token exactly one succeeds."
        ),
        request_body=AuthRefreshInputSerializer,
        responses={200: AuthTokenPairSerializer},
        security=[],
    )
    def post(self, request):
        data = AuthRefreshInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(auth_token_refresh(raw_refresh=data.validated_data["refresh"]))


class LogoutView(APIView):
    permission_classes = [IsAuthenticated]
    throttle_classes = [AuthRateThrottle]

    @swagger_auto_schema(
        operation_summary="Sign out",
        operation_description=(
            "Blacklists the refresh token sent and the access token that makes this call; "
            "both are refused (401) from then on. 205 with an empty body."
        ),
        request_body=AuthLogoutInputSerializer,
        responses={205: "Signed out."},
    )
    def post(self, request):
        data = AuthLogoutInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        auth_logout(
            user=request.user,
            raw_refresh=data.validated_data["refresh"],
            access_token=request.auth,
        )
        return Response(status=status.HTTP_205_RESET_CONTENT)
