from django.core.management.base import BaseCommand

from backend.tasks.periodic import PERIODIC_JOBS, run_all_periodic_jobs


class Command(BaseCommand):
    help = (
        "Runs every periodic job once, now, synchronously (expiry, outbox sweep, orphaned files, "
        "...). For cron instead of Celery beat, and for tests."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--job", action="append", choices=sorted(PERIODIC_JOBS), help="only these jobs"
        )

    def handle(self, *args, **options):
        only = options.get("job")
        for name, result in run_all_periodic_jobs(only=only).items():
            self.stdout.write(f"{name}: {result}")
