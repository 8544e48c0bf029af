"""Request and response shapes of the sign-in and token endpoints."""

from rest_framework import serializers

from backend.integrations.oauth import PROVIDERS
from backend.models import User
from backend.serializers.users import UserProfileSerializer


class OAuthLoginInputSerializer(serializers.Serializer):
    """Either `{provider, code, redirect_uri, code_verifier?}` or `{provider, access_token}`."""

    provider = serializers.ChoiceField(choices=list(PROVIDERS))
    code = serializers.CharField(required=False, max_length=2048)
    redirect_uri = serializers.CharField(required=False, max_length=2048)
    # RFC 7636: 43 to 128 characters.
    code_verifier = serializers.CharField(required=False, min_length=43, max_length=128)
    access_token = serializers.CharField(required=False, max_length=4096)
    role = serializers.ChoiceField(
        choices=User.Role.choices,
        required=False,
        help_text='"creator" makes a new account a creator; ignored for an existing account.',
    )

    def validate(self, attrs: dict) -> dict:
        has_code, has_token = "code" in attrs, "access_token" in attrs
        if has_code and has_token:
            raise serializers.ValidationError(
                {"non_field_errors": ["Send either code or access_token, not both."]}
            )
        if not has_code and not has_token:
            raise serializers.ValidationError(
                {"code": ["Send an authorization code (with redirect_uri) or an access_token."]}
            )
        if has_code and not attrs.get("redirect_uri"):
            raise serializers.ValidationError(
                {"redirect_uri": ["Required with code: the redirect_uri used to get the code."]}
            )
        if has_token and ("redirect_uri" in attrs or "code_verifier" in attrs):
            raise serializers.ValidationError(
                {"access_token": ["redirect_uri and code_verifier go with code only."]}
            )
        return attrs


class OAuthLoginResultSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserProfileSerializer()
    created = serializers.BooleanField(help_text="True when this sign-in created the account.")


class AuthRefreshInputSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class AuthTokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()


class AuthLogoutInputSerializer(serializers.Serializer):
    refresh = serializers.CharField(help_text="The refresh token of the session to end.")


class OAuthProviderSerializer(serializers.Serializer):
    provider = serializers.ChoiceField(
        choices=sorted(PROVIDERS), help_text="The value to send as `provider` to oauth/login/."
    )
    name = serializers.CharField(help_text="A display name for the sign-in button.")
    client_id = serializers.CharField(help_text="The OAuth client id (`client_id` parameter).")
    authorize_url = serializers.URLField(
        help_text="The provider's authorization endpoint; send the user there with "
        "`response_type=code`, `client_id`, `redirect_uri`, `scope`, `state` (and PKCE)."
    )
    scopes = serializers.ListField(child=serializers.CharField(), help_text="Scopes to request.")
    scope = serializers.CharField(help_text="`scopes` joined as this provider expects them.")


class OAuthProvidersSerializer(serializers.Serializer):
    providers = OAuthProviderSerializer(many=True, help_text="Only the configured providers.")
