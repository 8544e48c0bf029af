#!/bin/sh
# Container start: wait for the database, migrate, create the admin (only from
# DJANGO_SUPERUSER_*), publish the image's collected static files to nginx, then run the command.
set -eu

cd /app

python manage.py wait_for_db --timeout "${DB_WAIT_TIMEOUT:-60}"

# Several replicas may start at once; migrations take a lock, so running them twice is safe.
if [ "${DJANGO_MIGRATE:-true}" = "true" ]; then
  python manage.py migrate --noinput
fi

python manage.py ensure_superuser

# The image holds the static files collected at build time; nginx reads them from a shared
# volume. Copying on every start keeps the volume in step with the image after a rebuild (old
# hashed files stay, so pages cached by browsers keep working).
if [ -n "${STATIC_EXPORT_DIR:-}" ]; then
  cp -R /app/staticfiles/. "$STATIC_EXPORT_DIR"/
fi

exec "$@"
