"""Chargebacks: the creator and staff hear when a dispute opens and how it closed."""

from backend.models import Booking, User
from backend.services.notifications.common import _email, _queue


def notify_dispute(*, booking: Booking, dispute_id: str, opened: bool, outcome: str = "") -> None:
    """A chargeback opened or closed: the session's creator (their payout is held or taken
    back) and every staff member with an address (they answer it in Stripe) are told, once
    each per booking and event."""
    if opened:
        kind = "dispute_opened"
        subject = f"Payment disputed: {booking.session.title}"
        body = (
            f"The attendee's bank disputed the payment of this booking (Stripe dispute "
            f"{dispute_id}). Its payout is held until the dispute is closed."
        )
    else:
        kind = "dispute_closed"
        won = outcome == "dispute_won"
        subject = f"Dispute {'won' if won else 'lost'}: {booking.session.title}"
        body = (
            f"The dispute {dispute_id} was closed in the platform's favour: the payout goes ahead."
            if won
            else f"The dispute {dispute_id} was lost: the money went back to the cardholder, "
            "and a payout already made is reversed."
        )
    staff = User.objects.filter(is_staff=True, is_active=True).exclude(email="").order_by("pk")
    recipients = [booking.session.creator, *staff]
    seen: set[int] = set()
    for recipient in recipients:
        if recipient.pk in seen:
            continue
        seen.add(recipient.pk)
        _queue(_email(kind, booking, recipient, subject, body), occasion=f"user:{recipient.pk}")
