"""gunicorn settings, read from the environment (the Docker image and deploy smoke test share it).

Run: gunicorn -c gunicorn.conf.py core.wsgi:application. gunicorn also loads this file by itself
when started from the project folder (scripts/live_server.py), where command-line options win.
"""

import multiprocessing
import os


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


# Loopback unless told otherwise: gunicorn belongs behind nginx, and a server reachable directly
# would let any client send the X-Forwarded-* headers that only the proxy should set. The image
# (Dockerfile ENV) and docker-compose.yml set 0.0.0.0:8000, where nginx comes over the network.
bind = os.environ.get("GUNICORN_BIND", "").strip() or "127.0.0.1:8000"

# Processes for parallelism (Django's ORM is blocking); a few threads each absorb slow clients and
# Stripe calls (threads > 1 makes gunicorn use its gthread worker, 1 the plain sync worker).
workers = _env_int("GUNICORN_WORKERS", min(2 * multiprocessing.cpu_count() + 1, 9))
threads = _env_int("GUNICORN_THREADS", 2)

# A request running longer than this is killed; keep it above DB_STATEMENT_TIMEOUT_MS (30 s) so
# the database gives up first and the client gets a JSON error instead of a dropped connection.
timeout = _env_int("GUNICORN_TIMEOUT", 60)
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# nginx keeps upstream connections alive; this must stay above nginx's keepalive_timeout upstream.
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)

# Recycle workers now and then so a slow leak cannot grow forever; jitter avoids a herd. Not
# too often: a new worker costs ~1.5 s of CPU (loading the app, its first requests) and serves
# nothing meanwhile. A worker answers cached catalog pages at a few hundred a second, so 1,000
# requests meant a restart every few seconds, costing more CPU than the pages themselves
# (bench/run.sh: the cached list at ~100 req/s with 1,000, ~700 without recycling).
max_requests = _env_int("GUNICORN_MAX_REQUESTS", 20000)
max_requests_jitter = _env_int("GUNICORN_MAX_REQUESTS_JITTER", 2000)

# Logs to stdout/stderr, where Docker collects them.
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# REMOTE_ADDR is nginx; the client address is the one nginx put in X-Forwarded-For. The request
# id (from nginx) ties a line to nginx's log and to Django's.
access_log_format = (
    '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms %({x-request-id}i)s "%(a)s"'
)

# Only the proxy in front may set X-Forwarded-Proto (nginx overwrites it). Default: loopback, the
# container networks need FORWARDED_ALLOW_IPS set to the proxy's address or "*" behind nginx.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Workers load the app after fork: a broken import fails loudly at boot, each worker its own DB
# connections.
preload_app = False
# /dev/shm: the worker heartbeat files must not sit on a slow overlay filesystem in Docker.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or (
    "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
)

# gunicorn's control socket (gunicornc) defaults to a file under $HOME, which is read-only in the
# image and shared between servers on one machine: off unless a path is given.
_control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True
