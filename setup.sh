#!/usr/bin/env bash
# First run without make (Linux, macOS, WSL): virtualenv, install, a local .env, migrate, demo
# data, then the API on http://127.0.0.1:8000. The same as `make run`. Windows: setup.bat.
#
#   ./setup.sh            # set up and run
#   ./setup.sh --no-run   # set up only
#
# Environment: PYTHON (python3), VENV (.venv), PORT (8000), SEED_DEMO_PASSWORD (demo accounts'
# password; unset: random ones, printed once), SETUP_SKIP_INSTALL=1 (VENV is installed already).
set -euo pipefail
cd "$(dirname "$0")"

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
PORT="${PORT:-8000}"
run_server=true
[ "${1:-}" = "--no-run" ] && run_server=false

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    { echo "setup.sh: Python 3.11 or newer is needed (set PYTHON=python3.11)" >&2; exit 1; }
  echo "setup.sh: creating the virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
if [ "${SETUP_SKIP_INSTALL:-0}" != "1" ]; then
  echo "setup.sh: installing requirements"
  "$VENV/bin/python" -m pip install --quiet -r requirements-dev.txt
fi

# A local .env for development. .env.example is the production template (DJANGO_DEBUG=false,
# placeholder secret, the compose database host): copying it here would stop the local server.
if [ ! -e .env ]; then
  cat >.env <<'ENV'
# Local development, written by setup.sh. For production and docker-compose, start from
# .env.example instead (cp .env.example .env) and fill in the secrets.
DJANGO_DEBUG=true
ENV
  echo "setup.sh: wrote a development .env (DJANGO_DEBUG=true, SQLite)"
fi

# This script is for local development whatever .env says: debug on (the development secret
# and hosts), and SQLite instead of the compose database host, which only exists in Docker.
export DJANGO_DEBUG=true
if grep -Eq '^DATABASE_URL=.*@db(:|/)' .env; then
  echo "setup.sh: .env points DATABASE_URL at docker-compose's 'db'; using SQLite for this run"
  export DATABASE_URL=""
fi

if [ "$run_server" = true ]; then
  # As `make run`: migrate, seed, serve, with the Stripe stand-in when no key is set.
  echo "setup.sh: API on http://127.0.0.1:$PORT/ (docs: /swagger/, admin: /admin/); Ctrl-C stops it"
  PORT="$PORT" exec "$VENV/bin/python" scripts/dev_server.py
fi
"$VENV/bin/python" manage.py migrate --noinput
"$VENV/bin/python" manage.py seed_demo
