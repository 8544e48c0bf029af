"""A real HTTP receiver on loopback for the outgoing webhook tests, and the README's own
signature snippets (Python, run here; JavaScript, run with node)."""

import re
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Counts every POST it gets. `script(*replies)` sets the next answers (then 200 "ok")."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.received: list[Received] = []
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(path=self.path, headers=dict(self.headers.items()), body=body)
                    )
                    reply = receiver._replies.popleft() if receiver._replies else Reply()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._replies.extend(replies)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def readme_snippet(language: str) -> str:
    """The code block right after `<!-- webhook-verify-<language> -->` in README.md."""
    text = (ROOT / "README.md").read_text()
    match = re.search(
        rf"<!-- webhook-verify-{language} -->\s*```\w+\n(.*?)```", text, flags=re.DOTALL
    )
    assert match, f"README.md has no webhook-verify-{language} snippet"
    return match.group(1)


def python_verifier():
    namespace: dict[str, Any] = {}
    exec(readme_snippet("python"), namespace)  # noqa: S102 (our own README)
    return namespace["verify_webhook"]


def node_verifies(secret: str, header: str, body: bytes) -> bool | None:
    """The JavaScript snippet's verdict, run by node; None when node is not installed."""
    node = shutil.which("node")
    if node is None:
        return None
    script = readme_snippet("javascript") + (
        "\nconst [secret, header, body] = process.argv.slice(-3);"
        "\nprocess.stdout.write(String(verifyWebhook(secret, header, Buffer.from(body, 'hex'))));"
    )
    result = subprocess.run(  # noqa: S603 (our README's code, our arguments)
        [node, "-e", script, secret, header, body.hex()],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return result.stdout.strip() == "true"
