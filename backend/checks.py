"""Deployment checks of our own, run by `manage.py check --deploy` beside Django's.

backend.E001: production without a shared cache. Throttle counters (login guessing, uploads)
live in the cache; with the per-process default every gunicorn worker counts on its own, so 3
workers allow three times the documented rate.
backend.W002: production without a mail server. Messages are not delivered, only counted in the
log (backend/mail.py).
"""

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

# Caches that live inside one process (or nowhere): counters in them are not shared.
PER_PROCESS_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)
REDACTED_CONSOLE_BACKEND = "backend.mail.RedactedConsoleBackend"


@register(Tags.security, deploy=True)
def check_shared_cache(app_configs, **kwargs) -> list[CheckMessage]:
    if settings.DEBUG:
        return []
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend not in PER_PROCESS_CACHES:
        return []
    return [
        Error(
            "Throttling counts in a per-process cache: each gunicorn worker allows the full "
            "rate, so the limits (THROTTLE_*_RATE) do not hold.",
            hint="Set REDIS_URL (docker-compose.yml runs a redis service).",
            id="backend.E001",
        )
    ]


@register(Tags.security, deploy=True)
def check_mail_server(app_configs, **kwargs) -> list[CheckMessage]:
    if settings.DEBUG or settings.EMAIL_BACKEND != REDACTED_CONSOLE_BACKEND:
        return []
    return [
        Warning(
            "No mail server is configured: booking e-mails are not delivered, only counted "
            "in the log.",
            hint="Set EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587.",
            id="backend.W002",
        )
    ]
