"""`GET /api/`: where a newcomer (or a client) finds the resources and the documentation."""

from drf_yasg.utils import swagger_auto_schema
from rest_framework import serializers
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

# (key, URL name, what it is): the entry points; everything else is linked from Swagger.
RESOURCES = [
    ("sessions", "session-list", "The public catalog; creators POST new sessions here."),
    ("my_sessions", "session-my-sessions", "A creator's own sessions (JWT)."),
    ("bookings", "booking-list", "Your bookings; POST {session} to book (JWT)."),
    ("me", "users-me", "Your profile (JWT)."),
    ("user_dashboard", "dashboard-user", "Your bookings and spend (JWT)."),
    ("creator_dashboard", "dashboard-creator", "A creator's sessions and revenue (JWT)."),
    ("token", "token_obtain_pair", "POST {username, password}: a JWT pair."),
    ("oauth_providers", "oauth_providers", "The configured Google/GitHub sign-in providers."),
    ("oauth_login", "oauth_login", "POST an OAuth code or token: a JWT pair."),
    ("payment_intent", "payment_create_intent", "POST {booking_id}: pay a booking (JWT)."),
    ("upload", "storage-upload", "POST multipart: an avatar or session image (JWT)."),
    ("health", "health", "Liveness and database check."),
]
DOCS = [
    ("swagger", "schema-swagger-ui", {}, "Swagger UI."),
    ("redoc", "schema-redoc", {}, "ReDoc."),
    ("openapi", "schema-json", {"format": "json"}, "The Swagger 2.0 document."),
]


class ApiLinkSerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Absolute URL.")
    description = serializers.CharField(help_text="What is there.")


class ApiIndexSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="The API's name.")
    resources = serializers.DictField(
        child=ApiLinkSerializer(), help_text="The main resources, by name."
    )
    docs = serializers.DictField(child=ApiLinkSerializer(), help_text="API documentation.")


@swagger_auto_schema(
    method="get",
    operation_summary="Index of the API",
    operation_description=(
        "Links to the main resources and to the documentation (Swagger UI, ReDoc, the Swagger "
        "2.0 document). `/` redirects here. Every API path ends with a slash."
    ),
    responses={200: ApiIndexSerializer},
    security=[],
)
@api_view(["GET"])
@authentication_classes([])
@permission_classes([AllowAny])
def api_index(request: Request) -> Response:
    def link(name: str, description: str, kwargs: dict | None = None) -> dict[str, str]:
        return {"url": reverse(name, kwargs=kwargs, request=request), "description": description}

    return Response(
        {
            "name": "Sessions Marketplace API",
            "resources": {key: link(name, text) for key, name, text in RESOURCES},
            "docs": {key: link(name, text, kwargs) for key, name, kwargs, text in DOCS},
        }
    )
