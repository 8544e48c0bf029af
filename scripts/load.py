"""Small HTTP load helpers for the fault and race scripts (standard library only)."""

import http.client
import json
import subprocess
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scripts.live_server import ROOT


@dataclass
class Result:
    status: int  # 0: the connection failed (no HTTP answer at all)
    body: Any  # the decoded JSON (usually a dict), None for a body that is not JSON
    content_type: str
    headers: dict[str, str]


def request(
    url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    payload: dict | None = None,
    timeout: float = 30.0,
) -> Result:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise ValueError(f"no host in {url!r}")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        connection.request(
            method, path, body=json.dumps(payload) if payload is not None else None, headers=headers
        )
        response = connection.getresponse()
        raw = response.read()
        content_type = response.getheader("Content-Type", "")
        body = json.loads(raw) if raw and content_type.startswith("application/json") else None
        return Result(response.status, body, content_type, dict(response.getheaders()))
    except (OSError, http.client.HTTPException):
        return Result(0, None, "", {})
    finally:
        connection.close()


SETUP_CODE = """
import json, sys
from datetime import timedelta
from decimal import Decimal
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken
from backend.models import Session, User

spec = json.loads(sys.stdin.read())
creator, _ = User.objects.get_or_create(username="load_creator", defaults={"role": "creator"})
sessions = Session.objects.bulk_create([
    Session(creator=creator, title=f"Load session {spec['tag']} {i}", price=Decimal(spec["price"]),
            currency="USD", duration_minutes=60, capacity=spec["capacity"], is_online=True,
            meeting_url="https://meet.example.com/load", status="published",
            start_time=timezone.now() + timedelta(days=3))
    for i in range(spec["sessions"])
])
users = User.objects.bulk_create([
    User(username=f"load_{spec['tag']}_{i}", email=f"load_{spec['tag']}_{i}@example.com")
    for i in range(spec["users"])
])
users = User.objects.filter(username__startswith=f"load_{spec['tag']}_").order_by("id")
print(json.dumps({
    "sessions": [s.pk for s in sessions],
    "tokens": [str(RefreshToken.for_user(u).access_token) for u in users],
}))
"""


def create_load_data(
    server, *, tag: str, sessions: int, capacity: int, users: int, price: str = "0.00"
) -> dict:
    """Creates sessions and users in the live server's database; returns ids and tokens."""
    spec = {"tag": tag, "sessions": sessions, "capacity": capacity, "users": users, "price": price}
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", SETUP_CODE],
        cwd=ROOT,
        env=server.env,
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])
