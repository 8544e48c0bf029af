"""What a frontend developer meets first: CORS headers, the API index, the trailing-slash 404,
the OAuth providers list and the browsable API's formatting."""

import orjson
import pytest
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.test import APIRequestFactory

from backend.renderers import ORJSONRenderer
from backend.tests.factories import SessionFactory

SPA = "http://localhost:5173"


@pytest.mark.django_db
def test_cors_exposes_retry_after_request_id_and_content_disposition(api_client):
    response = api_client.get("/api/health/", HTTP_ORIGIN=SPA)
    assert response["Access-Control-Allow-Origin"] == SPA
    exposed = {h.strip().lower() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert {"retry-after", "x-request-id", "content-disposition"} <= exposed


@pytest.mark.django_db
def test_cors_preflight_allows_request_id_and_idempotency_key(api_client):
    response = api_client.options(
        "/api/bookings/",
        HTTP_ORIGIN=SPA,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type, x-request-id, "
        "idempotency-key",
    )
    assert response.status_code == 200
    allowed = {h.strip().lower() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "x-request-id", "idempotency-key"} <= allowed


@pytest.mark.django_db
def test_cors_is_not_granted_to_an_unlisted_origin(api_client):
    response = api_client.get("/api/health/", HTTP_ORIGIN="https://evil.example")
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.django_db
def test_api_index_links_resources_and_docs_that_answer(api_client):
    response = api_client.get("/api/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Sessions Marketplace API"
    resources = body["resources"]
    assert resources["sessions"]["url"] == "http://testserver/api/sessions/"
    assert resources["bookings"]["url"] == "http://testserver/api/bookings/"
    assert resources["oauth_providers"]["url"] == "http://testserver/api/auth/providers/"
    assert body["docs"]["swagger"]["url"] == "http://testserver/swagger/"
    assert body["docs"]["redoc"]["url"] == "http://testserver/redoc/"
    assert body["docs"]["openapi"]["url"] == "http://testserver/swagger.json"
    for link in [*resources.values(), *body["docs"].values()]:
        assert link["description"]
        # Every link leads somewhere: never a 404 (a 401 or 405 for what needs more).
        path = link["url"].removeprefix("http://testserver")
        assert api_client.get(path).status_code in {200, 401, 405}, path


@pytest.mark.django_db
def test_api_index_refuses_writes_in_json(api_client):
    response = api_client.post("/api/", {})
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "POST" not allowed.', "code": "method_not_allowed"}
    assert response["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.django_db
def test_root_redirects_to_the_api_index(api_client):
    response = api_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "suggested"),
    [
        ("get", "/api/sessions", "GET /api/sessions/"),
        ("get", "/api/sessions?ordering=price", "GET /api/sessions/?ordering=price"),
        ("post", "/api/auth/token", "POST /api/auth/token/"),
        ("post", "/api/bookings/12/cancel", "POST /api/bookings/12/cancel/"),
        ("get", "/api/users/me", "GET /api/users/me/"),
    ],
)
def test_a_path_without_its_trailing_slash_names_the_right_one(api_client, method, path, suggested):
    response = getattr(api_client, method)(path, {} if method == "post" else None)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "detail": f"Not found. API paths end with a slash: {suggested}",
        "code": "not_found",
    }


@pytest.mark.django_db
def test_an_unknown_path_stays_a_plain_404(api_client):
    for path in ("/api/no-such-thing", "/api/no-such-thing/"):
        response = api_client.get(path)
        assert response.status_code == 404
        assert response.json() == {"detail": "Not found.", "code": "not_found"}


@pytest.mark.django_db
def test_oauth_providers_lists_only_configured_ones(api_client, settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = "google-client-id.apps.googleusercontent.com"
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = "google-secret"
    settings.SOCIAL_AUTH_GITHUB_KEY = "github-client-id"
    settings.SOCIAL_AUTH_GITHUB_SECRET = ""  # half-configured: not offered
    response = api_client.get("/api/auth/providers/")
    assert response.status_code == 200
    assert response.json() == {
        "providers": [
            {
                "provider": "google",
                "name": "Google",
                "client_id": "google-client-id.apps.googleusercontent.com",
                "authorize_url": "https://accounts.google.com/o/oauth2/auth",
                "scopes": ["openid", "email", "profile"],
                "scope": "openid email profile",
            }
        ]
    }
    assert "google-secret" not in response.content.decode()


@pytest.mark.django_db
def test_oauth_providers_takes_scopes_from_the_settings(api_client, settings):
    settings.SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = ""
    settings.SOCIAL_AUTH_GITHUB_KEY = "github-client-id"
    settings.SOCIAL_AUTH_GITHUB_SECRET = "github-secret"
    settings.SOCIAL_AUTH_GITHUB_SCOPE = ["read:user", "user:email"]
    (github,) = api_client.get("/api/auth/providers/").json()["providers"]
    assert github == {
        "provider": "github",
        "name": "GitHub",
        "client_id": "github-client-id",
        "authorize_url": "https://github.com/login/oauth/authorize",
        "scopes": ["read:user", "user:email"],
        "scope": "read:user,user:email",
    }
    settings.SOCIAL_AUTH_GITHUB_KEY = ""
    assert api_client.get("/api/auth/providers/").json() == {"providers": []}


def test_orjson_renderer_indents_when_asked_and_stays_compact_otherwise():
    data = {"a": [1, {"b": "c"}]}
    compact = ORJSONRenderer().render(data, "application/json", {})
    assert compact == b'{"a":[1,{"b":"c"}]}'
    indented = ORJSONRenderer().render(data, "application/json; indent=4", {})
    assert indented == b'{\n  "a": [\n    1,\n    {\n      "b": "c"\n    }\n  ]\n}'
    assert ORJSONRenderer().render(data, "application/json", {"indent": 4}) == indented
    assert orjson.loads(indented) == data


@pytest.mark.django_db
def test_browsable_api_pretty_prints():
    SessionFactory()
    request = APIRequestFactory().get("/api/sessions/", HTTP_ACCEPT="text/html")
    data = {"count": 1, "results": [{"id": 1, "title": "Yoga"}]}
    content = BrowsableAPIRenderer().get_content(
        ORJSONRenderer(), data, "text/html", {"request": request, "indent": None}
    )
    assert content.startswith('{\n  "count": 1,\n  "results": [\n')
