"""Seeds a large catalog for the benchmark: N sessions (default 10,000) and M bookings (100,000).

Fast (bulk_create in batches) and repeatable: everything it made last time (users named
bench_*) is removed first. Writes the ids of the listed sessions to --ids-file and, with
--tokens-dir, one JWT access token per line for the bench users (users.txt) and creators
(creators.txt), so wrk's lua scripts can spread requests over many accounts. The tokens are
signed with DJANGO_SECRET_KEY: the server must run with the same one (bench/run.sh does).

    DATABASE_URL=postgres://... DJANGO_DEBUG=true python bench/seed_catalog.py --sessions 10000
"""

import argparse
import os
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")

import django

django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from backend.models import Booking, Session, User  # noqa: E402

PREFIX = "bench_"
TOPICS = {
    "coding": ["Python", "Django", "SQL", "Rust", "TypeScript", "Pandas", "Git", "Testing"],
    "yoga": ["Yoga flow", "Yin yoga", "Vinyasa", "Breathwork", "Hatha yoga"],
    "fitness": ["Kettlebell", "Running", "Mobility", "Strength", "HIIT"],
    "career": ["Salary negotiation", "Interview practice", "Leadership", "Public speaking"],
    "art": ["Watercolor", "Sketching", "Pottery", "Calligraphy", "Photography"],
    "music": ["Guitar", "Piano", "Songwriting", "Music theory"],
    "language": ["Spanish", "French", "Japanese", "German"],
    "wellness": ["Meditation", "Sleep hygiene", "Nutrition"],
}
LEVELS = ["Intro to", "Beginner", "Intermediate", "Advanced", "Masterclass:", "Weekend"]
FORMATS = ["workshop", "clinic", "bootcamp", "Q&A", "circle", "lab"]
FIRST = ["Ada", "Bruno", "Chen", "Dana", "Emeka", "Fatima", "Gustav", "Hana", "Ines", "Jon"]
LAST = ["Moreau", "Silva", "Wei", "Kowalski", "Okafor", "Haddad", "Lind", "Sato", "Reyes"]
CURRENCIES = ["USD", "USD", "USD", "EUR", "EUR", "GBP"]


def wipe() -> None:
    bench_users = User.objects.filter(username__startswith=PREFIX)
    Booking.objects.filter(session__creator__in=bench_users).delete()
    Booking.objects.filter(user__in=bench_users).delete()
    Session.objects.filter(creator__in=bench_users).delete()
    bench_users.delete()


def make_users(count: int, role: str, rng: random.Random) -> list[User]:
    password = make_password(None)  # unusable: bench accounts cannot sign in
    return User.objects.bulk_create(
        [
            User(
                username=f"{PREFIX}{role}{index}",
                email=f"{PREFIX}{role}{index}@example.com",
                first_name=rng.choice(FIRST),
                last_name=rng.choice(LAST),
                role=role,
                password=password,
            )
            for index in range(count)
        ],
        batch_size=2000,
    )


def make_sessions(count: int, creators: list[User], rng: random.Random) -> list[Session]:
    now = timezone.now()
    sessions = []
    for index in range(count):
        category = rng.choice(list(TOPICS))
        topic = rng.choice(TOPICS[category])
        online = rng.random() < 0.6
        status = rng.choices(["published", "draft", "cancelled"], weights=[90, 5, 5])[0]
        free = rng.random() < 0.15
        sessions.append(
            Session(
                creator=rng.choice(creators),
                title=f"{rng.choice(LEVELS)} {topic} {rng.choice(FORMATS)} #{index}",
                description=(
                    f"A {rng.choice(FORMATS)} about {topic.lower()} for {category} fans. "
                    f"Bring questions; we cover {rng.choice(TOPICS[category]).lower()} too."
                ),
                category=category,
                price=Decimal("0.00") if free else Decimal(rng.randrange(500, 15000)) / 100,
                currency=rng.choice(CURRENCIES),
                duration_minutes=rng.choice([30, 45, 60, 90, 120, 180]),
                start_time=now + timedelta(minutes=rng.randrange(-30 * 1440, 180 * 1440)),
                capacity=rng.choice([1, 2, 5, 10, 20, 50, 100]),
                location="" if online else f"Room {rng.randrange(1, 40)}",
                is_online=online,
                meeting_url=f"https://meet.example.com/{index}" if online else "",
                status=status,
            )
        )
    return Session.objects.bulk_create(sessions, batch_size=2000)


def make_bookings(
    sessions: list[Session], users: list[User], rng: random.Random, target: int
) -> int:
    """About `target` bookings (exactly, when the sessions have room), at most one per user
    and session, spread over the sessions in random order and never above their capacity."""
    bookings = []
    # Pending ones hold their seats as a fresh booking does (BOOKING_HOLD_MINUTES' default).
    hold_end = timezone.now() + timedelta(minutes=15)
    order = [session for session in sessions if session.status != "draft"]
    rng.shuffle(order)
    for session in order:
        remaining = target - len(bookings)
        if remaining <= 0:
            break
        wanted = min(len(users), rng.randrange(0, session.capacity + 1), remaining)
        attendees = rng.sample(users, k=wanted)
        for user in attendees:
            paid = session.price > 0
            status = rng.choices(["confirmed", "pending", "cancelled"], weights=[80, 5, 15])[0]
            bookings.append(
                Booking(
                    session=session,
                    user=user,
                    seats=1,
                    amount=session.price,
                    currency=session.currency,
                    status=status,
                    payment_status=("paid" if status == "confirmed" else "unpaid")
                    if paid
                    else "not_required",
                    hold_expires_at=hold_end if status == "pending" else None,
                )
            )
    Booking.objects.bulk_create(bookings, batch_size=5000)
    return len(bookings)


def write_tokens(directory: Path, *, users: list[User], creators: list[User]) -> None:
    from rest_framework_simplejwt.tokens import AccessToken

    directory.mkdir(parents=True, exist_ok=True)
    for name, accounts in (("users.txt", users), ("creators.txt", creators)):
        tokens = [str(AccessToken.for_user(account)) for account in accounts]
        (directory / name).write_text("\n".join(tokens) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=10_000)
    parser.add_argument("--creators", type=int, default=200)
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--ids-file", default="")
    parser.add_argument("--tokens-dir", default="", help="write users.txt and creators.txt")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.monotonic()
    with transaction.atomic():
        wipe()
        creators = make_users(args.creators, User.Role.CREATOR, rng)
        users = make_users(args.users, User.Role.USER, rng)
        sessions = make_sessions(args.sessions, creators, rng)
        booking_count = make_bookings(sessions, users, rng, args.bookings)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Like autovacuum would in steady state: statistics and a visibility map (so counts
            # can use index-only scans) for the freshly bulk-loaded tables.
            cursor.execute("VACUUM ANALYZE users, sessions, bookings")
    now = timezone.now()
    listed = [s.pk for s in sessions if s.status == "published" and s.start_time > now]
    if args.ids_file:
        Path(args.ids_file).write_text("\n".join(map(str, listed)) + "\n")
    if args.tokens_dir:
        write_tokens(Path(args.tokens_dir), users=users, creators=creators)
    print(
        f"seeded {len(sessions)} sessions ({len(listed)} listed), {len(creators)} creators, "
        f"{len(users)} users, {booking_count} bookings in {time.monotonic() - started:.1f}s"
    )


if __name__ == "__main__":
    main()
