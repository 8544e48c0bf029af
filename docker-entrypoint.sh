#!/bin/sh
# Container start. The first argument picks the role:
#   web (or the image's gunicorn CMD): wait for the database, migrate, create the admin (only
#       from DJANGO_SUPERUSER_*), publish the collected static files to nginx, serve;
#   worker: a Celery worker (CELERY_QUEUES, default "payments,default"; the mail queue has
#       its own worker in docker-compose.yml, so a slow mail server never delays refunds);
#   beat: the Celery beat scheduler (exactly one per deployment; a second is harmless,
#       backend/tasks/periodic.py);
#   anything else: run as given (manage.py commands, a shell).
set -eu

cd /app

role="${1:-web}"
case "$role" in
  web)
    shift || true
    set -- gunicorn -c gunicorn.conf.py core.wsgi:application "$@"
    ;;
  worker)
    shift
    set -- celery -A core worker --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
      --queues="${CELERY_QUEUES:-payments,default}" "$@"
    ;;
  beat)
    shift
    set -- celery -A core beat --loglevel="${CELERY_LOG_LEVEL:-INFO}" \
      --schedule="${CELERY_BEAT_SCHEDULE_FILENAME:-/tmp/celerybeat-schedule}" --pidfile= "$@"
    ;;
esac

python manage.py wait_for_db --timeout "${DB_WAIT_TIMEOUT:-60}"

if [ "$1" = "gunicorn" ]; then
  # Several replicas may start at once; migrations take a lock, so running them twice is safe.
  if [ "${DJANGO_MIGRATE:-true}" = "true" ]; then
    python manage.py migrate --noinput
  fi

  python manage.py ensure_superuser

  # The image holds the static files collected at build time; nginx reads them from a shared
  # volume. Copying on every start keeps the volume in step with the image after a rebuild
  # (old hashed files stay, so pages cached by browsers keep working).
  if [ -n "${STATIC_EXPORT_DIR:-}" ]; then
    cp -R /app/staticfiles/. "$STATIC_EXPORT_DIR"/
  fi
fi

exec "$@"
