"""Outgoing webhook tasks (queue `default`): deliveries, the owner's e-mail when a receiver
answered 410, and the pruning of the delivery log and of old Idempotency-Keys."""

from backend.services import idempotency, webhooks
from backend.tasks.base import outbox_task
from backend.tasks.periodic import periodic_job

outbox_task(webhooks.DELIVER_TASK)(webhooks.webhook_deliver)
outbox_task(webhooks.OWNER_EMAIL_TASK)(webhooks.webhook_owner_email_send)


@periodic_job(name="webhooks.prune_log", every_seconds=3600)
def prune_webhook_log() -> int:
    return webhooks.webhook_log_prune()


@periodic_job(name="idempotency.prune_keys", every_seconds=3600)
def prune_idempotency_keys() -> int:
    return idempotency.idempotency_keys_prune()
