"""Periodic jobs without Celery beat: a thread in the development server.

With no broker (TASKS_INLINE, the `make run` default) tasks run inline after their commit, and
this thread runs the registered periodic jobs (backend/tasks/periodic.py) on their intervals
inside `manage.py runserver`, so expiry, the outbox sweep (which retries failed e-mails) and the
clean-ups happen there as they would under beat. It starts only in runserver's serving process
(not in its autoreloader parent, not under gunicorn or in tests); INLINE_SCHEDULER=false turns
it off. A deployment without a broker runs `manage.py run_periodic_tasks` from cron instead.
"""

import logging
import os
import sys
import threading
import time

from django.conf import settings
from django.db import connections

from backend.tasks.periodic import PERIODIC_JOBS, run_periodic_job

logger = logging.getLogger(__name__)

FIRST_RUN_DELAY_SECONDS = 5.0
TICK_SECONDS = 1.0

_started = threading.Event()


def should_start(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> bool:
    argv = sys.argv if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    if not settings.TASKS_INLINE or environ.get("INLINE_SCHEDULER", "true").lower() == "false":
        return False
    if len(argv) < 2 or argv[1] != "runserver":
        return False
    # The autoreloader's parent only watches files; the child (RUN_MAIN) serves.
    return environ.get("RUN_MAIN") == "true" or "--noreload" in argv


class InlineScheduler(threading.Thread):
    def __init__(self) -> None:
        super().__init__(name="inline-periodic-jobs", daemon=True)
        self.stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic() + FIRST_RUN_DELAY_SECONDS
        next_run = dict.fromkeys(PERIODIC_JOBS, start)
        while not self.stop_event.wait(TICK_SECONDS):
            now = time.monotonic()
            for name, due in next_run.items():
                if now < due:
                    continue
                next_run[name] = now + PERIODIC_JOBS[name].every_seconds
                try:
                    run_periodic_job(name)
                except Exception:
                    logger.exception("periodic job %s failed", name)
                finally:
                    connections.close_all()


def start_inline_scheduler() -> InlineScheduler | None:
    if _started.is_set():
        return None
    _started.set()
    scheduler = InlineScheduler()
    scheduler.start()
    logger.info("inline scheduler started: %s", ", ".join(sorted(PERIODIC_JOBS)))
    return scheduler
