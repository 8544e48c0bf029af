"""Docker HEALTHCHECK of the Celery containers: `celery_healthcheck.py worker|beat`.

worker: the worker on this host answers a remote-control ping through the broker.
beat: beat has written its schedule file within BEAT_STALE_SECONDS (beat syncs it every few
minutes while it sends the periodic jobs; a beat that is stuck or lost its broker stops).
"""

import os
import socket
import sys
import time
from pathlib import Path

BEAT_STALE_SECONDS = 600


def worker_alive() -> bool:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()
    from core.celery import app

    replies = app.control.ping(destination=[f"celery@{socket.gethostname()}"], timeout=5)
    return bool(replies)


def beat_alive() -> bool:
    schedule = Path(os.environ.get("CELERY_BEAT_SCHEDULE_FILENAME") or "/tmp/celerybeat-schedule")  # noqa: S108
    files = [schedule, *schedule.parent.glob(f"{schedule.name}.*")]
    mtimes = [f.stat().st_mtime for f in files if f.exists()]
    return bool(mtimes) and time.time() - max(mtimes) < BEAT_STALE_SECONDS


def main() -> int:
    role = sys.argv[1] if len(sys.argv) > 1 else ""
    checks = {"worker": worker_alive, "beat": beat_alive}
    if role not in checks:
        print("usage: celery_healthcheck.py worker|beat", file=sys.stderr)
        return 2
    try:
        healthy = checks[role]()
    except Exception as error:
        print(f"healthcheck failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
