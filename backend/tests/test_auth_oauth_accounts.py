"""OAuth sign-in with stubbed providers: accounts, transactions, concurrent first sign-ins."""

import json
from functools import partial
from urllib.parse import parse_qs

import pytest
import responses
from django.db import DatabaseError
from rest_framework.test import APIClient
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from backend.integrations.oauth import GOOGLE_USERINFO_URL
from backend.models import User
from backend.services import users as user_services
from backend.tests.factories import UserFactory
from backend.tests.support import run_concurrently, wait_after
from backend.tests.support.oauth import (
    GOOGLE_TOKEN_URL,
    REDIRECT_URI,
    URL,
    VERIFIED_PRIMARY,
    github_code_login,
    google_code_login,
    google_profile,
    stub_github_code,
    stub_google_code,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("oauth_providers")]


# --- Accounts and transactions ----------------------------------------------------------


def test_deactivated_account_cannot_sign_in(api_client, provider):
    UserFactory(oauth_provider="google", oauth_uid="google-sub-1", is_active=False)
    stub_google_code(provider)
    response = google_code_login(api_client)
    assert response.status_code == 403
    assert response.json() == {"detail": "This account is deactivated.", "code": "account_inactive"}
    assert OutstandingToken.objects.count() == 0


def test_failure_after_creating_the_user_leaves_no_half_created_user(
    api_client, provider, monkeypatch
):
    def fail(*args, **kwargs):
        raise DatabaseError("disk full")

    monkeypatch.setattr("backend.services.users.update_last_login", fail)
    stub_google_code(provider)

    response = google_code_login(api_client)

    assert response.status_code == 400
    assert User.objects.count() == 0
    assert OutstandingToken.objects.count() == 0


def test_stale_authorization_header_does_not_block_sign_in(api_client, provider):
    stub_google_code(provider)
    response = api_client.post(
        URL,
        {"provider": "google", "code": "c", "redirect_uri": REDIRECT_URI},
        HTTP_AUTHORIZATION="Bearer not-a-jwt",
    )
    assert response.status_code == 200


def test_verified_email_never_links_a_staff_account(api_client, provider):
    admin = UserFactory(username="root", email="mona@example.com", is_staff=True)
    before = User.objects.values().get(pk=admin.pk)
    stub_github_code(provider, emails=VERIFIED_PRIMARY)

    response = github_code_login(api_client)

    assert response.status_code == 200
    assert response.json()["created"] is True
    assert response.json()["user"]["id"] != admin.id
    assert User.objects.values().get(pk=admin.pk) == before


def test_two_accounts_with_the_verified_email_link_neither(api_client, provider):
    UserFactory(email="mona@example.com")
    UserFactory(email="MONA@example.com")
    stub_github_code(provider, emails=VERIFIED_PRIMARY)
    response = github_code_login(api_client)
    assert response.json()["created"] is True
    assert User.objects.count() == 3


# --- Concurrent first sign-ins (PostgreSQL) -----------------------------------------------


def race_past_the_lookup(monkeypatch, count_: int, request) -> list:
    """Run `request` in threads that all pass the account lookup before any creates one."""
    wait_after(monkeypatch, user_services, "_user_for_identity", parties=count_)
    return run_concurrently(
        [partial(request, index) for index in range(count_)],
        start_together=False,
        raise_errors=True,
    )


def concurrent_google_stubs(provider, profiles):
    # Each thread sends its own code; the token and profile endpoints answer per code.
    def token_callback(request):
        code = parse_qs(request.body)["code"][0]
        return 200, {}, json.dumps({"access_token": f"at-{code}", "token_type": "Bearer"})

    def profile_callback(request):
        index = int(request.headers["Authorization"].rsplit("-", 1)[1])
        return 200, {}, json.dumps(google_profile(**profiles[index]))

    provider.add_callback("POST", GOOGLE_TOKEN_URL, callback=token_callback)
    provider.add_callback("GET", GOOGLE_USERINFO_URL, callback=profile_callback)


def google_login_with_code(index):
    body = {"provider": "google", "code": str(index), "redirect_uri": REDIRECT_URI}
    response = APIClient().post(URL, body)
    return response.status_code, response.json()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_double_submitted_first_sign_in_creates_one_account(monkeypatch):
    with responses.RequestsMock() as provider:
        concurrent_google_stubs(provider, [{}, {}])
        results = race_past_the_lookup(monkeypatch, 2, google_login_with_code)

    assert [status for status, _ in results] == [200, 200]
    assert sorted(body["created"] for _, body in results) == [False, True]
    assert {body["user"]["id"] for _, body in results} == {User.objects.get().id}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_people_with_one_username_sign_up_at_once(monkeypatch):
    profiles = [
        {"sub": "sub-a", "email": "sam@gmail.com"},
        {"sub": "sub-b", "email": "sam@example.org"},
    ]
    with responses.RequestsMock() as provider:
        concurrent_google_stubs(provider, profiles)
        results = race_past_the_lookup(monkeypatch, 2, google_login_with_code)

    assert [status for status, _ in results] == [200, 200]
    assert all(body["created"] for _, body in results)
    assert sorted(User.objects.values_list("username", flat=True)) == ["sam", "sam2"]
