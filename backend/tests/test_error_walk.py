"""Issue 13's proof: every URL pattern under /api/, asked the wrong way, answers an error that is
JSON with a registered `code` and a `detail`, and never a 5xx.

The patterns come from Django's resolver, so a new endpoint is walked without editing this file.
For each: every method; no token, a garbage, a malformed, an expired and a valid token (of a user
and of a creator who own nothing there); wrong content types and malformed bodies; an Accept
header nothing can satisfy.
"""

import contextlib
import re
from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from backend.errors import ErrorCode
from backend.models import Booking, Session, User
from backend.tests.factories import BookingFactory, CreatorFactory, SessionFactory, UserFactory
from scripts.live_server import free_port

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE")
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
# DELETE /api/users/me/ with a valid token succeeds and ends that account, and with it the
# walk's later requests: its refusals are proved in backend/tests/test_privacy_delete.py.
ENDS_THE_ACCOUNT = re.compile(r"^/api/users/me(\.[a-z0-9]+)?/?$")


def walked(method: str, path: str) -> bool:
    return not (method == "DELETE" and ENDS_THE_ACCOUNT.match(path))


BODIES = {
    "malformed json": ("application/json", b'{"session": 1,'),
    "nested json": ("application/json", b"[" * 3000),
    "json array": ("application/json", b"[1, 2, 3]"),
    "json string": ("application/json", b'"hello"'),
    "json with nul": ("application/json", b'{"notes": "a\\u0000b", "title": "\\u0000"}'),
    "empty json": ("application/json", b""),
    "not utf-8 json": ("application/json", b'{"a": "\xff\xfe"}'),
    "plain text": ("text/plain", b"hello"),
    "xml": ("application/xml", b"<a>1</a>"),
    "form junk": ("application/x-www-form-urlencoded", b"%%%=&&=%zz"),
    "multipart without boundary": ("multipart/form-data", b"--x\r\n\r\n"),
    "multipart garbage": ("multipart/form-data; boundary=zzz", b"--zzz\r\nnonsense"),
    "no content type": ("", b'{"a": 1}'),
}


def api_patterns() -> list[tuple[str, Any]]:
    """(regex of the full path, callback) for every URL pattern under api/."""
    found = []

    def walk(patterns, prefix: str) -> None:
        for entry in patterns:
            if not prefix and not str(entry.pattern).removeprefix("^").startswith("api/"):
                continue  # the admin, Swagger UI and media: HTML land, not the API
            regex = prefix + regex_of(entry.pattern)
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, regex)
            elif isinstance(entry, URLPattern):
                found.append((regex, entry.callback))

    walk(get_resolver().url_patterns, "")
    return found


def regex_of(pattern) -> str:
    text = str(pattern)
    if hasattr(pattern, "_route"):  # a path() route: `<int:pk>` is the only converter used
        regex = re.escape(text).replace("<int:pk>", "(?P<pk>[0-9]+)")
        assert "<" not in regex.replace("(?P<pk>", ""), text
        return regex
    return text.removeprefix("^").removesuffix("$")


def pk_for(regex: str, world) -> int:
    """An existing object's id (someone else's), so that object URLs get past routing."""
    return world["booking"].pk if regex.startswith("api/bookings") else world["session"].pk


def sample_path(regex: str, pk: int) -> str:
    path = re.sub(r"\(\?P<pk>[^)]*\)", str(pk), regex)
    path = re.sub(r"\(\?P<username>[^)]*\)", "no-such-creator", path)
    # A well-formed calendar feed token that is nobody's.
    path = re.sub(r"\(\?P<calendar_token>[^)]*\)", "unknown-feed-token-" + "x" * 24, path)
    path = path.replace(".*", "no/such/thing/")
    return "/" + re.sub(r"\\(.)", r"\1", path)


@pytest.fixture
def world(settings):
    # Configured integrations, so requests reach validation; Stripe is a dead loopback port
    # (nothing in the walk may reach the internet).
    settings.STRIPE_SECRET_KEY = "sk_test_walk"
    settings.STRIPE_WEBHOOK_SECRET = "whsec_walk"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    settings.STRIPE_MAX_NETWORK_RETRIES = 0
    owner = CreatorFactory()
    session = SessionFactory(creator=owner)
    booking = BookingFactory(session=session, user=UserFactory())
    stranger = UserFactory()
    expired = AccessToken.for_user(stranger)
    expired.set_exp(lifetime=-timedelta(minutes=5))
    return {
        "session": session,
        "booking": booking,
        "stranger": stranger,
        "creator": CreatorFactory(),
        "expired": str(expired),
    }


def auth_headers(world) -> dict[str, dict[str, Any]]:
    return {
        "anonymous": {},
        "garbage token": {"HTTP_AUTHORIZATION": "Bearer not.a.jwt"},
        "bare Bearer": {"HTTP_AUTHORIZATION": "Bearer"},
        "two tokens": {"HTTP_AUTHORIZATION": "Bearer a b"},
        "basic": {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
        "expired": {"HTTP_AUTHORIZATION": f"Bearer {world['expired']}"},
        # A fresh token per request: the walk also posts to logout, which revokes it.
        "user": {"HTTP_AUTHORIZATION": lambda: f"Bearer {AccessToken.for_user(world['stranger'])}"},
        "creator": {
            "HTTP_AUTHORIZATION": lambda: f"Bearer {AccessToken.for_user(world['creator'])}"
        },
    }


def send(client, method, path, headers, content_type=None, body=b""):
    extra = {key: value() if callable(value) else value for key, value in headers.items()}
    cache.clear()  # throttles would turn the rest of the walk into 429s
    kwargs = {}
    if content_type is not None:
        kwargs["content_type"] = content_type
    return client.generic(method, path, data=body, **kwargs, **extra)


def swagger_path(regex: str) -> str:
    path = re.sub(r"\(\?P<pk>[^)]*\)", "{id}", regex.removeprefix("api/"))
    return "/" + re.sub(r"\\(.)", r"\1", path)


def undocumented(schema: dict, seen: list[tuple[str, str, int, str]]) -> tuple[list, int]:
    """(method, path, status, code) met by the walk that Swagger does not list for that
    operation. Wrong methods (405), Accept (406) and unknown URLs are nobody's operation."""
    missing = set()
    checked = 0
    for method, regex, status, code in seen:
        operation = schema["paths"].get(swagger_path(regex), {}).get(method.lower())
        if operation is None or status in (405, 406):
            continue
        checked += 1
        response = operation["responses"].get(str(status))
        enum = response and response["schema"]["properties"]["code"].get("enum")
        if response is None or (enum is not None and code not in enum):
            missing.add((method, swagger_path(regex), status, code))
    return sorted(missing), checked


def check(response, label, problems):
    status = response.status_code
    if status >= 500:
        problems.append((label, status, response.content[:200]))
        return
    if status < 400:
        return
    content_type = response.get("Content-Type", "")
    if not content_type.startswith("application/json"):
        problems.append((label, status, f"Content-Type {content_type!r}"))
        return
    if response.request["REQUEST_METHOD"] == "HEAD":
        return  # no body, by definition; the Content-Type above is what a HEAD can check
    body = response.json()
    if not isinstance(body, dict):
        problems.append((label, status, body))
        return
    registered = body.get("code") in set(ErrorCode) and isinstance(body.get("detail"), str)
    if not registered or not isinstance(body.get("errors", {}), dict):
        problems.append((label, status, body))


def test_the_walk_covers_every_api_pattern(world):
    patterns = api_patterns()
    # Guards the walk: it must see the endpoints it claims to (and more as they are added).
    paths = {sample_path(regex, 1) for regex, _ in patterns}
    assert {"/api/auth/token/", "/api/bookings/1/cancel/", "/api/payment/webhook/"} <= paths
    assert len(patterns) >= 25
    for regex, callback in patterns:
        assert resolve(sample_path(regex, pk_for(regex, world))).func is callback, regex


def test_every_error_on_every_pattern_is_json_with_a_registered_code(world):
    client = APIClient()
    problems: list = []
    statuses: dict[int, int] = {}
    seen: list[tuple[str, str, int, str]] = []

    def record(method, regex, response):
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code >= 400 and method != "HEAD":
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                seen.append((method, regex, response.status_code, response.json().get("code")))

    before = snapshot(world)
    headers_by_auth = auth_headers(world)
    for regex, _ in api_patterns():
        path = sample_path(regex, pk_for(regex, world))
        for method in filter(lambda m: walked(m, path), METHODS):
            for auth, headers in headers_by_auth.items():
                response = send(client, method, path, headers)
                record(method, regex, response)
                check(response, (method, path, auth), problems)
            response = send(client, method, path, {"HTTP_ACCEPT": "application/xml"})
            record(method, regex, response)
            check(response, (method, path, "Accept xml"), problems)
        for method in filter(lambda m: walked(m, path), WRITE_METHODS):
            for auth in ("anonymous", "user", "creator"):
                for kind, (content_type, body) in BODIES.items():
                    response = send(client, method, path, headers_by_auth[auth], content_type, body)
                    record(method, regex, response)
                    check(response, (method, path, auth, kind), problems)
    assert problems == [], summarize(problems)
    # The walk really met the errors it is about, not only 404s.
    assert {400, 401, 403, 404, 405, 406, 415} <= set(statuses), statuses
    assert snapshot(world) == before
    # And Swagger documents each of these answers for its operation (status and code).
    missing, checked = undocumented(client.get("/swagger.json").json(), seen)
    assert missing == []
    assert checked > 1000  # the comparison really ran over the walk's answers


@pytest.mark.parametrize("pk", ["0", "99999999999999999999999", "-1"])
def test_odd_ids_are_json_404(world, pk):
    client = APIClient()
    token = {"HTTP_AUTHORIZATION": f"Bearer {AccessToken.for_user(world['creator'])}"}
    problems: list = []
    for regex, _ in api_patterns():
        if "(?P<pk>" not in regex:
            continue
        path = re.sub(r"\\(.)", r"\1", "/" + re.sub(r"\(\?P<pk>[^)]*\)", pk, regex))
        response = send(client, "GET", path, token)
        check(response, ("GET", path), problems)
        assert response.status_code in (404, 405), (path, response.status_code)
    assert problems == []


def test_throttled_answers_json_with_code(api_client):
    for _ in range(200):
        response = api_client.post("/api/auth/token/", {"username": "x", "password": "y"})
        if response.status_code == 429:
            break
    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert body["detail"]
    assert int(response["Retry-After"]) > 0


def summarize(problems: list) -> str:
    """One line per distinct (path, status, what) so that a failure is readable."""
    seen: dict[tuple, int] = {}
    for label, status, what in problems:
        key = (label[0], label[1], status, str(what)[:120])
        seen[key] = seen.get(key, 0) + 1
    return "\n".join(f"{count}x {key}" for key, count in sorted(seen.items()))


def snapshot(world):
    """Everything the walk's callers do not own. (The stranger may legitimately become a
    creator: POST /api/users/become_creator/ needs no body.)"""
    others = User.objects.exclude(pk=world["stranger"].pk).order_by("pk")
    return (
        list(Booking.objects.order_by("pk").values()),
        list(Session.objects.order_by("pk").values()),
        list(others.values("pk", "first_name", "bio", "role", "is_active")),
    )
