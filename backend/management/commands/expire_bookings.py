from django.core.management.base import BaseCommand

from backend.services.booking_changes import bookings_expire_stale


class Command(BaseCommand):
    help = "Marks pending bookings past their hold (BOOKING_HOLD_MINUTES) as expired. For cron."

    def handle(self, *args, **options):
        expired = bookings_expire_stale()
        self.stdout.write(f"Expired {expired} booking(s).")
