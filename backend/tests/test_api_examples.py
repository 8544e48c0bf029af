"""API_EXAMPLES.md (every cURL example) and postman_collection.json (with newman) against one
live seeded gunicorn server (scripts/live_server.py), so neither can go stale."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.live_server import seeded_server_with_fake_stripe
from scripts.run_api_examples import mismatches, parse_examples

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def seeded_server(tmp_path):
    """A fresh seeded server per test: the examples and the collection both create bookings,
    and each documents the ids a fresh database gives. As with `make run`: payments on the
    Stripe stand-in, and the password is the one seed_demo printed."""
    static_root = tmp_path / "static"
    with seeded_server_with_fake_stripe(
        suffix="examples", workers=1, threads=4, extra_env={"STATIC_ROOT": str(static_root)}
    ) as (server, password, stripe):
        server.extra.update(password=password, stripe=stripe.base_url)
        yield server


@pytest.mark.e2e
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_every_curl_example_gives_its_documented_answer(seeded_server):
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            sys.executable,
            "scripts/run_api_examples.py",
            "--base",
            seeded_server.url,
            "--password",
            seeded_server.extra["password"],
            "--stripe",
            seeded_server.extra["stripe"],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    examples = parse_examples((REPO / "API_EXAMPLES.md").read_text())
    assert result.stdout.splitlines()[-1] == f"{len(examples)} passed, 0 failed"
    documented = {
        (e.command.split('"$BASE')[1].split('"')[0].split("?")[0], e.status)
        for e in examples
        if '"$BASE' in e.command
    }
    assert {
        ("/api/health/", 200),
        ("/api/auth/token/", 200),
        ("/api/auth/token/refresh/", 200),
        ("/api/bookings/", 201),
        ("/api/storage/upload/", 201),
        ("/swagger.json", 200),
        # The paid flow, walked against the Stripe stand-in as with `make run`.
        ("/api/payment/create-intent/", 200),
        ("/api/payment/confirm/", 200),
    } <= documented
    stand_in = [e for e in examples if e.command.startswith('curl -s -X POST "$STRIPE/')]
    assert {(e.status, e.command.rsplit("payment_method=", 1)[1]) for e in stand_in} == {
        (402, "pm_card_chargeDeclined"),
        (200, "pm_card_visa"),
    }


def test_examples_parser_reads_commands_statuses_bodies_and_captures():
    text = (REPO / "API_EXAMPLES.md").read_text()
    examples = parse_examples(text)
    token = next(e for e in examples if e.title == "Obtain a token pair")
    assert token.status == 200
    assert token.captures == {"ACCESS": "access", "REFRESH": "refresh"}
    assert token.command.startswith('curl -s -X POST "$BASE/api/auth/token/"')
    assert json.loads(token.body)["access"] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
    # Set-up blocks (variables) are not examples; every curl block is one.
    assert len(examples) == text.count("\n```bash\ncurl ")


@pytest.mark.parametrize(
    ("expected", "actual", "problems"),
    [
        ({"a": "eyJ..."}, {"a": "eyJhbG"}, []),
        ({"a": "eyJ..."}, {"a": "xyz"}, ["$.a: expected a string starting 'eyJ', got 'xyz'"]),
        ({"a": 1}, {"a": 1, "b": 2}, ["$: unexpected key 'b'"]),
        ({"a": 1, "...": "..."}, {"a": 1, "b": 2}, []),
        ({"a": 1}, {}, ["$: missing key 'a'"]),
        ([1, "..."], [1, 2, 3], []),
        ([1], [1, 2], ["$: expected 1 item(s), got 2"]),
        ({"t": "2026-12-01T12:00:00Z"}, {"t": "2027-01-02T08:30:00.123456Z"}, []),
        (
            {"t": "2026-12-01T12:00:00Z"},
            {"t": "tomorrow"},
            ["$.t: expected a date-time, got 'tomorrow'"],
        ),
        ({"n": 1}, {"n": True}, ["$.n: expected 1, got True"]),
        ({"amount": "45.00"}, {"amount": "45.0"}, ["$.amount: expected '45.00', got '45.0'"]),
    ],
)
def test_documented_answers_match_strictly_except_where_marked(expected, actual, problems):
    assert mismatches(expected, actual) == problems


@pytest.mark.e2e
@pytest.mark.skipif(
    shutil.which("newman") is None,
    reason="newman not installed (npm install -g newman; .ci/run does it)",
)
def test_postman_collection_passes_with_newman(seeded_server, tmp_path):
    # Swagger UI and ReDoc pages need the hashed static files, as in a deployment. The
    # manifest is read on first use, so collecting after the start is in time.
    seeded_server.manage("collectstatic", "--noinput")
    report = tmp_path / "newman.json"
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [
            shutil.which("newman"),
            "run",
            str(REPO / "postman_collection.json"),
            "--env-var",
            f"baseUrl={seeded_server.url}",
            "--env-var",
            f"password={seeded_server.extra['password']}",
            "--env-var",
            f"stripeBase={seeded_server.extra['stripe']}",
            # File uploads name their files relative to the project folder.
            "--working-dir",
            str(REPO),
            "--reporters",
            "cli,json",
            "--reporter-json-export",
            str(report),
            "--color",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    stats = json.loads(report.read_text())["run"]["stats"]
    collection = json.loads((REPO / "postman_collection.json").read_text())
    requests = [item for folder in collection["item"] for item in folder["item"]]
    assert stats["requests"] == {"total": len(requests), "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    # Every request has its own tests beyond the collection-wide ones.
    assert stats["assertions"]["total"] >= 4 * len(requests)
