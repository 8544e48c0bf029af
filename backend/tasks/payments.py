"""Payment tasks (queue `payments`): refunds, releasing saved cards and the off-session charges
of sessions that reached their minimum, made with no lock held and retried until Stripe
answers (backend/services/refunds.py)."""

from backend.services import refunds, scheduled_payments
from backend.tasks.base import outbox_task

outbox_task(refunds.REFUND_TASK)(refunds.refund_charge_now)
outbox_task(refunds.CANCEL_INTENTS_TASK)(refunds.cancel_open_intents)
outbox_task(refunds.RELEASE_CARD_TASK)(refunds.release_saved_card)
# The off-session charge of a session that reached its minimum (one per booking).
outbox_task(scheduled_payments.CHARGE_TASK)(scheduled_payments.charge_scheduled)
