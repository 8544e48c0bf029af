"""Payout tasks (queue `payments`): the job that finds bookings whose creator's share is due,
and the transfers and reversals it asks for, made with no lock held (services/payouts.py)."""

from django.conf import settings

from backend.services import payouts
from backend.tasks.base import outbox_task
from backend.tasks.periodic import periodic_job

outbox_task(payouts.TRANSFER_TASK)(payouts.transfer_send)
outbox_task(payouts.REVERSAL_TASK)(payouts.transfer_reverse)


@periodic_job(name="payouts.schedule", every_seconds=settings.PAYOUT_JOB_SECONDS)
def schedule_payouts() -> int:
    return payouts.payouts_schedule_due()
