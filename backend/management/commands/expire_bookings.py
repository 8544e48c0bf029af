from django.core.management.base import BaseCommand

from backend.services.waitlist import bookings_expire_and_offer


class Command(BaseCommand):
    help = (
        "Marks pending bookings past their hold (hold_expires_at) as expired and offers the "
        "freed seats to the waitlist. For cron."
    )

    def handle(self, *args, **options):
        expired = bookings_expire_and_offer()
        self.stdout.write(f"Expired {expired} booking(s).")
