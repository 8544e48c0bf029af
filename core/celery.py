"""The Celery app `core`: `celery -A core worker` and `celery -A core beat`.

Settings come from Django's (the CELERY_* names in core/settings.py). Tasks live in
backend/tasks/, one module per domain; the beat schedule is built from the periodic-job registry
(backend/tasks/periodic.py), so a job registered there runs under beat, under the inline
scheduler of `make run` and under `manage.py run_periodic_tasks` alike.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

app = Celery("core")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["backend"])


@app.on_after_finalize.connect
def _schedule_periodic_jobs(sender: Celery, **_kwargs: object) -> None:
    from backend.tasks.periodic import PERIODIC_JOBS

    for job in PERIODIC_JOBS.values():
        sender.add_periodic_task(job.every_seconds, sender.signature(job.task_name), name=job.name)
