"""Token lifecycle: rotation, reuse, concurrent refresh, logout, bad tokens, throttling."""

import base64
import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken
from rest_framework_simplejwt.utils import aware_utcnow

from backend.services import users as user_services
from backend.tests.factories import UserFactory

REFRESH_URL = "/api/auth/token/refresh/"
LOGOUT_URL = "/api/auth/logout/"
ME_URL = "/api/users/me/"


def bearer(access: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {access}"}


def token_pair(user) -> tuple[str, str]:
    refresh = RefreshToken.for_user(user)
    return str(refresh.access_token), str(refresh)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


# --- Rotation -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_rotates_and_blacklists_the_old_token(api_client, user):
    _, refresh = token_pair(user)

    response = api_client.post(REFRESH_URL, {"refresh": refresh})

    assert response.status_code == 200
    pair = response.json()
    assert set(pair) == {"access", "refresh"}
    assert pair["refresh"] != refresh
    old_jti = RefreshToken(pair["refresh"], verify=False)["jti"]
    assert BlacklistedToken.objects.filter(token__jti=RefreshToken(refresh, verify=False)["jti"])
    assert not BlacklistedToken.objects.filter(token__jti=old_jti).exists()
    assert api_client.get(ME_URL, **bearer(pair["access"])).json()["id"] == user.id
    # The new refresh token works once in turn.
    assert api_client.post(REFRESH_URL, {"refresh": pair["refresh"]}).status_code == 200


@pytest.mark.django_db
def test_reusing_a_rotated_refresh_token_is_401(api_client, user):
    _, refresh = token_pair(user)
    assert api_client.post(REFRESH_URL, {"refresh": refresh}).status_code == 200
    outstanding = OutstandingToken.objects.count()

    reused = api_client.post(REFRESH_URL, {"refresh": refresh})

    assert reused.status_code == 401
    assert reused.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}
    assert OutstandingToken.objects.count() == outstanding


@pytest.mark.django_db
def test_refresh_lifetime_comes_from_settings(api_client, user):
    _, refresh = token_pair(user)
    pair = api_client.post(REFRESH_URL, {"refresh": refresh}).json()
    access = AccessToken(pair["access"])
    new_refresh = RefreshToken(pair["refresh"])
    assert access["exp"] - access["iat"] == 1440 * 60
    assert new_refresh["exp"] - new_refresh["iat"] == 7 * 24 * 3600


@pytest.mark.django_db
def test_access_token_is_not_accepted_as_refresh_token(api_client, user):
    access, _ = token_pair(user)
    response = api_client.post(REFRESH_URL, {"refresh": access})
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.django_db
def test_refresh_without_token_is_400(api_client):
    response = api_client.post(REFRESH_URL, {})
    assert response.status_code == 400
    assert response.json() == {"refresh": ["This field is required."]}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_refreshes_with_one_token_give_exactly_one_success(monkeypatch):
    user = UserFactory()
    _, refresh = token_pair(user)
    barrier = threading.Barrier(2)
    verified = user_services._verified_refresh_token

    def verified_then_wait(raw):
        # Both requests pass the unlocked blacklist check before either takes the lock:
        # the worst interleaving, every time.
        token = verified(raw)
        barrier.wait(timeout=10)
        return token

    monkeypatch.setattr(user_services, "_verified_refresh_token", verified_then_wait)
    results: list[tuple[int, dict]] = []

    def refresh_once():
        try:
            response = APIClient().post(REFRESH_URL, {"refresh": refresh})
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(status for status, _ in results) == [200, 401]
    failure = next(body for status, body in results if status == 401)
    assert failure == {"detail": "Token is blacklisted", "code": "token_not_valid"}
    # One rotation: the original token and exactly one new refresh token exist.
    assert OutstandingToken.objects.filter(user=user).count() == 2
    assert BlacklistedToken.objects.count() == 1


# --- Logout -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_logout_ends_refresh_and_access_token(api_client, user):
    access, refresh = token_pair(user)
    other_access, other_refresh = token_pair(user)  # another device stays signed in

    response = api_client.post(LOGOUT_URL, {"refresh": refresh}, **bearer(access))

    assert response.status_code == 205
    assert response.content == b""
    me = api_client.get(ME_URL, **bearer(access))
    assert me.status_code == 401
    assert me.json()["code"] == "token_not_valid"
    assert api_client.post(REFRESH_URL, {"refresh": refresh}).status_code == 401
    assert api_client.get(ME_URL, **bearer(other_access)).status_code == 200
    assert api_client.post(REFRESH_URL, {"refresh": other_refresh}).status_code == 200


@pytest.mark.django_db
def test_logout_needs_an_access_token(api_client, user):
    _, refresh = token_pair(user)
    response = api_client.post(LOGOUT_URL, {"refresh": refresh})
    assert response.status_code == 401
    assert BlacklistedToken.objects.count() == 0


@pytest.mark.django_db
def test_logout_with_another_users_refresh_token_is_400_and_changes_nothing(api_client, user):
    access, _ = token_pair(user)
    _, someone_elses = token_pair(UserFactory())

    response = api_client.post(LOGOUT_URL, {"refresh": someone_elses}, **bearer(access))

    assert response.status_code == 400
    assert response.json()["code"] == "token_mismatch"
    assert BlacklistedToken.objects.count() == 0
    assert api_client.get(ME_URL, **bearer(access)).status_code == 200


@pytest.mark.django_db
def test_logout_with_garbage_refresh_is_401_and_keeps_access(api_client, user):
    access, _ = token_pair(user)
    response = api_client.post(LOGOUT_URL, {"refresh": "garbage"}, **bearer(access))
    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert BlacklistedToken.objects.count() == 0
    assert api_client.get(ME_URL, **bearer(access)).status_code == 200


@pytest.mark.django_db
def test_authenticated_request_costs_one_query(api_client, user, django_assert_num_queries):
    # The logout check rides on the user query: no extra query per request.
    access, _ = token_pair(user)
    with django_assert_num_queries(1):
        assert api_client.get(ME_URL, **bearer(access)).status_code == 200


# --- Bad tokens ---------------------------------------------------------------------------


def expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=aware_utcnow() - timedelta(days=2))
    return str(token)


def unsigned_access(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def forged_access(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return f"{b64({'alg': 'HS256', 'typ': 'JWT'})}.{b64(claims)}.c2lnbmF0dXJl"


@pytest.mark.django_db
@pytest.mark.parametrize("make_token", [expired_access, unsigned_access, forged_access])
def test_bad_access_tokens_are_401_json(api_client, user, make_token):
    response = api_client.get(ME_URL, **bearer(make_token(user)))
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.django_db
@pytest.mark.parametrize("header", ["Bearer garbage", "Bearer a.b.c", "Bearer ", "Token abc"])
def test_garbage_authorization_is_401_json(api_client, user, header):
    response = api_client.get(ME_URL, HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    assert "detail" in response.json()


@pytest.mark.django_db
def test_expired_and_unsigned_refresh_tokens_are_401(api_client, user):
    expired = RefreshToken.for_user(user)
    expired.set_exp(from_time=aware_utcnow() - timedelta(days=30))
    unsigned = f"{b64({'alg': 'none'})}.{b64(dict(RefreshToken.for_user(user).payload))}."
    for raw in (str(expired), unsigned, "garbage"):
        response = api_client.post(REFRESH_URL, {"refresh": raw})
        assert response.status_code == 401, raw
        assert response.json()["code"] == "token_not_valid"
    assert BlacklistedToken.objects.count() == 0


# --- Deactivated users --------------------------------------------------------------------


@pytest.mark.django_db
def test_deactivated_users_tokens_stop_working(api_client, user):
    access, refresh = token_pair(user)
    user.is_active = False
    user.save(update_fields=["is_active"])

    me = api_client.get(ME_URL, **bearer(access))
    assert me.status_code == 401
    assert me.json()["code"] == "user_inactive"
    refreshed = api_client.post(REFRESH_URL, {"refresh": refresh})
    assert refreshed.status_code == 401
    assert refreshed.json()["code"] == "no_active_account"
    assert BlacklistedToken.objects.count() == 0


@pytest.mark.django_db
def test_deleted_users_refresh_token_is_401(api_client, user):
    _, refresh = token_pair(user)
    user.delete()
    response = api_client.post(REFRESH_URL, {"refresh": refresh})
    assert response.status_code == 401


# --- Throttling ---------------------------------------------------------------------------


@pytest.fixture
def auth_rate(settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "3/minute",
        },
    }


def refresh_garbage(client, **headers):
    return client.post(REFRESH_URL, {"refresh": "garbage"}, **headers)


@pytest.mark.django_db
def test_auth_endpoints_are_throttled_per_client_ip(api_client, auth_rate):
    for _ in range(3):
        assert refresh_garbage(api_client, REMOTE_ADDR="203.0.113.5").status_code == 401
    throttled = api_client.post(
        "/api/auth/token/", {"username": "x", "password": "y"}, REMOTE_ADDR="203.0.113.5"
    )
    assert throttled.status_code == 429
    assert "detail" in throttled.json()
    oauth = api_client.post(
        "/api/auth/oauth/login/", {"provider": "google"}, REMOTE_ADDR="203.0.113.5"
    )
    assert oauth.status_code == 429
    # Another client is not affected.
    assert refresh_garbage(api_client, REMOTE_ADDR="203.0.113.6").status_code == 401


@pytest.mark.django_db
def test_spoofed_forwarded_for_does_not_escape_the_throttle(api_client, auth_rate):
    # NUM_PROXIES=0 (no proxy): X-Forwarded-For is the client's own claim and is ignored.
    for n in range(3):
        headers = {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": f"198.51.100.{n}"}
        assert refresh_garbage(api_client, **headers).status_code == 401
    headers = {"REMOTE_ADDR": "203.0.113.5", "HTTP_X_FORWARDED_FOR": "198.51.100.99"}
    assert refresh_garbage(api_client, **headers).status_code == 429


@pytest.mark.django_db
def test_behind_one_proxy_the_address_nginx_appended_counts(api_client, settings, auth_rate):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]  # nginx's network (test_throttling.py)
    nginx = "10.0.0.2"
    for n in range(3):
        # The client prepends whatever it likes; nginx appends the real address last.
        headers = {"REMOTE_ADDR": nginx, "HTTP_X_FORWARDED_FOR": f"1.1.1.{n}, 203.0.113.5"}
        assert refresh_garbage(api_client, **headers).status_code == 401
    blocked = {"REMOTE_ADDR": nginx, "HTTP_X_FORWARDED_FOR": "9.9.9.9, 203.0.113.5"}
    assert refresh_garbage(api_client, **blocked).status_code == 429
    other = {"REMOTE_ADDR": nginx, "HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    assert refresh_garbage(api_client, **other).status_code == 401
