"""Deployment: production settings, docker-compose.yml, Dockerfile, and the nginx + gunicorn
smoke test (scripts/deploy_smoke.sh). Tools that a machine lacks skip with the reason;
.ci/run installs them."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://api.example.com",
    "DJANGO_SECURE_SSL_REDIRECT": "true",
    "DJANGO_HSTS_SECONDS": "31536000",
}


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    # Only what a production container would have: no test defaults leak in from pytest-env.
    base = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}
    return subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_env(**overrides: str) -> dict[str, str]:
    return {**PRODUCTION_ENV, "DJANGO_SECRET_KEY": secrets.token_urlsafe(50), **overrides}


def test_check_deploy_passes_with_documented_production_environment():
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=production_env())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_check_deploy_fails_without_https_redirect():
    # The check above can fail: turning a production safeguard off is reported.
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env=production_env(DJANGO_SECURE_SSL_REDIRECT="false"),
    )
    assert result.returncode == 1
    assert "security.W008" in result.stderr


@pytest.mark.parametrize("secret", ["change-me", "django-insecure-abc", ""])
def test_production_refuses_to_start_with_example_secret(secret):
    result = manage("check", env=production_env(DJANGO_SECRET_KEY=secret))
    assert result.returncode == 1
    assert "DJANGO_SECRET_KEY is missing or an example value" in result.stderr
