#!/usr/bin/env bash
# Catalog benchmark: seeds 10,000 sessions on PostgreSQL, serves the API with gunicorn
# (production settings, DEBUG off) and measures the catalog with wrk: requests per second and
# p50/p99 latency for the plain list, a filtered list, full-text search and random details.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/sm_catalog bench/catalog.sh
#
# Knobs (environment): PORT (18200), WORKERS (2), CONNECTIONS (8), THREADS (2),
# DURATION (10s), SESSIONS (10000), SKIP_SEED=1 to reuse the data already seeded.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database (the benchmark seeds it)}"
case "$DATABASE_URL" in postgres*) ;; *) echo "DATABASE_URL must be PostgreSQL" >&2; exit 2 ;; esac
PORT=${PORT:-18200}
WORKERS=${WORKERS:-2}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
SESSIONS=${SESSIONS:-10000}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
elif [ -x /work/venv/bin/python ]; then PY=/work/venv/bin/python
else PY=python3; fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }

work=$(mktemp -d)
gunicorn_pid=""
cleanup() {
  if [ -n "$gunicorn_pid" ]; then kill "$gunicorn_pid" 2>/dev/null || true; wait "$gunicorn_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

export DATABASE_URL
ids_file="$work/ids.txt"
# Seeding and migrating run with DEBUG on (no production secrets needed for a script).
DJANGO_DEBUG=true "$PY" manage.py migrate --noinput >/dev/null
if [ "${SKIP_SEED:-0}" = "1" ]; then
  DJANGO_DEBUG=true "$PY" - "$ids_file" <<'PYEOF'
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "core.settings")
import django
django.setup()
from django.utils import timezone
from backend.models import Session
ids = Session.objects.filter(status="published", start_time__gt=timezone.now()).values_list("pk", flat=True)
open(sys.argv[1], "w").write("\n".join(map(str, ids)) + "\n")
PYEOF
else
  DJANGO_DEBUG=true "$PY" bench/seed_catalog.py --sessions "$SESSIONS" --ids-file "$ids_file"
fi

# Production settings: DEBUG off, no SSL redirect (plain HTTP on loopback), throttling out of
# the way (it would measure the limiter, not the catalog; anonymous requests count against both
# the anon and the user rate, and a one-second window keeps the throttle history short), quiet
# logs.
DJANGO_DEBUG=false \
DJANGO_SECRET_KEY="bench-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost \
DJANGO_SECURE_SSL_REDIRECT=false \
THROTTLE_ANON_RATE=1000000/second \
THROTTLE_USER_RATE=1000000/second \
LOG_LEVEL=WARNING \
  "$PY" -m gunicorn core.wsgi:application --bind "127.0.0.1:$PORT" --workers "$WORKERS" \
  --log-level warning >"$work/gunicorn.log" 2>&1 &
gunicorn_pid=$!

base="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
  curl -fsS "$base/api/health/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/api/health/" >/dev/null || { cat "$work/gunicorn.log"; exit 1; }

cat >"$work/detail.lua" <<LUAEOF
local ids = {}
for line in io.lines("$ids_file") do ids[#ids + 1] = line end
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/sessions/" .. ids[math.random(#ids)] .. "/")
end
LUAEOF

# Warm up each worker (imports, connections) before measuring.
wrk -t1 -c"$WORKERS" -d2s "$base/api/sessions/" >/dev/null

run() {
  local name=$1 path=$2 script=${3:-}
  local status
  status=$(curl -s -o /dev/null -w '%{http_code}' "$base$path")
  local out
  if [ -n "$script" ]; then
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$script" "$base$path")
  else
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$base$path")
  fi
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-10s %-8s %10s %10s %10s %8s  %s\n' "$name" "$status" "$rps" "$p50" "$p99" "${errors:-0}" "$path"
}

echo
echo "catalog benchmark: $SESSIONS sessions, gunicorn $WORKERS workers, wrk $THREADS threads x $CONNECTIONS connections, $DURATION each"
printf '%-10s %-8s %10s %10s %10s %8s  %s\n' scenario status req/s p50 p99 non-2xx path
run list "/api/sessions/"
run list100 "/api/sessions/?page_size=100"
run filtered "/api/sessions/?category=coding&min_price=10&max_price=80&is_online=true&available=true&ordering=-price"
run search "/api/sessions/?search=python"
run search2 "/api/sessions/?search=watercolor%20workshop"
run detail "/api/sessions/$(head -n 1 "$ids_file")/" "$work/detail.lua"  # a random listed id each request
