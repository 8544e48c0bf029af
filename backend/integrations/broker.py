"""The message broker, as far as the API cares: can we reach it now?"""

import logging

from django.conf import settings

logger = logging.getLogger(__name__)


def queue_status() -> str:
    """`inline` (no broker: tasks run in-process), `ok`, or `down` (publishing would fail;
    outbox rows wait for the sweep)."""
    if settings.TASKS_INLINE:
        return "inline"
    from core.celery import app

    try:
        with app.connection_for_write() as connection:
            connection.ensure_connection(
                max_retries=1, interval_start=0, interval_step=0, timeout=1
            )
    except Exception as error:
        logger.warning("health check: broker unreachable: %s: %s", type(error).__name__, error)
        return "down"
    return "ok"
