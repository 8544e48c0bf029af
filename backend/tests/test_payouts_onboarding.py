"""Connect onboarding, the account's state (account.updated) and the publish gate (issue 16).

The real `stripe` client talks to the stand-in (fake_stripe.py), which records every call:
accounts are counted where they are made.
"""

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from backend.integrations import stripe_connect
from backend.models import ConnectedAccount, Session, StripeEvent, User
from backend.tests.factories import CreatorFactory, SessionFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import deliver
from backend.tests.payouts_support import (
    ACCOUNT_URL,
    CONNECT_WEBHOOK_URL,
    LINK_BODY,
    ONBOARDING_URL,
    SPA,
    connected,
    onboard,
)
from backend.tests.support import auth_client, run_concurrently, wait_after

pytestmark = pytest.mark.django_db

NOT_ONBOARDED: dict[str, object] = {
    "account_id": None,
    "charges_enabled": False,
    "payouts_enabled": False,
    "details_submitted": False,
    "requirements_due": [],
}


def test_onboarding_end_to_end(fake_stripe, creator, creator_client, api_client):
    assert creator_client.get(ACCOUNT_URL).json() == NOT_ONBOARDED

    response = creator_client.post(ONBOARDING_URL, LINK_BODY, format="json")

    assert response.status_code == 200
    body = response.json()
    (made,) = fake_stripe.requests_to("POST", "/v1/accounts")
    assert made.params == {
        "type": "express",
        "capabilities[transfers][requested]": "true",
        "metadata[user_id]": str(creator.pk),
        "email": creator.email,
    }
    assert made.idempotency_key == f"sm-connect-account-user-{creator.pk}"
    (link,) = fake_stripe.state.account_links
    account_id = ConnectedAccount.objects.get(user=creator).stripe_account_id
    assert (link["account"], link["return_url"], link["refresh_url"], link["type"]) == (
        account_id,
        LINK_BODY["return_url"],
        LINK_BODY["refresh_url"],
        "account_onboarding",
    )
    assert body["url"] == link["url"]
    expires = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires == datetime.fromtimestamp(link["expires_at"], tz=UTC)
    state = creator_client.get(ACCOUNT_URL).json()
    assert state == {
        "account_id": account_id,
        "charges_enabled": False,
        "payouts_enabled": False,
        "details_submitted": False,
        "requirements_due": ["business_type", "external_account", "tos_acceptance.date"],
    }

    # The creator fills in Stripe's form; Stripe says so with account.updated.
    account = fake_stripe.complete_onboarding(account_id)
    outcome = deliver(api_client, *FakeStripe.signed_event("account.updated", account))
    assert outcome.json() == {"received": True, "outcome": "account_updated"}
    assert creator_client.get(ACCOUNT_URL).json() == {
        "account_id": account_id,
        "charges_enabled": True,
        "payouts_enabled": True,
        "details_submitted": True,
        "requirements_due": [],
    }

    # Coming back later: a fresh link for the same account, no second account.
    again = creator_client.post(ONBOARDING_URL, LINK_BODY, format="json")
    assert again.status_code == 200
    assert fake_stripe.account_count == 1
    assert len(fake_stripe.requests_to("POST", "/v1/accounts")) == 1
    assert [entry["account"] for entry in fake_stripe.state.account_links] == [account_id] * 2


@pytest.mark.parametrize(
    "bad",
    [
        {"return_url": "https://evil.example.com/phish"},
        {"refresh_url": "https://evil.example.com/phish"},
        {"return_url": f"{SPA}@evil.example.com/"},
        {"return_url": "http://localhost:3001/done"},  # another port is another origin
        {"return_url": "javascript:alert(1)"},
        {"return_url": "not a url"},
        {"refresh_url": ""},
    ],
)
def test_onboarding_refuses_a_redirect_off_the_app(fake_stripe, creator, creator_client, bad):
    response = creator_client.post(ONBOARDING_URL, {**LINK_BODY, **bad}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] in ("invalid_redirect_url", "invalid")
    assert fake_stripe.state.requests == []
    assert not ConnectedAccount.objects.exists()


def test_onboarding_is_for_creators_and_needs_stripe(settings, user_client, api_client, creator):
    assert user_client.post(ONBOARDING_URL, LINK_BODY, format="json").status_code == 403
    assert api_client.post(ONBOARDING_URL, LINK_BODY, format="json").status_code == 401
    assert user_client.get(ACCOUNT_URL).status_code == 403
    settings.STRIPE_SECRET_KEY = ""
    response = auth_client(creator).post(ONBOARDING_URL, LINK_BODY, format="json")
    assert (response.status_code, response.json()["code"]) == (503, "payments_not_configured")
    assert not ConnectedAccount.objects.exists()


def test_stripe_failing_the_account_creation_changes_nothing(fake_stripe, creator, creator_client):
    fake_stripe.fail_next("/v1/accounts", status=500)

    response = creator_client.post(ONBOARDING_URL, LINK_BODY, format="json")

    assert (response.status_code, response.json()["code"]) == (502, "payment_provider_unavailable")
    assert not ConnectedAccount.objects.exists()
    assert creator_client.post(ONBOARDING_URL, LINK_BODY, format="json").status_code == 200
    assert fake_stripe.account_count == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_first_onboarding_calls_create_exactly_one_account(fake_stripe, monkeypatch):
    creator = CreatorFactory()
    clients = [auth_client(creator) for _ in range(4)]
    # Every call has had Stripe's answer before any of them stores it: all four saw no
    # account on record and asked Stripe to make one.
    wait_after(monkeypatch, stripe_connect, "create_express_account", parties=4)

    responses = run_concurrently(
        [lambda c=c: c.post(ONBOARDING_URL, LINK_BODY, format="json") for c in clients]
    )

    assert [r.status_code for r in responses] == [200] * 4
    assert len(fake_stripe.requests_to("POST", "/v1/accounts")) == 4
    assert fake_stripe.account_count == 1  # the idempotency key: one account at Stripe
    (account,) = ConnectedAccount.objects.filter(user=creator)
    assert {entry["account"] for entry in fake_stripe.state.account_links} == {
        account.stripe_account_id
    }


def test_account_updated_applies_in_event_order_and_once(fake_stripe, creator, api_client):
    account = connected(creator, fake_stripe)
    fresh = fake_stripe.account(account.stripe_account_id)
    now = int(timezone.now().timestamp())
    stale = {**fresh, "charges_enabled": False, "requirements": {"currently_due": ["x"]}}

    # Stripe's `created` orders the events; the newer one arrives first.
    newer = FakeStripe.signed_event("account.updated", fresh, event_id="evt_new", created=now)
    assert deliver(api_client, *newer).json()["outcome"] == "account_updated"
    older = FakeStripe.signed_event("account.updated", stale, event_id="evt_old", created=now - 60)
    assert deliver(api_client, *older).json()["outcome"] == "account_updated"
    account.refresh_from_db()
    assert (account.charges_enabled, account.requirements_due) == (True, [])

    assert deliver(api_client, *older).json()["outcome"] == "duplicate"
    unknown = {**fresh, "id": "acct_not_ours"}
    assert deliver(api_client, *FakeStripe.signed_event("account.updated", unknown)).json() == {
        "received": True,
        "outcome": "ignored",
    }
    assert StripeEvent.objects.filter(type="account.updated").count() == 3


def test_account_updated_with_a_malformed_account_is_refused(fake_stripe, creator, api_client):
    account = connected(creator, fake_stripe, charges_enabled=False)
    bad = {**fake_stripe.account(account.stripe_account_id), "charges_enabled": "yes"}

    response = deliver(api_client, *FakeStripe.signed_event("account.updated", bad))

    assert (response.status_code, response.json()["code"]) == (400, "invalid_event")
    account.refresh_from_db()
    assert account.charges_enabled is False
    assert not StripeEvent.objects.exists()


def test_connect_webhook_uses_its_own_secret(fake_stripe, settings, creator, api_client):
    settings.STRIPE_CONNECT_WEBHOOK_SECRET = "whsec_connect_only"
    account = connected(creator, fake_stripe, charges_enabled=False)
    obj = fake_stripe.account(account.stripe_account_id)

    wrong = FakeStripe.signed_event("account.updated", obj)  # the platform endpoint's secret
    response = api_client.post(
        CONNECT_WEBHOOK_URL,
        data=wrong[0],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=wrong[1],
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_signature")
    account.refresh_from_db()
    assert account.charges_enabled is False

    right = FakeStripe.signed_event("account.updated", obj, secret="whsec_connect_only")
    response = api_client.post(
        CONNECT_WEBHOOK_URL,
        data=right[0],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=right[1],
    )
    assert response.json() == {"received": True, "outcome": "account_updated"}
    account.refresh_from_db()
    assert account.charges_enabled is True


# --- the publish gate -------------------------------------------------------------------------

SESSION_BODY = {
    "title": "Watercolour basics",
    "description": "Paint.",
    "category": "art",
    "price": "30.00",
    "currency": "USD",
    "duration_minutes": 60,
    "capacity": 5,
    "is_online": True,
    "meeting_url": "https://meet.example.com/x",
}


def _start() -> str:
    return (timezone.now() + timedelta(days=3)).isoformat()


def test_paid_session_is_published_only_once_the_creator_can_be_paid(
    fake_stripe, creator, creator_client, api_client
):
    published = {**SESSION_BODY, "start_time": _start(), "status": "published"}

    refused = creator_client.post("/api/sessions/", published, format="json")
    assert (refused.status_code, refused.json()["code"]) == (409, "payouts_not_ready")
    assert not Session.objects.exists()

    draft = creator_client.post(
        "/api/sessions/", {**published, "status": "draft"}, format="json"
    ).json()
    patch = creator_client.patch(
        f"/api/sessions/{draft['id']}/", {"status": "published"}, format="json"
    )
    assert (patch.status_code, patch.json()["code"]) == (409, "payouts_not_ready")
    assert Session.objects.get(pk=draft["id"]).status == "draft"

    free = creator_client.post("/api/sessions/", {**published, "price": "0.00"}, format="json")
    assert free.status_code == 201
    made_paid = creator_client.patch(
        f"/api/sessions/{free.json()['id']}/", {"price": "10.00"}, format="json"
    )
    assert (made_paid.status_code, made_paid.json()["code"]) == (409, "payouts_not_ready")
    assert Session.objects.get(pk=free.json()["id"]).price == Decimal("0.00")

    onboard(fake_stripe, creator_client, api_client)
    patch = creator_client.patch(
        f"/api/sessions/{draft['id']}/", {"status": "published"}, format="json"
    )
    assert (patch.status_code, patch.json()["status"]) == (200, "published")
    assert creator_client.post("/api/sessions/", published, format="json").status_code == 201


def test_without_stripe_paid_sessions_publish_as_in_v1(settings, creator_client):
    settings.STRIPE_SECRET_KEY = ""
    published = {**SESSION_BODY, "start_time": _start(), "status": "published"}
    response = creator_client.post("/api/sessions/", published, format="json")
    assert (response.status_code, response.json()["status"]) == (201, "published")


def test_a_session_published_before_the_gate_stays_editable(fake_stripe, creator_client, creator):
    session = SessionFactory(creator=creator, price=Decimal("30.00"))
    response = creator_client.patch(
        f"/api/sessions/{session.pk}/", {"title": "Renamed"}, format="json"
    )
    assert (response.status_code, response.json()["title"]) == (200, "Renamed")


@pytest.mark.slow  # seeds the whole demo, paying its bookings at the stand-in
def test_seed_demo_onboards_the_demo_creators_at_the_stand_in(
    fake_stripe, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setenv("SEED_DEMO_PASSWORD", "demo-pass-for-tests-1")
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", stdout=out)

    assert "Payouts: 3 demo creator(s) onboarded" in out.getvalue()
    accounts = ConnectedAccount.objects.order_by("user__username")
    assert [(a.user.username, a.charges_enabled) for a in accounts] == [
        (username, True) for username in sorted(u.username for u in _demo_creators())
    ]
    assert fake_stripe.account_count == 3
    assert all(fake_stripe.account(a.stripe_account_id)["charges_enabled"] for a in accounts)
    bruno = auth_client(_demo_creators().get(username="bruno_teacher"))
    published = {**SESSION_BODY, "start_time": _start(), "status": "published"}
    assert bruno.post("/api/sessions/", published, format="json").status_code == 201

    # Seeding again makes no second account.
    call_command("seed_demo", stdout=io.StringIO())
    assert fake_stripe.account_count == 3


def _demo_creators():
    return User.objects.filter(role="creator")
