"""Staff and payouts in the admin: a creator's fee rate, and "Retry transfer" (issue 16)."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages

from backend.models import ConnectedAccount, Transfer
from backend.services.payouts import payouts_schedule_due
from backend.tests.admin_support import log_in_staff
from backend.tests.payouts_support import connected, ended_paid_booking

pytestmark = pytest.mark.django_db

ACCOUNTS_URL = "/admin/backend/connectedaccount/"
TRANSFERS_URL = "/admin/backend/transfer/"


def test_staff_set_a_creators_fee_rate_and_nothing_else(client, fake_stripe, creator):
    account = connected(creator, fake_stripe)
    log_in_staff(client)

    response = client.post(
        f"{ACCOUNTS_URL}{account.pk}/change/",
        {"fee_percent": "12.50", "charges_enabled": "", "stripe_account_id": "acct_forged"},
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.fee_percent == Decimal("12.50")
    assert (account.charges_enabled, account.stripe_account_id.startswith("acct_")) == (True, True)
    assert account.stripe_account_id != "acct_forged"
    assert client.get(f"{ACCOUNTS_URL}add/").status_code == 403


def test_retry_transfer_action_sends_a_refused_transfer_once(
    client, fake_stripe, user, creator, django_capture_on_commit_callbacks
):
    connected(creator, fake_stripe)
    booking, _ = ended_paid_booking(fake_stripe, user, creator)
    fake_stripe.fail_next(
        "/v1/transfers", status=400, error_type="invalid_request_error", message="No."
    )
    with django_capture_on_commit_callbacks(execute=True):
        payouts_schedule_due()
    transfer = Transfer.objects.get(booking=booking)
    assert transfer.status == "failed"
    log_in_staff(client)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            TRANSFERS_URL, {"action": "retry_transfers", "_selected_action": [transfer.pk]}
        )

    assert response.status_code == 302
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [f"Transfer {transfer.pk}: queued again."]
    transfer.refresh_from_db()
    assert transfer.status == "paid"
    assert fake_stripe.transfer_count == 1

    response = client.post(
        TRANSFERS_URL, {"action": "retry_transfers", "_selected_action": [transfer.pk]}
    )
    assert [str(m) for m in get_messages(response.wsgi_request)][-1] == (
        f"Transfer {transfer.pk}: not retried: A paid transfer cannot be retried."
    )
    assert fake_stripe.transfer_count == 1
    assert ConnectedAccount.objects.count() == 1
