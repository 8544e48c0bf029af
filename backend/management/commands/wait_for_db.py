"""Waits until the default database accepts connections (container start, before migrate)."""

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connections


class Command(BaseCommand):
    help = "Waits until the database accepts connections, or fails after --timeout seconds."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=60.0)
        parser.add_argument("--interval", type=float, default=1.0)

    def handle(self, *args, timeout: float, interval: float, **options):
        deadline = time.monotonic() + timeout
        connection = connections["default"]
        while True:
            try:
                connection.ensure_connection()
            except OperationalError as error:
                connection.close()
                if time.monotonic() >= deadline:
                    raise CommandError(
                        f"wait_for_db: database still unreachable after {timeout:g} s: {error}"
                    ) from error
                self.stdout.write("wait_for_db: database not ready, retrying")
                time.sleep(interval)
                continue
            self.stdout.write("wait_for_db: database is ready.")
            return
