"""Payment tasks (queue `payments`): refunds, made with no lock held and retried until Stripe
answers (backend/services/refunds.py)."""

from backend.services import refunds
from backend.tasks.base import outbox_task

outbox_task(refunds.REFUND_TASK)(refunds.refund_charge_now)
outbox_task(refunds.CANCEL_INTENTS_TASK)(refunds.cancel_open_intents)
