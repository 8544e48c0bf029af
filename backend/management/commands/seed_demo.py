"""Demo data: an admin, 3 creators, 5 users, ~30 sessions and some bookings.

Idempotent: running it again creates nothing twice. Every demo account gets the same password:
SEED_DEMO_PASSWORD, or one generated per run and printed, when the account is created (the
admin: DJANGO_SUPERUSER_PASSWORD, else the same); existing accounts keep theirs unless
--reset-passwords, which sets and prints them again.

Paid demo bookings are paid through the payment service (a PaymentIntent paid with Stripe's
test card `pm_card_visa`), so each has its Payment rows and can be cancelled and refunded like
any other. That needs a test-mode Stripe key: `make run` starts the Stripe stand-in for it
(scripts/dev_server.py). Without one, paid demo bookings are skipped.
"""

import os
import secrets
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.test.utils import override_settings
from django.utils import timezone

from backend import booking_rules
from backend.integrations import stripe_gateway
from backend.management.commands.ensure_superuser import password_problems
from backend.models import Booking, Session, User
from backend.services.bookings import booking_cancel
from backend.services.payments import payment_confirm_from_client, payment_create_intent
from backend.services.payouts import account_refresh, payouts_onboarding


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


DEMO_CARD = "pm_card_visa"
PAID_STATUSES = {"paid", "refunded"}

CREATORS = [
    ("alice_coach", "Alice", "Moreau", "Career and leadership coach."),
    ("bruno_teacher", "Bruno", "Silva", "Teaches Python and data to beginners."),
    ("chen_trainer", "Chen", "Wei", "Strength, mobility and yoga trainer."),
]
USERS = [
    ("dana", "Dana", "Kowalski"),
    ("emeka", "Emeka", "Okafor"),
    ("fatima", "Fatima", "Haddad"),
    ("gustav", "Gustav", "Lind"),
    ("hana", "Hana", "Sato"),
]

# (creator index, title, category, price, currency, days from today, hour, minutes, capacity,
#  online, status)
SESSIONS = [
    (0, "Negotiating your salary", "career", "45.00", "USD", 3, 17, 60, 12, True, "published"),
    (0, "First 90 days as a manager", "career", "60.00", "USD", 6, 18, 90, 10, True, "published"),
    (0, "CV review clinic", "career", "0.00", "USD", 2, 12, 45, 20, True, "published"),
    (0, "Public speaking workshop", "career", "80.00", "EUR", 12, 9, 180, 8, False, "published"),
    (0, "Career change Q&A", "career", "0.00", "USD", 9, 19, 60, 50, True, "published"),
    (0, "Leadership book club", "career", "15.00", "USD", -10, 18, 60, 15, True, "published"),
    (0, "Interview practice", "career", "35.00", "USD", -4, 17, 60, 6, True, "published"),
    (0, "Feedback that lands", "career", "40.00", "GBP", 20, 16, 75, 12, True, "draft"),
    (0, "Mentoring circle", "career", "0.00", "USD", 15, 18, 60, 10, True, "cancelled"),
    (0, "Remote team rituals", "career", "25.00", "USD", 25, 15, 60, 30, True, "published"),
    (1, "Python from zero", "coding", "30.00", "USD", 4, 10, 120, 25, True, "published"),
    (1, "Pandas in practice", "coding", "40.00", "USD", 8, 10, 120, 20, True, "published"),
    (1, "SQL for analysts", "coding", "35.00", "EUR", 5, 14, 90, 20, True, "published"),
    (1, "Git without fear", "coding", "0.00", "USD", 1, 16, 60, 100, True, "published"),
    (1, "Testing with pytest", "coding", "45.00", "USD", 14, 10, 150, 15, True, "published"),
    (1, "Django weekend bootcamp", "coding", "120.00", "EUR", 21, 9, 480, 12, False, "published"),
    (1, "Code review dojo", "coding", "20.00", "USD", -7, 18, 90, 10, True, "published"),
    (1, "Intro to machine learning", "coding", "50.00", "USD", -2, 10, 120, 30, True, "published"),
    (1, "Type hints deep dive", "coding", "25.00", "USD", 30, 17, 60, 20, True, "draft"),
    (1, "Office hours", "coding", "0.00", "USD", 7, 12, 30, 5, True, "published"),
    (2, "Morning yoga flow", "yoga", "12.00", "EUR", 1, 7, 60, 15, False, "published"),
    (2, "Mobility for desk workers", "fitness", "0.00", "EUR", 3, 12, 30, 40, True, "published"),
    (2, "Kettlebell basics", "fitness", "25.00", "EUR", 5, 18, 60, 8, False, "published"),
    (2, "Yin yoga and breathing", "yoga", "15.00", "EUR", 10, 20, 75, 15, False, "published"),
    (2, "5k running plan kickoff", "fitness", "10.00", "EUR", 13, 8, 45, 30, False, "published"),
    (2, "Strength over 40", "fitness", "30.00", "EUR", 17, 18, 60, 10, False, "published"),
    (2, "Meditation for sleep", "wellness", "0.00", "EUR", -3, 21, 30, 100, True, "published"),
    (2, "Posture clinic", "wellness", "20.00", "EUR", -12, 17, 45, 10, False, "published"),
    (2, "Partner yoga", "yoga", "1800.00", "JPY", 24, 11, 60, 12, False, "draft"),
    (2, "Weekend retreat planning", "wellness", "0.00", "EUR", 28, 10, 60, 25, True, "published"),
]

# (user index, session title, seats, status, payment status)
BOOKINGS = [
    (0, "CV review clinic", 1, "confirmed", "not_required"),
    (0, "Python from zero", 1, "confirmed", "paid"),
    (0, "Leadership book club", 1, "confirmed", "paid"),
    (1, "Git without fear", 2, "confirmed", "not_required"),
    (1, "Negotiating your salary", 1, "pending", "unpaid"),
    (1, "Code review dojo", 1, "confirmed", "paid"),
    (2, "Morning yoga flow", 1, "confirmed", "paid"),
    (2, "Mobility for desk workers", 1, "confirmed", "not_required"),
    (2, "Meditation for sleep", 1, "confirmed", "not_required"),
    (3, "Pandas in practice", 1, "cancelled", "refunded"),
    (3, "Kettlebell basics", 2, "confirmed", "paid"),
    (4, "Office hours", 1, "confirmed", "not_required"),
    (4, "Intro to machine learning", 1, "confirmed", "paid"),
]


def refuse_weak_passwords(*, shared: str, admin: str) -> None:
    """With DJANGO_DEBUG=false the given passwords pass ensure_superuser's check, or nothing is
    written: the admin is a superuser, and the demo accounts sign in to a real deployment.
    Generated passwords (none given) are random and always pass."""
    given = [("admin", admin, "DJANGO_SUPERUSER_PASSWORD or SEED_DEMO_PASSWORD")] if admin else []
    if shared:
        given += [(username, shared, "SEED_DEMO_PASSWORD") for username, *_ in CREATORS + USERS]
    for username, password, variable in given:
        problems = password_problems(password, username=username, email=f"{username}@example.com")
        if problems:
            # The password itself is never printed: it would end up in container logs.
            raise CommandError(
                f"seed_demo: {variable} is refused with DJANGO_DEBUG=false (account "
                f"{username!r}): " + "; ".join(problems) + ". Leave it empty for random "
                "passwords, or choose a long random one."
            )


class Command(BaseCommand):
    help = "Creates demo users, sessions and bookings (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="Set the passwords of existing demo accounts again (and print them).",
        )

    def handle(self, *args, **options):
        with transaction.atomic():
            users, sessions, created_sessions, credentials, shared_password = (
                self._seed_accounts_and_sessions(reset=options["reset_passwords"])
            )
        onboarded = self._seed_payout_accounts()
        created_bookings, skipped = self._seed_bookings(users, sessions)

        self.stdout.write(
            f"Demo data: {created_sessions} session(s) and {created_bookings} booking(s) created "
            f"({Session.objects.count()} sessions, {Booking.objects.count()} bookings in all)."
        )
        if skipped:
            self.stdout.write(
                f"Payments are not configured with a test-mode key: {skipped} paid demo "
                "booking(s) skipped (`make run` starts a Stripe stand-in for them)."
            )
        if onboarded:
            self.stdout.write(
                f"Payouts: {onboarded} demo creator(s) onboarded at the Stripe stand-in."
            )
        self.stdout.write("Accounts (username / role / password):")
        for username, role, password in credentials:
            self.stdout.write(f"  {username:<15} {role:<8} {password}")
        if shared_password:
            self.stdout.write(f"Demo password (every demo account): {shared_password}")
        else:
            self.stdout.write(
                "Passwords unchanged; `python manage.py seed_demo --reset-passwords` sets new ones."
            )

    def _seed_accounts_and_sessions(self, *, reset: bool):
        chosen_password = os.environ.get("SEED_DEMO_PASSWORD", "").strip()
        # One password for every demo account, so a client (Postman, API_EXAMPLES.md) needs one.
        shared_password = chosen_password or secrets.token_urlsafe(12)
        chosen_admin_password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "").strip()
        admin_password = chosen_admin_password or shared_password
        if not settings.DEBUG:
            # Only chosen passwords: generated ones are random.
            refuse_weak_passwords(
                shared=chosen_password, admin=chosen_admin_password or chosen_password
            )
        credentials: list[tuple[str, str, str]] = []
        shared_password_used = False

        def ensure_user(username, first, last, *, role, password, bio="", staff=False):
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "first_name": first,
                    "last_name": last,
                    "email": f"{username}@example.com",
                    "role": role,
                    "bio": bio,
                    "is_staff": staff,
                    "is_superuser": staff,
                },
            )
            if created or reset:
                nonlocal shared_password_used
                shared_password_used |= password == shared_password
                user.set_password(password)
                user.save(update_fields=["password"])
                credentials.append((username, role if not staff else "admin", password))
            else:
                credentials.append((username, role if not staff else "admin", "(unchanged)"))
            return user

        ensure_user(
            "admin", "Site", "Admin", role=User.Role.USER, password=admin_password, staff=True
        )
        creators = [
            ensure_user(u, f, last, role=User.Role.CREATOR, password=shared_password, bio=bio)
            for u, f, last, bio in CREATORS
        ]
        users = [
            ensure_user(u, f, last, role=User.Role.USER, password=shared_password)
            for u, f, last in USERS
        ]

        today = timezone.now().replace(minute=0, second=0, microsecond=0)
        sessions: dict[str, Session] = {}
        created_sessions = 0
        for (
            index,
            title,
            category,
            price,
            currency,
            days,
            hour,
            minutes,
            capacity,
            online,
            status,
        ) in SESSIONS:
            creator = creators[index]
            session, created = Session.objects.get_or_create(
                creator=creator,
                title=title,
                defaults={
                    "description": f"{title}, with {creator.first_name}. {creator.bio}",
                    "category": category,
                    "price": Decimal(price),
                    "currency": currency,
                    "duration_minutes": minutes,
                    "start_time": (today + timedelta(days=days)).replace(hour=hour),
                    "capacity": capacity,
                    "is_online": online,
                    "meeting_url": f"https://meet.example.com/{creator.username}-{len(sessions)}"
                    if online
                    else "",
                    "location": "" if online else "Studio 4, 12 Market Street, Lisbon",
                    "status": status,
                },
            )
            created_sessions += created
            sessions[title] = session
        return (
            users,
            sessions,
            created_sessions,
            credentials,
            shared_password if shared_password_used else "",
        )

    @staticmethod
    def _seed_payout_accounts() -> int:
        """With the Stripe stand-in (`make run` without keys), every demo creator gets a
        connected account and goes through its onboarding form at once, so they can publish
        paid sessions (CONTRACT.md, "Creators get paid"). Real Stripe (even in test mode) needs
        a person to fill the form in: nothing is done there. Returns how many were onboarded."""
        base = settings.STRIPE_API_BASE.rstrip("/")
        if not (stripe_gateway.is_configured() and stripe_gateway.is_test_mode() and base):
            return 0
        origin = (settings.CORS_ALLOWED_ORIGINS or ["http://localhost:3000"])[0].rstrip("/")
        onboarded = 0
        for creator in User.objects.filter(
            username__in=[c[0] for c in CREATORS], connected_account__isnull=True
        ).order_by("pk"):
            link = payouts_onboarding(
                creator=creator,
                return_url=f"{origin}/payouts/return",
                refresh_url=f"{origin}/payouts/refresh",
            )
            if not link.url.startswith(f"{base}/connect/"):
                continue  # not the stand-in's form
            # The stand-in's form completes on a GET (then redirects to the SPA: not followed).
            opener = urllib.request.build_opener(_NoRedirect)
            try:
                opener.open(link.url, timeout=10)
            except urllib.error.HTTPError as redirect:
                if redirect.code != 302:
                    raise
            account_refresh(creator=creator)
            onboarded += 1
        return onboarded

    def _seed_bookings(self, users: list[User], sessions: dict[str, Session]) -> tuple[int, int]:
        """Returns (bookings created, paid bookings skipped for want of a test-mode key)."""
        can_pay = stripe_gateway.is_configured() and stripe_gateway.is_test_mode()
        created_bookings = skipped = 0
        for user_index, title, seats, status, payment_status in BOOKINGS:
            user, session = users[user_index], sessions[title]
            if Booking.objects.filter(user=user, session=session).exists():
                continue
            if payment_status in PAID_STATUSES and not can_pay:
                skipped += 1
                continue
            paid = payment_status in PAID_STATUSES
            now = timezone.now()
            # Created directly, not through booking_create: demo data has bookings of sessions
            # that already took place. Paid ones start as a fresh unpaid hold and are paid below.
            booking = Booking.objects.create(
                user=user,
                session=session,
                seats=seats,
                status="pending" if paid else status,
                payment_status="unpaid" if paid else payment_status,
                amount=session.price * seats,
                currency=session.currency,
                confirmed_at=now if status == "confirmed" and not paid else None,
                cancelled_at=now if status == "cancelled" and not paid else None,
                hold_expires_at=booking_rules.new_hold_expires_at(now),
            )
            if paid:
                self._pay(booking, refund=payment_status == "refunded")
            created_bookings += 1
        return created_bookings, skipped

    @staticmethod
    def _pay(booking: Booking, *, refund: bool) -> None:
        """Pays the booking the way a customer does (intent, test card, confirm); refunds it by
        its creator's cancellation when the demo wants a refunded one. Demo e-mails (to
        example.com addresses) are not sent."""
        with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"):
            intent = payment_create_intent(user=booking.user, booking_id=booking.pk)
            # Demo sessions have no minimum: always a v1 PaymentIntent, never a saved card.
            intent_id = intent.payment_intent_id or ""
            stripe_gateway.confirm_payment_intent_with_test_card(
                intent_id, payment_method=DEMO_CARD
            )
            payment_confirm_from_client(user=booking.user, payment_intent_id=intent_id)
            if refund:
                booking_cancel(booking_id=booking.pk, actor=booking.session.creator)
