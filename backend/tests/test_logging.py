import json
import logging

import pytest

from backend.logs import JsonFormatter
from backend.tests.support import auth_client

pytestmark = pytest.mark.django_db


def access_lines(caplog) -> list[dict]:
    formatter = JsonFormatter()
    return [
        json.loads(formatter.format(record))
        for record in caplog.records
        if record.name == "backend.access"
    ]


def test_access_log_is_one_json_object_per_request(api_client, caplog):
    caplog.set_level(logging.INFO, logger="backend.access")
    api_client.get("/api/health/", HTTP_X_REQUEST_ID="req-42")
    [line] = access_lines(caplog)
    assert line["request_id"] == "req-42"
    assert line["method"] == "GET"
    assert line["path"] == "/api/health/"
    assert line["status"] == 200
    assert line["level"] == "INFO"
    assert line["user_id"] is None
    assert isinstance(line["duration_ms"], float)
    assert line["time"].endswith("+00:00")


def test_access_log_never_contains_the_bearer_token(user, caplog):
    caplog.set_level(logging.DEBUG)
    client = auth_client(user)
    token = client._credentials["HTTP_AUTHORIZATION"].split()[1]
    client.get("/api/does-not-exist/")
    [line] = access_lines(caplog)
    assert line["status"] == 404
    formatter = JsonFormatter()
    everything = "\n".join(formatter.format(record) for record in caplog.records)
    assert token not in everything


def test_login_password_never_logged(api_client, caplog):
    caplog.set_level(logging.DEBUG)
    api_client.post("/api/auth/token/", {"username": "x", "password": "s3cret-Passw0rd"})
    formatter = JsonFormatter()
    assert "s3cret-Passw0rd" not in "\n".join(formatter.format(r) for r in caplog.records)
    assert access_lines(caplog)[0]["status"] == 401
