"""The registry of periodic jobs: one place for beat, the inline scheduler and cron.

    @periodic_job(name="bookings.expire", every_seconds=60)
    def expire_bookings() -> int: ...

registers the job and a Celery task `periodic.<name>`; core/celery.py gives beat one schedule
entry per job, backend/tasks/scheduler.py runs them in the dev server, and
`manage.py run_periodic_tasks` runs each once, now. Later features (reminders, payouts,
outgoing webhooks) add their jobs the same way, in their own backend/tasks/<domain>.py.

Two beat processes started by mistake both send every job: `run_periodic_job` lets one run per
job and period (a PeriodicRun row, unique on job and slot), and the jobs are idempotent anyway
(expiring an expired booking, sweeping a published message, deleting a deleted file: no-ops).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from celery import shared_task
from django.db import IntegrityError, transaction

from backend.models import PeriodicRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: int
    function: Callable[[], object]

    @property
    def task_name(self) -> str:
        return f"periodic.{self.name}"


PERIODIC_JOBS: dict[str, PeriodicJob] = {}


def periodic_job(
    *, name: str, every_seconds: int
) -> Callable[[Callable[[], object]], Callable[[], object]]:
    def decorate(function: Callable[[], object]) -> Callable[[], object]:
        if name in PERIODIC_JOBS:
            raise RuntimeError(f"two periodic jobs named {name!r}")
        job = PeriodicJob(name=name, every_seconds=every_seconds, function=function)
        PERIODIC_JOBS[name] = job

        @shared_task(name=job.task_name, acks_late=True, ignore_result=True)
        def run_job() -> str:
            return run_periodic_job(name)

        return function

    return decorate


def run_periodic_job(name: str, *, at: float | None = None) -> str:
    """Runs the job unless it already ran in this period (another beat sent it too)."""
    job = PERIODIC_JOBS[name]
    slot = int((time.time() if at is None else at) // job.every_seconds)
    try:
        with transaction.atomic():
            run = PeriodicRun.objects.create(job=name, slot=slot)
    except IntegrityError:
        logger.info("periodic job %s already ran in period %s", name, slot)
        return "skipped"
    result = job.function()
    PeriodicRun.objects.filter(pk=run.pk).update(result=str(result)[:200])
    logger.info("periodic job %s: %s", name, result)
    return f"ran: {result}"


def run_all_periodic_jobs(*, only: list[str] | None = None) -> dict[str, object]:
    """Every job (or those named) once, now, in this process (cron, tests): no period
    bookkeeping, so running it twice runs the jobs twice (they are idempotent)."""
    results: dict[str, object] = {}
    for job in PERIODIC_JOBS.values():
        if only is None or job.name in only:
            results[job.name] = job.function()
    return results
