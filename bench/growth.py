"""Cost growth: how a request's time grows with the data behind it (in-process, PostgreSQL).

Against the seeded benchmark database (bench/seed_catalog.py):
- catalog page 1 against a deep page (the last pages of the listed sessions);
- page 1, that deep page and a search with the seeded sessions against ten times as many, each
  with the page total from the shared cache (as served) and counted every time. The
  added sessions are committed and the table vacuumed before measuring, as production's rows
  would be (autovacuum): uncommitted rows measure something else (a GIN index's pending list
  of 90,000 uncompacted entries is read by every search; no page is all-visible). They are
  deleted, and the table vacuumed, at the end, also when the run fails;
- the creator dashboard of a new creator with 10 bookings against 5,000 (inside a transaction
  that is rolled back).
Each time is the median of --repeat requests through Django's test client (middleware, DRF,
rendering, the database on loopback), past the anonymous page cache. Prints one line per
measurement and the growth factor, and how many sessions the search matched. With --cpu, also
the median CPU time per request, this process's plus its PostgreSQL backend's (read from
/proc/<pid>/schedstat, so only with the database on this Linux machine): steadier than wall
time on a machine shared with other jobs.

    DJANGO_SETTINGS_MODULE=bench.settings python bench/growth.py [--cpu]
"""

import argparse
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
# Throttling out of the way (it would measure the limiter), as bench/cpu.py and run.sh do.
os.environ.setdefault("THROTTLE_ANON_RATE", "1000000/second")
os.environ.setdefault("THROTTLE_USER_RATE", "1000000/second")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework_simplejwt.tokens import AccessToken  # noqa: E402

from backend import catalog_cache  # noqa: E402
from backend.models import Booking, Session, User  # noqa: E402
from bench.seed_catalog import PREFIX, make_sessions  # noqa: E402


class Rollback(Exception):
    pass


def backend_cpu_seconds() -> float:
    """CPU time the connection's PostgreSQL backend has used so far (Linux, local server)."""
    with open(f"/proc/{connection.connection.info.backend_pid}/schedstat") as stats:
        return int(stats.read().split()[0]) / 1e9


@dataclass
class Measured:
    wall_ms: float
    cpu_ms: float | None  # with --cpu: this process's and its database backend's


def timed(client: Client, path: str, repeat: int, token: str = "", cpu: bool = False) -> Measured:
    # no-cache skips the anonymous page cache (backend/catalog_cache.py): its version tokens
    # move on commit, and the rows added here are never committed, so a cached page would be
    # the small database's page, and the growth measured would be the cache's, not the query's.
    headers = {"HTTP_ACCEPT": "application/json", "HTTP_CACHE_CONTROL": "no-cache"}
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    response = client.get(path, **headers)
    assert response.status_code == 200, (path, response.status_code, response.content[:200])
    times, cpu_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        cpu_started = time.process_time() + backend_cpu_seconds() if cpu else 0.0
        client.get(path, **headers)
        times.append(time.perf_counter() - started)
        if cpu:
            cpu_times.append(time.process_time() + backend_cpu_seconds() - cpu_started)
    cpu_ms = statistics.median(cpu_times) * 1000 if cpu else None
    return Measured(statistics.median(times) * 1000, cpu_ms)


def search_matches(client: Client, path: str) -> int:
    response = client.get(path, HTTP_ACCEPT="application/json", HTTP_CACHE_CONTROL="no-cache")
    return response.json()["count"]


def report(label: str, small: tuple[str, Measured], large: tuple[str, Measured]) -> None:
    (small_name, small_time), (large_name, large_time) = small, large
    lines = [(label, small_time.wall_ms, large_time.wall_ms)]
    if small_time.cpu_ms is not None and large_time.cpu_ms is not None:
        lines.append(("  cpu", small_time.cpu_ms, large_time.cpu_ms))
    for name, small_ms, large_ms in lines:
        print(
            f"{name:<18} {small_name:>22} {small_ms:8.2f} ms   {large_name:>22} {large_ms:8.2f} ms"
            f"   x{large_ms / small_ms:.2f}"
        )


def vacuum() -> None:
    """What autovacuum does for production's tables: visibility map, GIN pending list, stats."""
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE sessions")


def analyze() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE sessions; ANALYZE bookings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--search", default="python")
    parser.add_argument("--cpu", action="store_true", help="also CPU per request (see above)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/growth.py needs the seeded PostgreSQL database")
    client = Client()
    rng = random.Random(7)
    repeat, cpu = args.repeat, args.cpu
    listed = Session.objects.filter(status="published", start_time__gt=timezone.now())
    pages = listed.count() // 20
    first, deep = "/api/sessions/", f"/api/sessions/?page={pages}"
    search = f"/api/sessions/?search={args.search}"

    # Each request twice: with the page total from the shared cache (as served: it is counted
    # once per query until the catalog changes), and counted every time (cache off).
    def measure() -> dict[tuple[str, bool], Measured]:
        measured = {}
        for counted in (False, True):
            settings.CATALOG_CACHE_SECONDS = 0 if counted else cache_seconds
            for path in (first, deep, search):
                measured[path, counted] = timed(client, path, repeat, cpu=cpu)
        settings.CATALOG_CACHE_SECONDS = cache_seconds
        return measured

    cache_seconds = settings.CATALOG_CACHE_SECONDS or 5
    small = measure()
    report("catalog page", ("page 1", small[first, False]), (f"page {pages}", small[deep, False]))
    small_matches = search_matches(client, search)
    sessions = Session.objects.count()
    creators = list(User.objects.filter(username__startswith=f"{PREFIX}creator"))
    added: list[int] = []
    try:
        with transaction.atomic():  # all of them or none: the clean-up below knows them
            added = [session.pk for session in make_sessions(sessions * 9, creators, rng)]
        catalog_cache.catalog_changed(session_id=None)  # as the API's writes do: totals retire
        vacuum()
        total = Session.objects.count()
        large = measure()
        for label, path in (("page 1", first), (f"page {pages}", deep), ("search", search)):
            for counted in (False, True):
                report(
                    label + (", counted" if counted else ""),
                    (f"{sessions} sessions", small[path, counted]),
                    (f"{total} sessions", large[path, counted]),
                )
        print(f"{'  matches':<18} {small_matches:>22}{'':14}{search_matches(client, search):>22}")
    finally:
        for start in range(0, len(added), 5000):
            Session.objects.filter(pk__in=added[start : start + 5000]).delete()
        catalog_cache.catalog_changed(session_id=None)
        vacuum()

    try:
        with transaction.atomic():
            creator = User.objects.create(
                username=f"{PREFIX}growth_creator", role=User.Role.CREATOR
            )
            token = str(AccessToken.for_user(creator))
            own = make_sessions(50, [creator], rng)
            for session in own:
                session.status, session.capacity = "published", 1000
            Session.objects.bulk_update(own, ["status", "capacity"])
            users = list(User.objects.filter(username__startswith=f"{PREFIX}user")[:2500])

            def book(count: int) -> None:
                pairs = rng.sample([(s, u) for s in own for u in users], count)
                Booking.objects.bulk_create(
                    Booking(
                        session=s,
                        user=u,
                        seats=1,
                        amount=s.price,
                        currency=s.currency,
                        status="confirmed",
                        payment_status="paid" if s.price else "not_required",
                        confirmed_at=timezone.now() - timedelta(days=rng.randrange(60)),
                    )
                    for s, u in pairs
                )

            book(10)
            analyze()
            small = timed(client, "/api/dashboard/creator/", repeat, token, cpu)
            Booking.objects.filter(session__creator=creator).delete()
            book(5000)
            analyze()
            large = timed(client, "/api/dashboard/creator/", repeat, token, cpu)
            report("creator dashboard", ("10 bookings", small), ("5000 bookings", large))
            raise Rollback
    except Rollback:
        pass
    # The rolled-back rows are dead tuples now: clean them up so later runs plan as before.
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE sessions")
        cursor.execute("VACUUM ANALYZE bookings")


if __name__ == "__main__":
    main()
