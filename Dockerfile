# Production image: gunicorn serving the Django API, static files collected at build time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies in their own layer: rebuilt only when requirements.txt changes.
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

# A system user without a shell runs the app (numeric id, so orchestrators can verify non-root). The code stays root-owned (read-only for it);
# only the media folder and the static export folder (shared volumes) are its own.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /srv/media /srv/static \
    && chown app:app /srv/media /srv/static

COPY . .

# collectstatic needs settings that load with DEBUG off (hashed, compressed files); the dummy
# values exist only in this RUN's environment and never reach the running container.
RUN DJANGO_DEBUG=false \
    DJANGO_SECRET_KEY=build-only-collectstatic-key-never-used-at-runtime-7f3a9c2e \
    DJANGO_ALLOWED_HOSTS=build.invalid \
    python manage.py collectstatic --noinput

ENV MEDIA_ROOT=/srv/media \
    GUNICORN_BIND=0.0.0.0:8000

USER 10001:10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "/app/scripts/container_healthcheck.py"]

ENTRYPOINT ["sh", "/app/docker-entrypoint.sh"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "core.wsgi:application"]
