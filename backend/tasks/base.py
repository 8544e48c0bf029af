"""Celery tasks that run outbox messages (backend/services/outbox.py).

`@outbox_task("domain.name")` registers a handler (a plain function taking the message's
kwargs) and a Celery task of that name that runs one message through `outbox_execute`. The
queue follows the name (CELERY_TASK_ROUTES: `notifications.*` -> mail, `payments.*` ->
payments, the rest -> default). Every such task is `acks_late`: a worker that dies mid-task
leaves its message to be delivered again, and the claim plus the handler's effect key make the
second run harmless. Retries are the outbox's (exponential backoff through `available_at`,
published by the sweep), not Celery's: they survive a broker restart.
"""

from collections.abc import Callable
from typing import TypeVar

from celery import shared_task

from backend.services.outbox import outbox_execute, register_handler

HandlerT = TypeVar("HandlerT", bound=Callable[..., object])


def outbox_task(name: str) -> Callable[[HandlerT], HandlerT]:
    def decorate(handler: HandlerT) -> HandlerT:
        register_handler(name, handler)

        @shared_task(name=name, acks_late=True, ignore_result=True)
        def run_message(message_id: int) -> str:
            return outbox_execute(message_id=message_id)

        return handler

    return decorate
