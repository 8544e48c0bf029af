"""CPU time per request of the catalog against the plain-Django views, in one process.

The figure issue 24 sets its target in: a worker's CPU time per request (the database server's
time is another process and not counted), as a ratio to the plain `.values()` + JsonResponse
views of bench/views.py measured in the same run. Requests go straight to Django's WSGI handler
(what gunicorn calls), with production settings (DEBUG off); scenario and plain view alternate
in short rounds so drifting machine load hits both alike. The median round decides.

    DATABASE_URL=postgres://... DJANGO_SETTINGS_MODULE=bench.settings \
      python bench/cpu.py [--rounds 7] [--requests 40] [--only list detail]

It needs the seeded database (bench/seed_catalog.py, or one bench/run.sh). Exits 1 when a
response is not a 200 (or the 304 an `etag` scenario expects).

The scenarios are bench/scenarios.py's catalog ones (those with a `plain` view). `cached` ones
run with the anonymous page cache on (CATALOG_CACHE_SECONDS, backend/catalog_cache.py: Django's
cache, so Redis when REDIS_URL is set, local memory otherwise), the others with it off; `etag`
ones send the page's ETag back in If-None-Match.
"""

import argparse
import io
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-cpu-" + "x" * 50)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("THROTTLE_ANON_RATE", "1000000/second")
os.environ.setdefault("THROTTLE_USER_RATE", "1000000/second")
os.environ.setdefault("LOG_LEVEL", "WARNING")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402

from backend.models import Session  # noqa: E402
from bench.scenarios import CATALOG, PLACEHOLDERS, SCENARIOS  # noqa: E402

CACHE_SECONDS = 30


def _environ(path: str, headers: dict[str, str] | None = None) -> dict:
    path, _, query = path.partition("?")
    return {
        **(headers or {}),
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_ACCEPT": "application/json",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


class Caller:
    def __init__(self, ids: list[int], pages: int):
        self.handler = WSGIHandler()
        self.ids = ids
        self.pages = pages

    def path(self, template: str) -> str:
        path = (
            template.replace("{id}", str(random.choice(self.ids)))
            .replace("{hot}", str(self.ids[0]))
            .replace("{page}", str(random.randint(2, self.pages)))
        )
        for name, values in PLACEHOLDERS.items():
            path = path.replace(f"{{{name}}}", random.choice(values))
        return path

    def get(self, template: str, headers: dict[str, str] | None = None, expect: str = "200"):
        status_line: list[str] = []
        answer_headers: list[tuple[str, str]] = []

        def start_response(status, headers, exc_info=None):
            status_line.append(status)
            answer_headers.extend(headers)

        response = self.handler(_environ(self.path(template), headers), start_response)
        body = b"".join(response)
        response.close()
        if not status_line[0].startswith(expect):
            raise SystemExit(f"{template}: {status_line[0]} {body[:300]!r}")
        return body, dict(answer_headers)

    def cpu_ms(self, name: str, template: str, requests: int) -> float:
        spec = SCENARIOS.get(name, {})
        settings.CATALOG_CACHE_SECONDS = CACHE_SECONDS if spec.get("cached") else 0
        headers, expect = None, "200"
        if spec.get("etag"):
            _, answer = self.get(template)
            headers, expect = {"HTTP_IF_NONE_MATCH": answer["ETag"]}, "304"
        started = time.process_time()
        for _ in range(requests):
            self.get(template, headers, expect)
        return (time.process_time() - started) * 1000 / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--requests", type=int, default=40, help="per scenario and round")
    parser.add_argument("--only", nargs="*", default=CATALOG)
    args = parser.parse_args()
    ids = list(Session.objects.filter(status="published").values_list("pk", flat=True)[:5000])
    caller = Caller(ids, pages=max(2, len(ids) // 20 // 2))
    for name in args.only:
        template, plain = SCENARIOS[name]["path"], SCENARIOS[name]["plain"]
        caller.cpu_ms("plain", plain, 5)  # warm up: imports, connection, compiled SQL, cache
        caller.cpu_ms(name, template, 5)
    print(f"{'scenario':<15} {'cpu ms/req':>10} {'plain ms':>9} {'ratio':>6}  (median of rounds)")
    for name in args.only:
        template, plain = SCENARIOS[name]["path"], SCENARIOS[name]["plain"]
        ours, theirs, ratios = [], [], []
        for _ in range(args.rounds):
            plain_ms = caller.cpu_ms("plain", plain, args.requests)
            our_ms = caller.cpu_ms(name, template, args.requests)
            ours.append(our_ms)
            theirs.append(plain_ms)
            ratios.append(our_ms / plain_ms)
        print(
            f"{name:<15} {statistics.median(ours):10.2f} {statistics.median(theirs):9.2f} "
            f"{statistics.median(ratios):6.2f}  vs {plain.split('?')[0]}"
        )


if __name__ == "__main__":
    main()
