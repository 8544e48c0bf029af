"""Helpers shared by the payout tests (Stripe Connect, issue 16)."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from backend.models import Booking, ConnectedAccount, Session
from backend.tests.factories import SessionFactory
from backend.tests.fake_stripe import FakeStripe
from backend.tests.payments_support import book, deliver, pay

ONBOARDING_URL = "/api/payouts/onboarding/"
ACCOUNT_URL = "/api/payouts/account/"
TRANSFERS_URL = "/api/payouts/transfers/"
CONNECT_WEBHOOK_URL = "/api/payment/webhook/connect/"
SPA = "http://localhost:3000"
LINK_BODY = {"return_url": f"{SPA}/payouts/done", "refresh_url": f"{SPA}/payouts/again"}


def onboard(fake: FakeStripe, creator_client, api_client) -> str:
    """The creator onboards end to end: link, Stripe's form, account.updated. The account id."""
    response = creator_client.post(ONBOARDING_URL, LINK_BODY, format="json")
    assert response.status_code == 200, response.content
    account_id = creator_client.get(ACCOUNT_URL).json()["account_id"]
    account = fake.complete_onboarding(account_id)
    outcome = deliver(api_client, *FakeStripe.signed_event("account.updated", account))
    assert outcome.json()["outcome"] == "account_updated"
    return account_id


def connected(creator, fake: FakeStripe, **fields) -> ConnectedAccount:
    """A creator whose onboarding is done, without going through the API."""
    account = fake.add_account()
    fake.complete_onboarding(account["id"])
    values = {"charges_enabled": True, "payouts_enabled": True, "details_submitted": True}
    return ConnectedAccount.objects.create(
        user=creator, stripe_account_id=account["id"], **{**values, **fields}
    )


def paid_booking(fake, user, session: Session, seats: int = 1) -> tuple[Booking, str]:
    booking, intent_id = pay(fake, user, book(user, session, seats=seats))
    assert (booking.status, booking.payment_status) == ("confirmed", "paid")
    return booking, intent_id


def end_session(session: Session, *, hours_ago: float) -> Session:
    """Moves a session into the past: it ended `hours_ago` hours ago."""
    start = timezone.now() - timedelta(hours=hours_ago, minutes=session.duration_minutes)
    Session.objects.filter(pk=session.pk).update(start_time=start)
    session.refresh_from_db()
    return session


def ended_paid_booking(
    fake, user, creator, *, price=Decimal("100.00"), currency="USD", seats=1, hours_ago=25
):
    session = SessionFactory(creator=creator, price=price, currency=currency)
    booking, intent_id = paid_booking(fake, user, session, seats=seats)
    end_session(session, hours_ago=hours_ago)
    return booking, intent_id
