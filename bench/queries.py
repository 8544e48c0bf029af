"""SQL queries per request of each benchmarked endpoint, measured in-process.

Runs one request per scenario through Django's test client against the seeded database
(bench/seed_catalog.py) and counts its queries with CaptureQueriesContext. Writes
"<scenario> <queries>" lines (bench/run.sh joins them to the wrk numbers). The booking it
creates is rolled back.

    DJANGO_SETTINGS_MODULE=bench.settings python bench/queries.py TOKENS_DIR IDS_FILE
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from backend.models import Session  # noqa: E402
from bench.scenarios import PLACEHOLDERS, SCENARIOS  # noqa: E402


class Rollback(Exception):
    pass


def count(client: Client, scenario: dict, session_id: str, token: str) -> tuple[int, int]:
    headers = {"HTTP_ACCEPT": "application/json"}
    path = scenario["path"].replace("{id}", session_id).replace("{hot}", session_id)
    path = path.replace("{page}", "2")
    for name, values in PLACEHOLDERS.items():
        path = path.replace(f"{{{name}}}", values[0])
    if scenario.get("cached"):
        client.get(path, **headers)  # fills the page cache: the count is a hit's
    else:
        headers["HTTP_CACHE_CONTROL"] = "no-cache"  # as wrk sends it (bench/wrk.lua)
    if token:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    with CaptureQueriesContext(connection) as queries:
        if scenario.get("method") == "POST":
            body = scenario["body"].replace("{id}", session_id)
            response = client.post(path, body, content_type="application/json", **headers)
        else:
            response = client.get(path, **headers)
    return response.status_code, len(queries)


def main() -> None:
    tokens_dir, ids_file = Path(sys.argv[1]), Path(sys.argv[2])
    tokens = {
        name: (tokens_dir / f"{name}.txt").read_text().split() for name in ("users", "creators")
    }
    ids = ids_file.read_text().split()
    # A session the first user can book: free seats, someone else's (the bench creators).
    roomy = Session.objects.filter(pk__in=ids[:500], capacity__gte=50)
    bookable = roomy.values_list("pk", flat=True).first()
    client = Client()
    for name, scenario in SCENARIOS.items():
        token = tokens[scenario["tokens"]][0] if scenario.get("tokens") else ""
        session_id = str(bookable if scenario.get("method") == "POST" else ids[0])
        try:
            with transaction.atomic():
                status, queries = count(client, scenario, session_id, token)
                raise Rollback
        except Rollback:
            pass
        print(f"{name} {queries} {status}")


if __name__ == "__main__":
    main()
