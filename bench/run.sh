#!/usr/bin/env bash
# The benchmark harness. Seeds PostgreSQL (10,000 sessions, 100,000 bookings, bench users with
# JWTs), serves the API with gunicorn (production settings, DEBUG off, plus the baseline view of
# bench/views.py via bench.settings) and measures every scenario of bench/scenarios.py with wrk:
# requests per second, p50 and p99, status counts (201 and 409 apart, 5xx must stay 0) and the
# SQL queries per request (bench/queries.py, in-process). Then issue 24's table: each catalog
# scenario (page 1, random pages, filtered, search, detail; cached, 304) against its plain view
# (bench/views.py), req/s alternating ROUNDS times, worker CPU per request (bench/cpu.py), and
# the cost growth to 100,000 sessions (bench/growth.py). Exits 1 if any response was a 5xx.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/sm_bench bench/run.sh
#
# Knobs (environment): PORT (18800), WORKERS (2), GTHREADS (2: gthread workers, as
# gunicorn.conf.py runs production; 1: sync workers), CONNECTIONS (8), THREADS (2), DURATION
# (10s), SESSIONS (10000), BOOKINGS (100000), ROUNDS (2), ONLY ("list baseline ..." to run
# some scenarios), SKIP_SEED=1 to reuse the data (and the tokens) of the previous run,
# SKIP_CPU=1 / SKIP_GROWTH=1 to leave out bench/cpu.py / bench/growth.py.
# REDIS_URL: the cache (throttle counters, catalog pages) on Redis, as production runs it
# (keys under CACHE_KEY_PREFIX, default "bench"); without it each worker has a local-memory
# cache. The rest of the server's settings come from gunicorn.conf.py (its GUNICORN_* knobs,
# e.g. GUNICORN_MAX_REQUESTS), as in production.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database (the benchmark seeds it)}"
case "$DATABASE_URL" in postgres*) ;; *) echo "DATABASE_URL must be PostgreSQL" >&2; exit 2 ;; esac
PORT=${PORT:-18800}
WORKERS=${WORKERS:-2}
GTHREADS=${GTHREADS:-2}
CONNECTIONS=${CONNECTIONS:-8}
THREADS=${THREADS:-2}
DURATION=${DURATION:-10s}
SESSIONS=${SESSIONS:-10000}
BOOKINGS=${BOOKINGS:-100000}
ROUNDS=${ROUNDS:-2}
if [ -n "${PYTHON:-}" ]; then PY=$PYTHON
elif [ -x .venv/bin/python ]; then PY=.venv/bin/python
elif [ -x /work/venv/bin/python ]; then PY=/work/venv/bin/python
else PY=python3; fi
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }

# Seeded tokens must verify on the server: both sides use this key, kept with the data.
state=${BENCH_STATE:-.bench}
mkdir -p "$state"
[ -s "$state/secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$state/secret"
work=$(mktemp -d)
gunicorn_pid=""
cleanup() {
  if [ -n "$gunicorn_pid" ]; then kill "$gunicorn_pid" 2>/dev/null || true; wait "$gunicorn_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Production settings: DEBUG off, no SSL redirect (plain HTTP on loopback), throttling out of
# the way (it would measure the limiter, not the API), quiet logs.
export DATABASE_URL
export DJANGO_SECRET_KEY="bench-$(cat "$state/secret")"
export DJANGO_SETTINGS_MODULE=bench.settings
export DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost,testserver
export DJANGO_SECURE_SSL_REDIRECT=false
export THROTTLE_ANON_RATE=1000000/second
export THROTTLE_USER_RATE=1000000/second
export LOG_LEVEL=WARNING
if [ -n "${REDIS_URL:-}" ]; then
  export REDIS_URL CACHE_KEY_PREFIX=${CACHE_KEY_PREFIX:-bench}
  cache_used="Redis ($REDIS_URL, prefix $CACHE_KEY_PREFIX)"
else
  cache_used="local memory, per worker (set REDIS_URL for production's)"
fi

DJANGO_DEBUG=true "$PY" manage.py migrate --noinput >/dev/null
if [ "${SKIP_SEED:-0}" != "1" ] || [ ! -s "$state/ids.txt" ]; then
  DJANGO_DEBUG=true "$PY" bench/seed_catalog.py --sessions "$SESSIONS" --bookings "$BOOKINGS" \
    --ids-file "$state/ids.txt" --tokens-dir "$state"
fi

"$PY" bench/queries.py "$state" "$state/ids.txt" >"$work/queries.txt"

# --threads always: gunicorn.conf.py's default (2) would apply otherwise.
worker_args=(--workers "$WORKERS" --threads "$GTHREADS")
if [ "$GTHREADS" -gt 1 ]; then worker_args+=(--worker-class gthread); fi
DJANGO_DEBUG=false "$PY" -m gunicorn core.wsgi:application --bind "127.0.0.1:$PORT" \
  "${worker_args[@]}" --log-level warning >"$work/gunicorn.log" 2>&1 &
gunicorn_pid=$!

base="http://127.0.0.1:$PORT"
for _ in $(seq 1 50); do
  curl -fsS "$base/api/health/" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fsS "$base/api/health/" >/dev/null || { cat "$work/gunicorn.log"; exit 1; }

# Warm up each worker (imports, connections) before measuring.
wrk -t1 -c"$WORKERS" -d2s "$base/api/sessions/" >/dev/null
wrk -t1 -c"$WORKERS" -d1s "$base/bench/baseline/catalog/" >/dev/null

declare -A RPS
SERVER_ERRORS=0
run() {
  local name=$1 method=$2 path=$3 body=$4 tokens=$5 cached=${6:-} etag=${7:-}
  local out no_cache=1
  [ -n "$cached" ] && no_cache=0
  out=$(BENCH_METHOD=$method BENCH_PATH=$path BENCH_IDS="$state/ids.txt" BENCH_NO_CACHE=$no_cache \
    BENCH_TOKENS=${tokens:+$state/$tokens.txt} BENCH_BODY=$body BENCH_ETAG=$etag \
    BENCH_PAGES=$pages BENCH_PLACEHOLDERS=$placeholders wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s bench/wrk.lua "$base")
  local rps p50 p99 statuses queries
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  statuses=$(awk '/^STATUS/ {$1=""; print}' <<<"$out")
  queries=$(awk -v n="$name" '$1 == n {print $2}' "$work/queries.txt")
  RPS[$name]="${RPS[$name]:-} $rps"
  SERVER_ERRORS=$((SERVER_ERRORS + $(sed -n 's/.*5xx=\([0-9]*\).*/\1/p' <<<"$statuses")))
  printf '%-22s %9s %9s %9s %7s  %-50s %s\n' "$name" "$rps" "$p50" "$p99" "${queries:-?}" \
    "$statuses" "$method $path"
}
mean() { awk -v l="$1" 'BEGIN { n = split(l, xs, " "); for (i = 1; i <= n; i++) s += xs[i]; if (n) printf "%.0f", s / n; else printf "?" }'; }
# A cached page's ETag (the page is stored by this first, cache-filling request).
etag_of() { curl -fsS -D - -o /dev/null -H 'Accept: application/json' "$base$1" | awk 'tolower($1) == "etag:" {print $2}' | tr -d '\r'; }
# Pages "{page}" is drawn from (from 2): half the listed ones, as bench/cpu.py draws them.
pages=$(( $(wc -l <"$state/ids.txt") / 40 ))
placeholders=$("$PY" bench/scenarios.py --placeholders)

echo
echo "benchmark: $SESSIONS sessions, $BOOKINGS bookings, gunicorn $WORKERS workers x $GTHREADS threads, wrk $THREADS threads x $CONNECTIONS connections, $DURATION each"
echo "cache: $cache_used"
printf '%-22s %9s %9s %9s %7s  %-50s %s\n' scenario req/s p50 p99 queries statuses request
while IFS='|' read -r name method path body tokens cached plain etag; do
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  if [ -n "$plain" ] || [ "$name" = baseline ]; then continue; fi  # the catalog: below
  run "$name" "$method" "$path" "$body" "$tokens" "$cached"
done < <("$PY" bench/scenarios.py)

# The catalog against its plain views (bench/views.py: same rows, same JSON), each pair
# alternating ROUNDS times so drifting machine load hits both alike.
echo
echo "catalog rounds (each scenario, then its plain view):"
catalog=()
while IFS='|' read -r name method path body tokens cached plain etag; do
  [ -n "$plain" ] || continue
  if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
  catalog+=("$name|$path|$cached|$plain|$etag")
done < <("$PY" bench/scenarios.py)
for _ in $(seq 1 "$ROUNDS"); do
  for entry in "${catalog[@]}"; do
    IFS='|' read -r name path cached plain etag <<<"$entry"
    tag=""
    [ -n "$etag" ] && tag=$(etag_of "$path")
    run "$name" GET "$path" "" "" "$cached" "$tag"
    run "plain:$name" GET "$plain" "" ""
  done
done

# Worker CPU per request against the same plain views, in-process (bench/cpu.py): issue 24's
# steadiest figure. Then cost growth (bench/growth.py: 10,000 -> 100,000 sessions, rolled back).
declare -A CPU
if [ "${SKIP_CPU:-0}" != "1" ]; then
  DJANGO_DEBUG=false "$PY" bench/cpu.py >"$work/cpu.txt" 2>/dev/null || SERVER_ERRORS=$((SERVER_ERRORS + 1))
  while read -r name ours theirs ratio _; do CPU[$name]="$ours $theirs $ratio"; done <"$work/cpu.txt"
fi
if [ "${SKIP_GROWTH:-0}" != "1" ]; then
  DJANGO_DEBUG=true "$PY" bench/growth.py --cpu >"$work/growth.txt" 2>/dev/null || SERVER_ERRORS=$((SERVER_ERRORS + 1))
fi

echo
echo "issue 24, this run: the catalog against plain Django views answering the same rows and JSON"
echo "(req/s: wrk, mean of $ROUNDS alternating rounds; cpu: worker CPU ms per request, median of"
echo " bench/cpu.py's rounds; targets: uncached cpu ratio <= 1.25, cached req/s ratio >= 4)"
printf '%-16s %8s %8s %7s   %8s %8s %7s   %7s\n' scenario req/s plain ratio cpu_ms plain ratio queries
for entry in "${catalog[@]}"; do
  IFS='|' read -r name _ _ _ _ <<<"$entry"
  ours=$(mean "${RPS[$name]:-}")
  theirs=$(mean "${RPS[plain:$name]:-}")
  read -r cpu_ours cpu_theirs cpu_ratio <<<"${CPU[$name]:-- - -}"
  printf '%-16s %8s %8s %7s   %8s %8s %7s   %7s\n' "$name" "$ours" "$theirs" \
    "$(awk -v a="$ours" -v b="$theirs" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "?" }')" \
    "$cpu_ours" "$cpu_theirs" "$cpu_ratio" "$(awk -v n="$name" '$1 == n {print $2}' "$work/queries.txt")"
done
if [ -s "$work/growth.txt" ]; then
  echo
  echo "cost growth (bench/growth.py):"
  cat "$work/growth.txt"
fi
if [ "$SERVER_ERRORS" -gt 0 ]; then
  echo "FAILED: $SERVER_ERRORS responses were 5xx (gunicorn log below)" >&2
  tail -n 50 "$work/gunicorn.log" >&2
  exit 1
fi
