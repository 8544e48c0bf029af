"""House-keeping: the outbox sweep and orphaned stored files."""

from datetime import timedelta

from django.conf import settings

from backend.services.files import files_delete_orphans
from backend.services.outbox import outbox_sweep
from backend.tasks.periodic import periodic_job


@periodic_job(name="outbox.sweep", every_seconds=settings.OUTBOX_SWEEP_SECONDS)
def sweep_outbox() -> int:
    return outbox_sweep()


@periodic_job(name="files.delete_orphans", every_seconds=3600)
def delete_orphaned_files() -> int:
    return files_delete_orphans(older_than=timedelta(minutes=settings.ORPHAN_FILE_GRACE_MINUTES))
