"""Schemathesis against the served /swagger.json of a live gunicorn server (scripts/fuzz_api.py).

Runs in the normal suite (and so in CI on PostgreSQL): no 5xx and no response that contradicts
the schema, as anonymous, user and creator.
"""

import subprocess
import sys

import pytest
from django.conf import settings

# schemathesis against a live gunicorn (scripts/live_server.py).
pytestmark = pytest.mark.e2e


def test_schemathesis_finds_no_server_error_or_schema_violation():
    result = subprocess.run(
        [sys.executable, "scripts/fuzz_api.py", "--max-examples", "25"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    failures = [
        line
        for line in result.stdout.splitlines()
        if line.startswith(("___", "- ST", "    ", "===", "Traceback")) or "Error" in line
    ]
    assert result.returncode == 0, "\n".join(failures)[-8000:] + result.stderr[-2000:]
    assert result.stdout.count("=== schemathesis as") == 3
