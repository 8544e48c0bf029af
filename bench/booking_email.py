"""Booking create latency with the e-mail on the request path (before) and in a worker (after).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/sm_bench \\
        python -m bench.booking_email --redis-url redis://127.0.0.1:6379/5

Both runs use a live gunicorn (scripts/live_server.py, production settings) and a slow SMTP
server on loopback (SMTP_DELAY_MS per message, default 200: a mail provider on a bad day).
"before": no broker (TASKS_INLINE), so the confirmation e-mail is sent on the request thread
right after the commit, exactly what the code did before the outbox. "after": a Redis broker
and a `celery -A core worker`; the request only writes the outbox row and publishes it.
Prints p50, p99 and max of POST /api/bookings/ for each, over BOOKINGS sequential bookings.
The Redis database given is emptied (FLUSHDB) first.
"""

import argparse
import socketserver
import statistics
import tempfile
import threading
import time
from pathlib import Path

import redis

from backend.tests.task_support import start_worker
from scripts.live_server import free_port, live_server
from scripts.load import create_load_data, request


class SlowSmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Django's backend; sleeps `delay` before accepting each message."""

    delay = 0.2
    received = 0
    lock = threading.Lock()

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self) -> None:
        self.reply("220 bench ESMTP")
        while True:
            line = self.rfile.readline()
            if not line:
                return
            command = line.decode(errors="replace").strip().upper()
            if command.startswith(("EHLO", "HELO")):
                self.reply("250 bench")
            elif command.startswith("DATA"):
                self.reply("354 go on")
                while self.rfile.readline() not in (b".\r\n", b".\n", b""):
                    pass
                time.sleep(self.delay)
                with SlowSmtpHandler.lock:
                    SlowSmtpHandler.received += 1
                self.reply("250 queued")
            elif command.startswith("QUIT"):
                self.reply("221 bye")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                self.reply("250 ok")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def measure(label: str, env: dict[str, str], bookings: int, redis_url: str | None) -> dict:
    with live_server(suffix=f"bench_{label}", workers=2, extra_env=env, seed=False) as server:
        data = create_load_data(
            server, tag=label, sessions=max(1, bookings // 10), capacity=10, users=bookings
        )
        worker = None
        if redis_url:
            worker = start_worker(server.env, Path(tempfile.mkdtemp(prefix="sm-bench-")))
        try:
            latencies = []
            for index, token in enumerate(data["tokens"]):
                session_id = data["sessions"][index % len(data["sessions"])]
                started = time.perf_counter()
                result = request(
                    server.url,
                    "POST",
                    "/api/bookings/",
                    token=token,
                    payload={"session": session_id},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                assert result.status == 201, result
        finally:
            if worker is not None:
                deadline = time.monotonic() + 60
                while SlowSmtpHandler.received < bookings and time.monotonic() < deadline:
                    time.sleep(0.2)
                worker.stop()
    return {
        "label": label,
        "p50": statistics.median(latencies),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True, help="a Redis database the bench may empty")
    parser.add_argument("--bookings", type=int, default=100)
    parser.add_argument("--smtp-delay-ms", type=int, default=200)
    args = parser.parse_args()

    SlowSmtpHandler.delay = args.smtp_delay_ms / 1000
    port = free_port()
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", port), SlowSmtpHandler)
    smtp.daemon_threads = True
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    mail = {"EMAIL_URL": f"smtp://127.0.0.1:{port}", "LOG_LEVEL": "WARNING"}
    try:
        before = measure("before", {**mail, "TASKS_INLINE": "true"}, args.bookings, None)
        sent_before = SlowSmtpHandler.received
        SlowSmtpHandler.received = 0
        redis.Redis.from_url(args.redis_url).flushdb()
        after_env = {**mail, "TASKS_INLINE": "false", "CELERY_BROKER_URL": args.redis_url}
        after = measure("after", after_env, args.bookings, args.redis_url)
        sent_after = SlowSmtpHandler.received
    finally:
        smtp.shutdown()
    print(f"booking create, {args.bookings} bookings, SMTP {args.smtp_delay_ms} ms per message")
    for row, sent in ((before, sent_before), (after, sent_after)):
        print(
            f"  {row['label']:<6} p50 {row['p50']:7.1f} ms  p99 {row['p99']:7.1f} ms  "
            f"max {row['max']:7.1f} ms  e-mails received {sent}"
        )


if __name__ == "__main__":
    main()
