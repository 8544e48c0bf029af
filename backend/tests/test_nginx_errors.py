"""nginx's own error pages under /api/ are JSON with a registered code (issue 14).

Runs nginx/nginx.conf with Debian's nginx in the foreground, as scripts/deploy_smoke.sh does
(the same file, its upstream and listen lines substituted), in front of an upstream that is
dead (502) or that accepts and never answers (504, with proxy_read_timeout shortened).
"""

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.errors import ErrorCode
from scripts.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin") or "nginx"
MIME_TYPES = Path("/etc/nginx/mime.types")

pytestmark = pytest.mark.skipif(
    NGINX is None or not MIME_TYPES.exists(),
    reason="nginx not installed (apt-get install -y nginx; .ci/run does it)",
)


def start_nginx(prefix: Path, upstream_port: int, read_timeout: str = "65s") -> tuple:
    port = free_port()
    conf = (ROOT / "nginx" / "nginx.conf").read_text()
    for old, new in (
        ("server backend:8000;", f"server 127.0.0.1:{upstream_port};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("proxy_read_timeout 65s;", f"proxy_read_timeout {read_timeout};"),
    ):
        assert old in conf, old
        conf = conf.replace(old, new)
    prefix.mkdir()
    shutil.copy(MIME_TYPES, prefix / "mime.types")
    (prefix / "nginx.conf").write_text(conf)
    command = [NGINX, "-e", "stderr", "-p", f"{prefix}/", "-c", str(prefix / "nginx.conf")]
    process = subprocess.Popen(  # noqa: S603 (our nginx binary and our config)
        [*command, "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            if process.poll() is not None:
                stderr = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(stderr) from None
            time.sleep(0.05)
    process.terminate()
    raise RuntimeError("nginx did not start listening")


@pytest.fixture
def nginx_dead_upstream(tmp_path) -> Iterator[int]:
    # A port nobody listens on: nginx's connect is refused, it answers 502 itself.
    process, port = start_nginx(tmp_path / "nginx", upstream_port=free_port())
    yield port
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def nginx_silent_upstream(tmp_path) -> Iterator[int]:
    # Accepts connections (the kernel completes them from the backlog) and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        process, port = start_nginx(
            tmp_path / "nginx", upstream_port=silent.getsockname()[1], read_timeout="1s"
        )
        yield port
        process.terminate()
        process.wait(timeout=10)


def http(port: int, method: str, path: str, headers: dict[str, str] | None = None) -> tuple:
    """(status, headers, body) of one request over a raw socket (no body is ever sent)."""
    lines = [f"{method} {path} HTTP/1.1", "Host: api.example.com", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=15) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        raw = b""
        while chunk := conn.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split()[1]), parsed, body


def assert_json_error(response: tuple, status: int, code: str) -> None:
    got_status, headers, body = response
    assert got_status == status, (got_status, body[:200])
    assert headers["content-type"].startswith("application/json"), headers
    payload = json.loads(body)
    assert payload["code"] == code
    registered = ErrorCode.lookup(code)
    assert registered is not None and registered.status == status
    assert payload["detail"]
    # The server-level security headers still reach the error page.
    assert headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("method, path", [("GET", "/api/sessions/"), ("POST", "/api/bookings/")])
def test_dead_upstream_is_json_502_under_api(nginx_dead_upstream, method, path):
    response = http(nginx_dead_upstream, method, path, {"Content-Length": "0"})
    assert_json_error(response, 502, "upstream_unavailable")


def test_dead_upstream_outside_api_keeps_nginx_page(nginx_dead_upstream):
    status, headers, _ = http(nginx_dead_upstream, "GET", "/admin/login/")
    assert status == 502
    assert headers["content-type"].startswith("text/html")


def test_silent_upstream_is_json_504_under_api(nginx_silent_upstream):
    response = http(nginx_silent_upstream, "GET", "/api/sessions/")
    assert_json_error(response, 504, "upstream_timeout")


def test_body_over_client_max_body_size_is_json_413(nginx_dead_upstream):
    # nginx refuses from Content-Length alone, before reading (or proxying) any of the body.
    response = http(
        nginx_dead_upstream,
        "POST",
        "/api/storage/upload/",
        {"Content-Length": str(7 * 1024 * 1024), "Content-Type": "multipart/form-data; b=x"},
    )
    assert_json_error(response, 413, "too_large")
