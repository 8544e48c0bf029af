"""setup.sh, the first command for people without make, on a copy of the project."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LEFT_OUT = (".git", ".venv", "venv", "staticfiles", "media", "node_modules", ".env", "*.sqlite3")

# setup.sh end to end in a copy of the project (migrates and seeds).
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        sys.prefix == sys.base_prefix, reason="needs the suite to run inside a virtualenv"
    ),
]


def run_setup(project: Path) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [shutil.which("bash") or "bash", "setup.sh", "--no-run"],
        cwd=project,
        # A clean environment: no DATABASE_URL (CI's PostgreSQL) nor test defaults leak in.
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(project),
            "VENV": sys.prefix,
            "SETUP_SKIP_INSTALL": "1",
            "SEED_DEMO_PASSWORD": "demo-password-for-setup-test",
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def project(tmp_path) -> Path:
    copy = tmp_path / "project"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(*LEFT_OUT, "__pycache__"))
    return copy


def test_fresh_setup_writes_a_development_env_migrates_and_seeds(project):
    result = run_setup(project)
    assert result.returncode == 0, result.stdout + result.stderr
    env_lines = (project / ".env").read_text().splitlines()
    assert [line for line in env_lines if not line.startswith("#")] == ["DJANGO_DEBUG=true"]
    assert (project / "db.sqlite3").stat().st_size > 0
    assert ["dana", "user", "demo-password-for-setup-test"] in [
        line.split() for line in result.stdout.splitlines()
    ]


def test_setup_survives_a_production_env_copied_from_the_example(project):
    # The classic mistake: `cp .env.example .env` (DJANGO_DEBUG=false, placeholder secret,
    # DATABASE_URL on docker-compose's "db" host) before running the local setup.
    shutil.copy(project / ".env.example", project / ".env")
    before = (project / ".env").read_bytes()
    result = run_setup(project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "using SQLite for this run" in result.stdout
    assert (project / ".env").read_bytes() == before
    assert (project / "db.sqlite3").stat().st_size > 0
