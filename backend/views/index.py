"""`GET /api/`: where a newcomer (or a client) finds the resources and the documentation."""

from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

# (key, URL name, what it is): the entry points; everything else is linked from Swagger.
RESOURCES = [
    ("sessions", "session-list", "The public catalog; creators POST new sessions here."),
    ("my_sessions", "session-my-sessions", "A creator's own sessions (JWT)."),
    ("creators", "creator-list", "Public creator profiles with ratings; their reviews."),
    ("bookings", "booking-list", "Your bookings; POST {session} to book (JWT)."),
    ("waitlist", "waitlist", "Your waitlist entries; join at sessions/{id}/waitlist/ (JWT)."),
    ("me", "users-me", "Your profile (JWT)."),
    ("user_dashboard", "dashboard-user", "Your bookings and spend (JWT)."),
    ("creator_dashboard", "dashboard-creator", "A creator's sessions and revenue (JWT)."),
    ("payouts", "payouts_account", "A creator's Stripe account; onboarding, transfers (JWT)."),
    ("token", "token_obtain_pair", "POST {username, password}: a JWT pair."),
    ("oauth_providers", "oauth_providers", "The configured Google/GitHub sign-in providers."),
    ("oauth_login", "oauth_login", "POST an OAuth code or token: a JWT pair."),
    ("payment_intent", "payment_create_intent", "POST {booking_id}: pay a booking (JWT)."),
    ("webhooks", "webhook-list", "A creator's outgoing webhook subscriptions (JWT)."),
    ("upload", "storage-upload", "POST multipart: an avatar or session image (JWT)."),
    ("health", "health", "Liveness and database check."),
]
DOCS = [
    ("swagger", "schema-swagger-ui", {}, "Swagger UI."),
    ("redoc", "schema-redoc", {}, "ReDoc."),
    ("openapi", "schema-json", {"format": "json"}, "The Swagger 2.0 document."),
]


# A plain Django view, not a DRF one: it stays out of the Swagger document (it would only
# repeat the document's list of paths, and as the one path equal to the prefix it would turn
# the document's basePath from /api into /).
@csrf_exempt
def api_index(request: HttpRequest) -> JsonResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        detail = f'Method "{request.method}" not allowed.'
        response = JsonResponse({"detail": detail, "code": "method_not_allowed"}, status=405)
        response["Allow"] = "GET, HEAD, OPTIONS"
        return response

    def link(name: str, description: str, kwargs: dict | None = None) -> dict[str, str]:
        url = request.build_absolute_uri(reverse(name, kwargs=kwargs))
        return {"url": url, "description": description}

    return JsonResponse(
        {
            "name": "Sessions Marketplace API",
            "resources": {key: link(name, text) for key, name, text in RESOURCES},
            "docs": {key: link(name, text, kwargs) for key, name, kwargs, text in DOCS},
        }
    )
