"""API clients signed in the way a real client is: a bearer access token."""

from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from backend.models import User


def auth_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
    return client
