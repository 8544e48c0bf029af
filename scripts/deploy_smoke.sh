#!/usr/bin/env bash
# Deployment smoke test without a Docker engine: the same gunicorn.conf.py and nginx/nginx.conf
# as the containers (nginx with only its upstream address and listen port substituted), in front
# of a fresh PostgreSQL database, everything on loopback and in a temporary folder. Checks what
# a production deployment must do through nginx, then stops everything it started.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/marketplace scripts/deploy_smoke.sh
#
# DATABASE_URL names a PostgreSQL server (and a database to connect to); the smoke test creates
# and drops its own database, <name>_smoke, beside it. Optional: SMOKE_GUNICORN_PORT (18710),
# SMOKE_NGINX_PORT (18711), PYTHON (default .venv/bin/python, else python3), SMOKE_FULL=1 for
# the checks that need the bookings and upload endpoints, SMOKE_KEEP=1 to keep the temp folder.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"

if [ -z "${PYTHON:-}" ]; then
  if [ -x "$REPO/.venv/bin/python" ]; then PYTHON="$REPO/.venv/bin/python"; else PYTHON=python3; fi
fi
GUNICORN_PORT="${SMOKE_GUNICORN_PORT:-18710}"
NGINX_PORT="${SMOKE_NGINX_PORT:-18711}"
HOST_HEADER="api.example.com"
BASE="http://127.0.0.1:$NGINX_PORT"
UPLOAD_MAX_MB=5
started_at=$SECONDS

say() { printf 'deploy-smoke: %s\n' "$*"; }
fail() {
  printf 'deploy-smoke: FAIL: %s\n' "$*" >&2
  exit 1
}

# /usr/sbin is not on every user's PATH.
NGINX="$(command -v nginx || command -v /usr/sbin/nginx)" || fail "nginx is not installed (apt-get install -y nginx)"
command -v curl >/dev/null || fail "curl is not installed"
case "${DATABASE_URL:-}" in
  postgres://* | postgresql://*) ;;
  *) fail "DATABASE_URL must point at PostgreSQL (got '${DATABASE_URL:-}')" ;;
esac
for port in "$GUNICORN_PORT" "$NGINX_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port on 127.0.0.1 is already in use"
  fi
done

# --- Workspace, database, cleanup -----------------------------------------------------------
WORK="$(mktemp -d "${TMPDIR:-/tmp}/deploy-smoke.XXXXXX")"
# nginx workers drop root privileges: they must be able to read the prefix (static, media).
chmod 755 "$WORK"
PREFIX="$WORK/nginx"
mkdir -p "$PREFIX/static" "$PREFIX/media"
base_url="${DATABASE_URL%%\?*}"
SMOKE_DB="$(basename "$base_url")_smoke"
SMOKE_DATABASE_URL="${base_url%/*}/$SMOKE_DB"
gunicorn_pid=""
nginx_pid=""

stop() {
  local pid="$1" signal="$2"
  [ -n "$pid" ] || return 0
  kill -"$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
}

admin_sql() {
  DATABASE_URL="$DATABASE_URL" "$PYTHON" - "$1" <<'PY'
import os, sys
import psycopg
with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as connection:
    connection.execute(sys.argv[1])
PY
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # gunicorn: QUIT is its quick shutdown; nginx: TERM is its fast one.
  stop "$nginx_pid" TERM
  stop "$gunicorn_pid" QUIT
  if [ "$status" -ne 0 ]; then
    for log in gunicorn.log nginx.log setup.log; do
      if [ -s "$WORK/$log" ]; then
        echo "----- $log (last 40 lines) -----" >&2
        tail -n 40 "$WORK/$log" >&2
      fi
    done
  fi
  admin_sql "DROP DATABASE IF EXISTS \"$SMOKE_DB\" WITH (FORCE)" >/dev/null 2>&1 || true
  if [ "${SMOKE_KEEP:-0}" = "1" ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

admin_sql "DROP DATABASE IF EXISTS \"$SMOKE_DB\" WITH (FORCE)"
admin_sql "CREATE DATABASE \"$SMOKE_DB\""

# --- The production environment (what .env holds in a deployment) ----------------------------
SEED_PASSWORD="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')"
export DJANGO_DEBUG=false
DJANGO_SECRET_KEY="$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(50))')"
export DJANGO_SECRET_KEY
export DJANGO_ALLOWED_HOSTS="$HOST_HEADER"
export CSRF_TRUSTED_ORIGINS="https://$HOST_HEADER"
# Plain HTTP on loopback: there is no TLS here to redirect to. Everything else stays production.
export DJANGO_SECURE_SSL_REDIRECT=false
export NUM_PROXIES=1
export DATABASE_URL="$SMOKE_DATABASE_URL"
export STATIC_ROOT="$PREFIX/static"
export MEDIA_ROOT="$PREFIX/media"
export UPLOAD_MAX_MB
export SEED_DEMO_PASSWORD="$SEED_PASSWORD"
export GUNICORN_BIND="127.0.0.1:$GUNICORN_PORT"
export GUNICORN_WORKERS=2 GUNICORN_THREADS=2 GUNICORN_TIMEOUT=30
export FORWARDED_ALLOW_IPS=127.0.0.1
export PYTHONUNBUFFERED=1
# A developer's .env must not leak integrations into the smoke test (real variables win).
export AWS_STORAGE_BUCKET_NAME="" REDIS_URL="" STRIPE_SECRET_KEY="" EMAIL_URL="locmem://"
export DJANGO_SUPERUSER_USERNAME="" DJANGO_SUPERUSER_EMAIL="" DJANGO_SUPERUSER_PASSWORD=""

# --- Migrate + collectstatic (in parallel), seed ---------------------------------------------
say "migrate, collectstatic, seed_demo"
"$PYTHON" manage.py migrate --noinput >"$WORK/migrate.log" 2>&1 &
migrate_pid=$!
"$PYTHON" manage.py collectstatic --noinput >"$WORK/collectstatic.log" 2>&1 ||
  fail "collectstatic: $(tail -n 5 "$WORK/collectstatic.log")"
wait "$migrate_pid" || fail "migrate: $(tail -n 5 "$WORK/migrate.log")"
"$PYTHON" manage.py seed_demo >"$WORK/seed.log" 2>&1 || fail "seed_demo: $(tail -n 5 "$WORK/seed.log")"
chmod -R a+rX "$PREFIX"

# --- gunicorn and nginx ----------------------------------------------------------------------
"$PYTHON" -m gunicorn -c gunicorn.conf.py core.wsgi:application >"$WORK/gunicorn.log" 2>&1 &
gunicorn_pid=$!

# nginx.conf includes mime.types from its own folder, as /etc/nginx/ has it in the container.
cp /etc/nginx/mime.types "$PREFIX/" || fail "no /etc/nginx/mime.types (Debian's nginx package)"
sed -e "s/server backend:8000;/server 127.0.0.1:$GUNICORN_PORT;/" \
  -e "s/listen 8080;/listen 127.0.0.1:$NGINX_PORT;/" \
  nginx/nginx.conf >"$PREFIX/nginx.conf"
# Exactly the two substitutions, nothing else differs from the file the container uses.
[ "$(diff nginx/nginx.conf "$PREFIX/nginx.conf" | grep -c '^>')" = "2" ] ||
  fail "nginx.conf substitution did not change exactly the upstream and the listen lines"
"$NGINX" -e stderr -p "$PREFIX/" -c "$PREFIX/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
nginx_pid=$!

# --- HTTP helpers ----------------------------------------------------------------------------
BODY="$WORK/body"
HEADERS="$WORK/headers"
# request METHOD PATH [curl args...]: sets $status; body in $BODY, headers in $HEADERS.
# REQUEST_HOST overrides the Host header for one call.
request() {
  local method="$1" path="$2"
  shift 2
  status="$(curl -sS -o "$BODY" -D "$HEADERS" -w '%{http_code}' -X "$method" \
    -H "Host: ${REQUEST_HOST:-$HOST_HEADER}" "$@" "$BASE$path")" || status="000"
}
expect_status() {
  [ "$status" = "$1" ] || fail "$2: expected HTTP $1, got $status: $(head -c 300 "$BODY")"
}
header() { grep -i "^$1:" "$HEADERS" | head -n 1 | cut -d' ' -f2- | tr -d '\r'; }
header_count() { grep -ci "^$1:" "$HEADERS" || true; }
# The server-wide security headers, each exactly once (a location's own add_header drops them).
expect_security_headers() {
  local name value
  for name in "X-Content-Type-Options:nosniff" "X-Frame-Options:DENY" \
    "Referrer-Policy:same-origin" "Permissions-Policy:camera=(), microphone=(), geolocation=()"; do
    value="${name#*:}"
    name="${name%%:*}"
    [ "$(header "$name")" = "$value" ] || fail "$1: $name is '$(header "$name")', not '$value'"
    [ "$(header_count "$name")" = "1" ] || fail "$1: $name sent $(header_count "$name") times"
  done
}
# json EXPR: evaluates a Python expression over the last body, bound to `body`.
json() { "$PYTHON" -c "import json, sys; body = json.load(open(sys.argv[1])); print($1)" "$BODY"; }
gunicorn_log_has() { grep -q -- "$1" "$WORK/gunicorn.log"; }

for _ in $(seq 1 100); do
  request GET /api/health/
  [ "$status" = "200" ] && break
  kill -0 "$gunicorn_pid" 2>/dev/null || fail "gunicorn exited"
  kill -0 "$nginx_pid" 2>/dev/null || fail "nginx exited"
  sleep 0.2
done
say "up after $((SECONDS - started_at)) s"

# --- Checks ----------------------------------------------------------------------------------
check_health() {
  request GET /api/health/
  expect_status 200 "health"
  [ "$(json 'body == {"status": "ok", "database": "ok", "queue": "inline"}')" = "True" ] || fail "health body $(cat "$BODY")"
  expect_security_headers "health"
  [ "$(header X-Content-Type-Options)" = "nosniff" ] || fail "health: no X-Content-Type-Options"
  [ "$(header X-Frame-Options)" = "DENY" ] || fail "health: no X-Frame-Options"
  [ "$(header_count X-Frame-Options)" = "1" ] || fail "health: X-Frame-Options sent twice"
  if header Server | grep -q '[0-9]'; then fail "nginx reveals its version: $(header Server)"; fi
  REQUEST_HOST=evil.example.net request GET /api/health/
  expect_status 400 "a host outside DJANGO_ALLOWED_HOSTS"
  # The image's HEALTHCHECK script, against gunicorn directly (as inside the container).
  "$PYTHON" scripts/container_healthcheck.py || fail "container_healthcheck.py failed on a healthy server"
  if GUNICORN_BIND=127.0.0.1:1 "$PYTHON" scripts/container_healthcheck.py 2>/dev/null; then
    fail "container_healthcheck.py passed with nothing listening"
  fi
  say "ok: health, security headers, unknown Host refused, the image's healthcheck script"
}

check_static() {
  local hashed
  hashed="$("$PYTHON" -c 'import json, sys; print(json.load(open(sys.argv[1]))["paths"]["admin/css/base.css"])' \
    "$PREFIX/static/staticfiles.json")"
  case "$hashed" in admin/css/base.*.css) ;; *) fail "no hashed name for admin/css/base.css: $hashed" ;; esac
  request GET "/static/$hashed"
  expect_status 200 "hashed admin CSS"
  cmp -s "$BODY" "$PREFIX/static/$hashed" || fail "hashed admin CSS differs from the collected file"
  case "$(header Content-Type)" in text/css*) ;; *) fail "admin CSS Content-Type $(header Content-Type)" ;; esac
  [ "$(header Cache-Control)" = "public, max-age=31536000, immutable" ] ||
    fail "hashed static Cache-Control: $(header Cache-Control)"
  expect_security_headers "hashed admin CSS"
  request GET "/static/$hashed" -H "Accept-Encoding: gzip"
  [ "$(header Content-Encoding)" = "gzip" ] || fail "static files are not served gzipped"
  request GET /static/admin/css/base.css
  expect_status 200 "plain admin CSS name"
  case "$(header Cache-Control)" in *immutable*) fail "a plain (unhashed) name is cached as immutable" ;; esac
  # The admin page links the hashed file, so browsers get the long cache.
  request GET /admin/login/
  expect_status 200 "admin login page"
  grep -q "/static/$hashed" "$BODY" || fail "admin login page does not link /static/$hashed"
  if gunicorn_log_has '"GET /static/'; then fail "a /static/ request reached gunicorn"; fi
  say "ok: admin CSS served by nginx ($hashed, immutable, gzip), admin page links it"
}

check_media() {
  printf 'GIF89a' >"$PREFIX/media/smoke.gif"
  chmod a+r "$PREFIX/media/smoke.gif"
  request GET /media/smoke.gif
  expect_status 200 "local media"
  case "$(header Content-Security-Policy)" in *sandbox*) ;; *) fail "media without sandbox CSP" ;; esac
  expect_security_headers "media"
  request GET /media/no-such-file.png
  expect_status 404 "missing media"
  expect_security_headers "missing media"
  if gunicorn_log_has '"GET /media/'; then fail "a /media/ request reached gunicorn"; fi
  say "ok: media served by nginx with a sandbox CSP and the security headers"
}

check_docs() {
  request GET /swagger/
  expect_status 200 "Swagger UI"
  case "$(header Content-Type)" in text/html*) ;; *) fail "Swagger UI Content-Type $(header Content-Type)" ;; esac
  local asset
  asset="$(grep -o '/static/drf-yasg/[^"]*\.js' "$BODY" | head -n 1)"
  [ -n "$asset" ] || fail "Swagger UI page links no drf-yasg script"
  request GET "$asset"
  expect_status 200 "Swagger UI script $asset"
  request GET /redoc/
  expect_status 200 "ReDoc"
  # nginx overwrites X-Forwarded-Proto: a client claiming https still gets an http schema.
  request GET /swagger.json -H "X-Forwarded-Proto: https"
  expect_status 200 "swagger.json"
  [ "$(json 'body["swagger"]')" = "2.0" ] || fail "swagger.json is not Swagger 2.0"
  [ "$(json 'body.get("schemes")')" = "['http']" ] ||
    fail "X-Forwarded-Proto was spoofable: schemes $(json 'body.get("schemes")')"
  [ "$(json 'body.get("host")')" = "$HOST_HEADER" ] || fail "swagger.json host $(json 'body.get("host")')"
  [ "$(json 'any(p.endswith("/health/") for p in body["paths"])')" = "True" ] ||
    fail "swagger.json lists no health path"
  say "ok: /swagger/ (+ its script), /redoc/, /swagger.json 2.0; X-Forwarded-Proto not spoofable"
}

ACCESS=""
check_login() {
  request POST /api/auth/token/ -H 'Content-Type: application/json' \
    --data "{\"username\": \"dana\", \"password\": \"wrong-$SEED_PASSWORD\"}"
  expect_status 401 "login with a wrong password"
  request POST /api/auth/token/ -H 'Content-Type: application/json' \
    --data "{\"username\": \"dana\", \"password\": \"$SEED_PASSWORD\"}"
  expect_status 200 "login"
  [ "$(json 'sorted(body)')" = "['access', 'refresh']" ] || fail "token response $(cat "$BODY")"
  ACCESS="$(json 'body["access"]')"
  local refresh
  refresh="$(json 'body["refresh"]')"
  request POST /api/auth/token/refresh/ -H 'Content-Type: application/json' \
    --data "{\"refresh\": \"$refresh\"}"
  expect_status 200 "token refresh"
  say "ok: login via /api/auth/token/ (wrong password 401), refresh"
}

check_forwarded_for() {
  local id="smoke-xff-$RANDOM$RANDOM"
  request GET /api/health/ -H "X-Forwarded-For: 203.0.113.66" -H "X-Request-ID: $id"
  expect_status 200 "health with a spoofed X-Forwarded-For"
  [ "$(header X-Request-ID)" = "$id" ] || fail "X-Request-ID not passed through: $(header X-Request-ID)"
  local line=""
  for _ in $(seq 1 20); do
    line="$(grep -- " $id " "$WORK/gunicorn.log" || true)"
    [ -n "$line" ] && break
    sleep 0.1
  done
  [ -n "$line" ] || fail "no gunicorn access log line for $id"
  case "$line" in
    *203.0.113.66*) fail "X-Forwarded-For was spoofable: $line" ;;
    "127.0.0.1 127.0.0.1 "*) ;;
    *) fail "unexpected access log line: $line" ;;
  esac
  say "ok: X-Forwarded-For overwritten by nginx (client sent 203.0.113.66, Django saw 127.0.0.1)"
}

check_upload_over_limit() {
  local id="smoke-413-$RANDOM$RANDOM"
  head -c $(((UPLOAD_MAX_MB + 2) * 1024 * 1024)) /dev/zero >"$WORK/too-large.png"
  request POST /api/storage/upload/ -H "Authorization: Bearer $ACCESS" -H "X-Request-ID: $id" \
    -F "file=@$WORK/too-large.png;type=image/png" -F purpose=avatar
  expect_status 413 "upload over the limit"
  [ "$(json 'body["code"]')" = "too_large" ] || fail "413 body is not the JSON error: $(cat "$BODY")"
  if gunicorn_log_has " $id "; then fail "the oversized body reached gunicorn"; fi
  say "ok: $((UPLOAD_MAX_MB + 2)) MiB upload refused by nginx with a JSON 413"
}

# make_png PATH SIZE: a valid 2x2 PNG of exactly SIZE bytes (padded with a private chunk).
make_png() {
  "$PYTHON" - "$1" "$2" <<'PY'
import struct, sys, zlib
path, size = sys.argv[1], int(sys.argv[2])
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
idat = chunk(b"IDAT", zlib.compress(b"\x00" + b"\xff\x00\x00" * 2 + b"\x00" + b"\x00\x00\xff" * 2))
iend = chunk(b"IEND", b"")
head = b"\x89PNG\r\n\x1a\n" + ihdr + idat
padding = size - len(head) - len(iend) - 12
with open(path, "wb") as out:
    out.write(head + chunk(b"smPd", b"\x00" * padding) + iend)
PY
}

# Needs POST /api/bookings/ and POST /api/storage/upload/ (CONTRACT.md); SMOKE_FULL=1 runs it
# (backend/tests/test_deploy.py does).
check_booking_and_upload_at_limit() {
  # The seeded free session nobody in the demo data holds for dana (the catalog is not needed).
  local session_id
  session_id="$(DATABASE_URL="$SMOKE_DATABASE_URL" "$PYTHON" - <<'PY'
import os
import psycopg
with psycopg.connect(os.environ["DATABASE_URL"]) as connection:
    print(connection.execute("SELECT id FROM sessions WHERE title = 'Git without fear'").fetchone()[0])
PY
)"
  request POST /api/bookings/ -H "Authorization: Bearer $ACCESS" -H 'Content-Type: application/json' \
    --data "{\"session\": $session_id}"
  expect_status 201 "booking a free session"
  [ "$(json '(body["status"], body["payment_status"], body["seats"])')" = "('confirmed', 'not_required', 1)" ] ||
    fail "booking $(cat "$BODY")"
  request POST /api/bookings/ -H "Authorization: Bearer $ACCESS" -H 'Content-Type: application/json' \
    --data "{\"session\": $session_id}"
  expect_status 409 "booking the same session twice"
  say "ok: booking through nginx (201 confirmed, second one 409)"

  # A valid PNG of exactly UPLOAD_MAX_MB MiB: a tiny image padded with a private ancillary chunk.
  make_png "$WORK/at-limit.png" "$((UPLOAD_MAX_MB * 1024 * 1024))"
  make_png "$WORK/one-byte-over.png" "$((UPLOAD_MAX_MB * 1024 * 1024 + 1))"
  [ "$(stat -c %s "$WORK/at-limit.png")" = "$((UPLOAD_MAX_MB * 1024 * 1024))" ] || fail "at-limit PNG size"
  request POST /api/storage/upload/ -H "Authorization: Bearer $ACCESS" \
    -F "file=@$WORK/at-limit.png;type=image/png" -F purpose=avatar
  expect_status 201 "upload of exactly $UPLOAD_MAX_MB MiB"
  local url
  url="$(json 'body["url"]')"
  case "$url" in
    http*://*/media/*) url="/media/${url#*/media/}" ;;
  esac
  request GET "$url"
  expect_status 200 "the uploaded file through nginx"
  # Avatars are re-encoded (WebP, metadata and the padding chunk dropped): small, and an image.
  case "$(header Content-Type)" in image/*) ;; *) fail "uploaded file Content-Type $(header Content-Type)" ;; esac
  [ "$(stat -c %s "$BODY")" -lt 100000 ] || fail "the stored avatar was not re-encoded"
  if gunicorn_log_has "\"GET $url"; then fail "the uploaded file was served by gunicorn"; fi
  say "ok: $UPLOAD_MAX_MB MiB upload accepted (201), re-encoded, served back by nginx"

  # Between the API's limit and nginx's: the API itself answers, with its JSON 413.
  local id="smoke-413-app-$RANDOM$RANDOM"
  request POST /api/storage/upload/ -H "Authorization: Bearer $ACCESS" -H "X-Request-ID: $id" \
    -F "file=@$WORK/one-byte-over.png;type=image/png" -F purpose=avatar
  expect_status 413 "upload one byte over the limit"
  case "$(json 'body["detail"]')" in *"larger than $UPLOAD_MAX_MB MB"*) ;; *) fail "API 413 body $(cat "$BODY")" ;; esac
  gunicorn_log_has " $id " || fail "the one-byte-over upload did not reach the API"
  say "ok: $UPLOAD_MAX_MB MiB + 1 byte refused by the API with its JSON 413"
}

check_admin_login_limited() {
  # nginx limits POSTs to the admin login per address; the page itself still loads.
  local limited=0 i
  for i in $(seq 1 20); do
    request POST /admin/login/ -d "username=admin&password=wrong-$i"
    [ "$status" = "429" ] && limited=$((limited + 1))
  done
  [ "$limited" -gt 0 ] || fail "20 rapid admin login POSTs were never limited (429)"
  request GET /admin/login/
  expect_status 200 "admin login page after the limit"
  say "ok: admin login POSTs limited by nginx ($limited of 20 got 429), page still loads"
}

check_health
check_static
check_media
check_docs
check_login
check_admin_login_limited
check_forwarded_for
check_upload_over_limit
if [ "${SMOKE_FULL:-0}" = "1" ]; then
  check_booking_and_upload_at_limit
else
  say "skipped: booking and at-limit uploads (SMOKE_FULL=1 runs them)"
fi
say "PASS in $((SECONDS - started_at)) s"
