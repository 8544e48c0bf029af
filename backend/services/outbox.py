"""The transactional outbox: tasks asked for by a database change commit with that change.

    with transaction.atomic():
        ... the change ...
        outbox_enqueue(task="notifications.send_email", kwargs={...}, effect_key="email:...")

1. `outbox_enqueue` inserts an OutboxMessage in the caller's transaction. Its `effect_key` is
   unique: asking twice for one effect keeps one row (the second ask is a no-op).
2. After the commit, the relay (`outbox_relay`) publishes the row to the broker, or with
   TASKS_INLINE runs it right here. A rolled-back change leaves no row and publishes nothing;
   a broker that is down leaves the row `pending`, and the request goes on unharmed.
3. The periodic sweep (`outbox_sweep`) publishes what is due: rows the relay could not publish
   (broker down, a crash between commit and publish), retries whose backoff has passed,
   messages published long ago and never started (a broker that lost them), and rows whose
   worker died mid-run (the lease ran out).
4. A worker runs a message through `outbox_execute`: it claims the row (one conditional UPDATE,
   so two deliveries of one message cannot both run it), calls the task's handler, and marks
   the row `done`. A handler that raises is retried with exponential backoff (the row goes back
   to `pending` with a later `available_at`); `PermanentTaskError`, or running out of
   `max_attempts`, marks it `failed` for a human to look at.

Delivery is at least once; effects are exactly once because each handler is idempotent by its
effect: the row's `done` status for e-mails, Stripe's idempotency key (our own ids) for refunds.
No lock is held while a handler runs, so a handler may call Stripe, S3 or a mail server.
"""

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from backend.models import OutboxMessage

logger = logging.getLogger(__name__)

Status = OutboxMessage.Status
Handler = Callable[..., object]

# task name -> the function that performs its effect (registered by backend/tasks/*).
HANDLERS: dict[str, Handler] = {}

SWEEP_BATCH = 500


class PermanentTaskError(Exception):
    """Raised by a handler when retrying cannot help (a refused request, bad data)."""


class RetryLater(Exception):
    """Raised by a handler that keeps its own retry schedule (outgoing webhooks: backoff with
    jitter over days): run the message again after `delay`, whatever `max_attempts` says."""

    def __init__(self, delay: timedelta, reason: str = ""):
        super().__init__(reason or f"retry in {delay}")
        self.delay = delay


def register_handler(name: str, handler: Handler) -> None:
    if HANDLERS.get(name, handler) is not handler:
        raise RuntimeError(f"two handlers for task {name!r}")
    HANDLERS[name] = handler


def outbox_enqueue(
    *,
    task: str,
    kwargs: dict[str, Any],
    effect_key: str,
    max_attempts: int | None = None,
    retry_failed: bool = False,
) -> OutboxMessage | None:
    """Asks for `task(**kwargs)` once the caller's transaction commits; None if already asked.

    Call it inside the transaction of the change that causes the task. `kwargs` must be JSON.
    `retry_failed`: if this effect was asked for before and gave up (`failed`), try it again
    (a person asked for it: staff refunding by hand).
    """
    message = OutboxMessage(
        task=task, kwargs=kwargs, effect_key=effect_key, max_attempts=max_attempts
    )
    try:
        # A savepoint: a duplicate effect key must not break the caller's transaction.
        with transaction.atomic():
            message.save()
    except IntegrityError:
        existing = OutboxMessage.objects.filter(effect_key=effect_key).first()
        if existing is None:
            raise
        if not (retry_failed and existing.status == Status.FAILED):
            logger.info("outbox: %s already asked for", effect_key)
            return None
        OutboxMessage.objects.filter(pk=existing.pk, status=Status.FAILED).update(
            status=Status.PENDING, attempts=0, available_at=timezone.now(), done_at=None
        )
        message = existing
    message_id = message.pk
    # robust: whatever happens in the relay, the committed change stands and the caller's
    # response goes out; the row waits for the sweep.
    transaction.on_commit(lambda: outbox_relay(message_id=message_id), robust=True)
    return message


def queue_mode() -> str:
    """`inline` (no broker: tasks run in the process that asked for them) or `broker`."""
    return "inline" if settings.TASKS_INLINE else "broker"


def outbox_relay(*, message_id: int) -> None:
    """After the commit: publish the message (or run it, inline). Never raises."""
    if queue_mode() == "inline":
        try:
            outbox_execute(message_id=message_id)
        except Exception:
            logger.exception("outbox: inline run of message %s failed", message_id)
        return
    message = OutboxMessage.objects.filter(pk=message_id).first()
    if message is None:
        return
    _publish(message, still_due=Q(status=Status.PENDING))


# After a failed publish this process leaves the broker alone for a few seconds: with the broker
# unreachable (not refusing: a connect timeout), every request would otherwise wait for it.
BROKER_BACKOFF_SECONDS = 5.0
_broker_down_until = 0.0


def _publish(message: OutboxMessage, *, still_due: Q) -> bool:
    """Sends the message to the broker, then marks it published if it is still as it was
    (`still_due`): a worker may have claimed it in between."""
    global _broker_down_until
    from core.celery import app

    if time.monotonic() < _broker_down_until:
        return False
    try:
        app.send_task(message.task, kwargs={"message_id": message.pk})
    except Exception as error:
        # kombu's OperationalError for a broker that is down, or anything else: the row stays
        # as it is and the sweep tries again.
        _broker_down_until = time.monotonic() + BROKER_BACKOFF_SECONDS
        logger.warning(
            "outbox: could not publish message %s (%s): %s: %s",
            message.pk,
            message.task,
            type(error).__name__,
            error,
        )
        return False
    OutboxMessage.objects.filter(still_due, pk=message.pk).update(
        status=Status.PUBLISHED, published_at=timezone.now(), claimed_until=None
    )
    return True


def _claim(message_id: int, now: datetime) -> OutboxMessage | None:
    claimable = Q(status__in=(Status.PENDING, Status.PUBLISHED), available_at__lte=now) | Q(
        status=Status.RUNNING, claimed_until__lt=now
    )
    claimed = OutboxMessage.objects.filter(claimable, pk=message_id).update(
        status=Status.RUNNING,
        claimed_until=now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS),
        attempts=F("attempts") + 1,
    )
    if not claimed:
        return None
    return OutboxMessage.objects.get(pk=message_id)


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the `attempts`-th failed attempt."""
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    seconds = min(base * 2 ** max(attempts - 1, 0), settings.OUTBOX_RETRY_MAX_SECONDS)
    return timedelta(seconds=seconds)


def outbox_execute(*, message_id: int) -> str:
    """Runs one message's handler if nobody else is running or has run it. Returns the outcome:
    `done`, `retry`, `failed`, or `skipped` (done already, someone else's, or not due yet)."""
    now = timezone.now()
    message = _claim(message_id, now)
    if message is None:
        return "skipped"
    handler = HANDLERS.get(message.task)
    try:
        if handler is None:
            raise PermanentTaskError(f"no handler for task {message.task!r}")
        handler(**message.kwargs)
    except PermanentTaskError as error:
        logger.error("outbox: message %s (%s) failed for good: %s", message.pk, message.task, error)
        _finish(message, status=Status.FAILED, error=error)
        return "failed"
    except RetryLater as error:
        _retry(message, delay=error.delay, error=error)
        return "retry"
    except Exception as error:
        if message.max_attempts is not None and message.attempts >= message.max_attempts:
            logger.error(
                "outbox: message %s (%s) failed after %s attempts: %s",
                message.pk,
                message.task,
                message.attempts,
                error,
            )
            _finish(message, status=Status.FAILED, error=error)
            return "failed"
        delay = retry_delay(message.attempts)
        logger.warning(
            "outbox: message %s (%s) attempt %s failed, retrying in %ss: %s: %s",
            message.pk,
            message.task,
            message.attempts,
            int(delay.total_seconds()),
            type(error).__name__,
            error,
        )
        _retry(message, delay=delay, error=error)
        return "retry"
    _finish(message, status=Status.DONE, error=None)
    return "done"


def _retry(message: OutboxMessage, *, delay: timedelta, error: BaseException) -> None:
    OutboxMessage.objects.filter(pk=message.pk, status=Status.RUNNING).update(
        status=Status.PENDING,
        available_at=timezone.now() + delay,
        claimed_until=None,
        last_error=_describe(error),
    )


def outbox_wake(*, effect_key: str) -> None:
    """Makes a message waiting for its retry due now and relays it (a webhook delivery whose
    predecessor just went through). Outside a transaction, or after its commit."""
    message = OutboxMessage.objects.filter(effect_key=effect_key, status=Status.PENDING).first()
    if message is None:
        return
    OutboxMessage.objects.filter(pk=message.pk, status=Status.PENDING).update(
        available_at=timezone.now()
    )
    message_id = message.pk
    transaction.on_commit(lambda: outbox_relay(message_id=message_id), robust=True)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:2000]


def _finish(message: OutboxMessage, *, status: str, error: BaseException | None) -> None:
    OutboxMessage.objects.filter(pk=message.pk).update(
        status=status,
        done_at=timezone.now(),
        claimed_until=None,
        last_error=_describe(error) if error else message.last_error,
    )


def _due_conditions(now: datetime) -> dict[str, Q]:
    republish_before = now - timedelta(seconds=settings.OUTBOX_REPUBLISH_AFTER_SECONDS)
    return {
        Status.PENDING: Q(status=Status.PENDING, available_at__lte=now),
        Status.PUBLISHED: Q(status=Status.PUBLISHED, published_at__lt=republish_before),
        Status.RUNNING: Q(status=Status.RUNNING, claimed_until__lt=now),
    }


def due_messages(now: datetime) -> list[OutboxMessage]:
    """What the sweep (re)publishes, oldest first."""
    conditions = _due_conditions(now).values()
    due = Q()
    for condition in conditions:
        due |= condition
    return list(OutboxMessage.objects.filter(due).order_by("available_at", "id")[:SWEEP_BATCH])


def outbox_sweep(*, now: datetime | None = None) -> int:
    """Publishes (inline: runs) every due message; returns how many were published (run).
    Holds no lock: a message published twice is claimed once."""
    now = now or timezone.now()
    conditions = _due_conditions(now)
    handled = 0
    for message in due_messages(now):
        if queue_mode() == "inline":
            if outbox_execute(message_id=message.pk) == "skipped":
                continue
        elif not _publish(message, still_due=conditions[message.status]):
            break  # the broker is down: the rest waits for the next sweep
        handled += 1
    return handled
