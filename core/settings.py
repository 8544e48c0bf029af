"""Settings for the sessions marketplace.

One file. Everything that differs between machines is read from the environment (see
.env.example for every variable). Development defaults are safe; with DJANGO_DEBUG=false a
missing or example secret refuses to start instead of running insecurely.
"""

import ipaddress
import os
import tempfile
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import unquote, urlsplit

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.checks.security.base import (
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

# A local .env file, when present, fills in what the real environment does not set.
load_dotenv(BASE_DIR / ".env", override=False)


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from error


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", default=False)

# Placeholders that must never reach production; the example file ships one of them.
INSECURE_SECRET_KEYS = {"", "change-me", "changeme", "django-insecure-change-me"}
SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if SECRET_KEY in INSECURE_SECRET_KEYS or SECRET_KEY.startswith("django-insecure"):
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is missing or an example value. Set a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DJANGO_DEBUG=true for local development."
        )
    # Only reachable with DEBUG on: production refuses to start above.
    SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production-4d8f"  # noqa: S105
elif not DEBUG and (
    len(SECRET_KEY) < SECRET_KEY_MIN_LENGTH
    or len(set(SECRET_KEY)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
):
    # Django's own `check --deploy` criteria (security.W009), enforced at start-up: a short or
    # repetitive key signs JWTs and sessions that can be forged by guessing it.
    raise ImproperlyConfigured(
        f"DJANGO_SECRET_KEY is too weak: use at least {SECRET_KEY_MIN_LENGTH} characters with "
        f"at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if DEBUG and not ALLOWED_HOSTS:
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS is empty. List the host names this API is served under, "
        "comma-separated (for example api.example.com)."
    )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "social_django",
    "corsheaders",
    "django_filters",
    "drf_yasg",
    "backend",
]

MIDDLEWARE = [
    "backend.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "backend.middleware.ApiErrorMiddleware",
]

ROOT_URLCONF = "core.urls"
WSGI_APPLICATION = "core.wsgi.application"
ASGI_APPLICATION = "core.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
# DATABASE_URL unset: an SQLite file, the embedded default. PostgreSQL in every real deployment.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
            conn_health_checks=True,
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH") or str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {
                # Wait for a writer instead of failing at once with "database is locked".
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
            },
        }
    }

if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # A stuck lock or a runaway query fails the request quickly instead of pinning a worker.
    lock_timeout_ms = env_int("DB_LOCK_TIMEOUT_MS", 5000)
    statement_timeout_ms = env_int("DB_STATEMENT_TIMEOUT_MS", 30000)
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c lock_timeout={lock_timeout_ms} -c statement_timeout={statement_timeout_ms}"
    )
    DATABASES["default"]["OPTIONS"]["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
    # JIT compilation pays off for long analytic queries, not ours: catalog filters whose
    # per-row subquery estimates crossed jit_above_cost spent 30+ ms compiling (bench/run.sh).
    if not env_bool("DB_JIT", default=False):
        DATABASES["default"]["OPTIONS"]["options"] += " -c jit=off"
    DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME") or None}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "backend.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "social_core.backends.google.GoogleOAuth2",
    "social_core.backends.github.GithubOAuth2",
    "django.contrib.auth.backends.ModelBackend",
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or BASE_DIR / "media")

AWS_STORAGE_BUCKET_NAME = env_str("AWS_STORAGE_BUCKET_NAME")
AWS_ACCESS_KEY_ID = env_str("AWS_ACCESS_KEY_ID") or None
AWS_SECRET_ACCESS_KEY = env_str("AWS_SECRET_ACCESS_KEY") or None
AWS_S3_ENDPOINT_URL = env_str("AWS_S3_ENDPOINT_URL") or None
AWS_S3_REGION_NAME = env_str("AWS_S3_REGION_NAME") or None
AWS_S3_CUSTOM_DOMAIN = env_str("AWS_S3_CUSTOM_DOMAIN") or None
# The bucket stays private: URLs are presigned and expire, unless a public CDN domain is set.
AWS_QUERYSTRING_AUTH = AWS_S3_CUSTOM_DOMAIN is None
AWS_QUERYSTRING_EXPIRE = env_int("AWS_QUERYSTRING_EXPIRE", 3600)
AWS_DEFAULT_ACL = None
AWS_S3_FILE_OVERWRITE = False
# MinIO and most S3-compatible servers are addressed as endpoint/bucket/key, not bucket.endpoint.
AWS_S3_ADDRESSING_STYLE = env_str("AWS_S3_ADDRESSING_STYLE") or (
    "path" if AWS_S3_ENDPOINT_URL else None
)
AWS_S3_SIGNATURE_VERSION = "s3v4"
# A storage that is down answers 503 within seconds instead of holding a worker (see
# backend/integrations/storage.py).
AWS_S3_TIMEOUT_SECONDS = env_int("AWS_S3_TIMEOUT_SECONDS", 10)
AWS_S3_MAX_ATTEMPTS = env_int("AWS_S3_MAX_ATTEMPTS", 3)

if AWS_STORAGE_BUCKET_NAME:
    default_storage = {"BACKEND": "backend.integrations.storage.MediaS3Storage"}
else:
    default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": default_storage,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

UPLOAD_MAX_MB = env_int("UPLOAD_MAX_MB", 5)
# Image decodes at once per process (each up to 32 MB of pixels, backend/services/files.py), and
# how long an upload waits for its turn before a 503.
UPLOAD_DECODE_CONCURRENCY = env_int("UPLOAD_DECODE_CONCURRENCY", 1)
UPLOAD_DECODE_WAIT_SECONDS = env_int("UPLOAD_DECODE_WAIT_SECONDS", 20)
# Django itself refuses request bodies far beyond the upload limit (multipart overhead allowed).
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440

# --- Cache (shared throttling counters when Redis is configured) -----------------------------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, reusing its redis-py clients (backend/redis_cache.py).
            "BACKEND": "backend.redis_cache.RedisCache",
            "LOCATION": REDIS_URL,
            # One Redis may serve several deployments (or test runs): each its own prefix.
            "KEY_PREFIX": env_str("CACHE_KEY_PREFIX") or "sm",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Rendered anonymous catalog pages (list and detail) kept in the cache above, and the
# `Cache-Control: public, max-age` a CDN may hold them for: how stale `seats_left` may be when
# nothing was written (a hold running out). 0 turns the page cache off (backend/catalog_cache.py).
CATALOG_CACHE_SECONDS = env_int("CATALOG_CACHE_SECONDS", 5)

# --- Many app instances ----------------------------------------------------------------------
# How many app instances (hosts, containers, pods) serve this deployment. With more than one,
# whatever one instance keeps to itself is wrong for the others: a local-memory cache counts
# throttles per instance (N times the limit in total), local media exist on one disk only, and
# an SQLite file (no DATABASE_URL) is a database of its own per instance: seats would be sold
# once per instance. So start-up refuses all three instead of running quietly wrong (README
# "Many instances").
APP_INSTANCES = env_int("APP_INSTANCES", 1)
if APP_INSTANCES > 1:
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        raise ImproperlyConfigured(
            f"APP_INSTANCES={APP_INSTANCES} needs DATABASE_URL (PostgreSQL): an SQLite file "
            "would be a separate database on each instance."
        )
    if not REDIS_URL:
        raise ImproperlyConfigured(
            f"APP_INSTANCES={APP_INSTANCES} needs REDIS_URL: a local-memory cache would count "
            "throttles per instance."
        )
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured(
            f"APP_INSTANCES={APP_INSTANCES} needs AWS_STORAGE_BUCKET_NAME (S3): uploads on local "
            "disk would exist on one instance only."
        )

# --- Background work (Celery; see core/celery.py and backend/tasks/) --------------------------
# A broker (Redis in production) when CELERY_BROKER_URL or REDIS_URL is set. Without one, tasks
# run inline: in this process, right after the transaction that asked for them commits, through
# the same outbox rows; periodic jobs then run in `manage.py runserver`'s scheduler thread
# (backend/tasks/scheduler.py) or from cron with `manage.py run_periodic_tasks`.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or REDIS_URL
TASKS_INLINE = env_bool("TASKS_INLINE", default=not CELERY_BROKER_URL)
if TASKS_INLINE or not CELERY_BROKER_URL:
    # Nothing is ever published in inline mode; an in-memory broker keeps Celery from
    # reaching for a default AMQP server on localhost.
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_ACKS_LATE = True
# A worker process killed mid-task (OOM, SIGKILL) gives its message back to the queue.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = "default"
# Mail never slows payments: each has its own queue (and can have its own workers).
CELERY_TASK_ROUTES = {
    "notifications.*": {"queue": "mail"},
    "payments.*": {"queue": "payments"},
}
# The request path publishes once and never waits for a broker that is down: the outbox row
# stays pending and the sweep publishes it later.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = env_int("CELERY_BROKER_CONNECTION_TIMEOUT", 2)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # An unacknowledged message (its worker died) is delivered again after this many seconds.
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE_FILENAME = env_str("CELERY_BEAT_SCHEDULE_FILENAME") or str(
    Path(tempfile.gettempdir()) / "sessions-marketplace-celerybeat-schedule"
)
# The outbox (backend/services/outbox.py): how long a worker owns a message it started, how
# long a published message may wait before the sweep publishes it again, and the backoff of
# failed attempts (base * 2**(attempt-1), capped).
OUTBOX_LEASE_SECONDS = env_int("OUTBOX_LEASE_SECONDS", 300)
OUTBOX_REPUBLISH_AFTER_SECONDS = env_int("OUTBOX_REPUBLISH_AFTER_SECONDS", 600)
OUTBOX_RETRY_BASE_SECONDS = env_int("OUTBOX_RETRY_BASE_SECONDS", 10)
OUTBOX_RETRY_MAX_SECONDS = env_int("OUTBOX_RETRY_MAX_SECONDS", 600)
OUTBOX_SWEEP_SECONDS = env_int("OUTBOX_SWEEP_SECONDS", 30)
# Outgoing webhooks (backend/services/webhooks.py, backend/integrations/webhook_http.py).
# true only for local development: allows http:// and targets on private/loopback addresses.
WEBHOOK_ALLOW_PRIVATE_TARGETS = env_bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
WEBHOOK_TIMEOUT_SECONDS = env_int("WEBHOOK_TIMEOUT_SECONDS", 10)
# Retries: base * 2**(attempt-1) seconds, capped, times a random factor in [0.5, 1], until
# the window (hours after the event) ends.
WEBHOOK_RETRY_BASE_SECONDS = env_int("WEBHOOK_RETRY_BASE_SECONDS", 30)
WEBHOOK_RETRY_MAX_SECONDS = env_int("WEBHOOK_RETRY_MAX_SECONDS", 6 * 3600)
WEBHOOK_RETRY_WINDOW_HOURS = env_int("WEBHOOK_RETRY_WINDOW_HOURS", 72)
WEBHOOK_LOG_RETENTION_DAYS = env_int("WEBHOOK_LOG_RETENTION_DAYS", 30)
# Idempotency-Key (backend/services/idempotency.py): how long an answer is replayed, and how
# long a request waits for a concurrent one with the same key before a 409.
IDEMPOTENCY_KEY_TTL_HOURS = env_int("IDEMPOTENCY_KEY_TTL_HOURS", 24)
IDEMPOTENCY_WAIT_SECONDS = env_int("IDEMPOTENCY_WAIT_SECONDS", 10)
# A Stripe, S3 or OAuth call while the DB connection holds row locks (backend/integrations/
# lock_guard.py): "raise" (development, tests) or "log" (production).
INTEGRATION_LOCK_GUARD = env_str("INTEGRATION_LOCK_GUARD") or ("raise" if DEBUG else "log")
# Stored files no avatar or session image uses any more are deleted after this long.
ORPHAN_FILE_GRACE_MINUTES = env_int("ORPHAN_FILE_GRACE_MINUTES", 60)
# Peers whose X-Forwarded-For names the client (CIDRs, comma-separated): the proxy in front of
# gunicorn. Anyone else's header is their own claim and ignored. Default: the same host.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES") or ["127.0.0.1/32", "::1/128"]
for _network in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError as error:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES: {_network!r} is not an address") from error

# --- REST framework, JWT, docs --------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # simplejwt's, plus refusing access tokens ended by logout.
        "backend.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "backend.pagination.StandardPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    # DRF's parsers, with deeply nested JSON a 400 instead of a RecursionError.
    "DEFAULT_PARSER_CLASSES": [
        "backend.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": ["backend.renderers.ORJSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    # Atomic counters in the shared cache, per client address (backend/throttling.py).
    # Anonymous clients by address at the anon and the user rate, users by id at the user rate:
    # both counted in one round trip (AnonAndUserRateThrottle).
    "DEFAULT_THROTTLE_CLASSES": ["backend.throttling.AnonAndUserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON_RATE") or "300/minute",
        "user": env_str("THROTTLE_USER_RATE") or "1200/minute",
        "auth": env_str("THROTTLE_AUTH_RATE") or "30/minute",
        "uploads": env_str("THROTTLE_UPLOAD_RATE") or "30/minute",
        # Per user: writing reviews and reporting them (spam and brigading).
        "reviews": env_str("THROTTLE_REVIEW_RATE") or "20/hour",
        "review_reports": env_str("THROTTLE_REVIEW_REPORT_RATE") or "20/hour",
        "privacy_export": env_str("THROTTLE_EXPORT_RATE") or "10/hour",
    },
    # Behind nginx exactly one proxy sets X-Forwarded-For; 0 means use REMOTE_ADDR only. The
    # header is believed only from TRUSTED_PROXIES (below).
    "NUM_PROXIES": env_int("NUM_PROXIES", 0),
    "EXCEPTION_HANDLER": "backend.exceptions.api_exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
    "COERCE_DECIMAL_TO_STRING": True,
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_LIFETIME_MINUTES", 1440)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_LIFETIME_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SWAGGER_SETTINGS = {
    "SECURITY_DEFINITIONS": {
        "Bearer": {
            "type": "apiKey",
            "name": "Authorization",
            "in": "header",
            "description": "JWT access token: `Bearer <access>`",
        }
    },
    "USE_SESSION_AUTH": False,
    "DEFAULT_AUTO_SCHEMA_CLASS": "backend.schema.ApiAutoSchema",
    "DEFAULT_FIELD_INSPECTORS": [
        "backend.schema.ReadOnlyFieldInspector",
        "drf_yasg.inspectors.CamelCaseJSONFilter",
        "drf_yasg.inspectors.RecursiveFieldInspector",
        "drf_yasg.inspectors.ReferencingSerializerInspector",
        "drf_yasg.inspectors.ChoiceFieldInspector",
        "drf_yasg.inspectors.FileFieldInspector",
        "drf_yasg.inspectors.DictFieldInspector",
        "drf_yasg.inspectors.JSONFieldInspector",
        "drf_yasg.inspectors.HiddenFieldInspector",
        "drf_yasg.inspectors.RelatedFieldInspector",
        "drf_yasg.inspectors.SerializerMethodFieldInspector",
        "drf_yasg.inspectors.SimpleFieldInspector",
        "drf_yasg.inspectors.StringDefaultFieldInspector",
    ],
    "DEFAULT_INFO": "core.urls.api_info",
}

# --- CORS and CSRF --------------------------------------------------------------------------
CORS_ALLOWED_ORIGINS = env_list(
    "CORS_ALLOWED_ORIGINS", "http://localhost:3000,http://localhost:5173"
)
CORS_URLS_REGEX = r"^/api/.*$"
# What a browser client may read and send beyond the defaults: throttling's Retry-After, the
# request id README invites clients to send and log, the .ics file name, idempotent writes.
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID", "Content-Disposition"]
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-request-id", "idempotency-key")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
CSRF_FAILURE_VIEW = "backend.views.errors.csrf_failure"

# --- OAuth (social-auth-app-django) ---------------------------------------------------------
SOCIAL_AUTH_GOOGLE_OAUTH2_KEY = env_str("SOCIAL_AUTH_GOOGLE_OAUTH2_KEY")
SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET = env_str("SOCIAL_AUTH_GOOGLE_OAUTH2_SECRET")
SOCIAL_AUTH_GITHUB_KEY = env_str("SOCIAL_AUTH_GITHUB_KEY")
SOCIAL_AUTH_GITHUB_SECRET = env_str("SOCIAL_AUTH_GITHUB_SECRET")
SOCIAL_AUTH_GITHUB_SCOPE = ["read:user", "user:email"]
SOCIAL_AUTH_JSONFIELD_ENABLED = True
SOCIAL_AUTH_URL_NAMESPACE = "social"

# --- Stripe ---------------------------------------------------------------------------------
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE")
# Seconds to wait for Stripe's answer, and how many times the client retries a network error or
# a 5xx (with the same idempotency key). Refunds run while the booking's row lock is held.
STRIPE_TIMEOUT_SECONDS = env_int("STRIPE_TIMEOUT_SECONDS", 10)
STRIPE_MAX_NETWORK_RETRIES = env_int("STRIPE_MAX_NETWORK_RETRIES", 2)
# Connect (issue 16). Connect events (account.updated) may come to their own endpoint with its
# own signing secret (POST /api/payment/webhook/connect/); unset, that endpoint uses
# STRIPE_WEBHOOK_SECRET.
STRIPE_CONNECT_WEBHOOK_SECRET = env_str("STRIPE_CONNECT_WEBHOOK_SECRET")
# The platform's share of every paid booking, in percent (a creator's own rate, set by staff
# on their connected account, wins). Decimal, so 7.5 is exact.
try:
    PLATFORM_FEE_PERCENT = Decimal(env_str("PLATFORM_FEE_PERCENT") or "10")
except InvalidOperation as error:
    raise ImproperlyConfigured("PLATFORM_FEE_PERCENT must be a number.") from error
if not Decimal(0) <= PLATFORM_FEE_PERCENT <= Decimal(100):
    raise ImproperlyConfigured("PLATFORM_FEE_PERCENT must be between 0 and 100.")
# The creator's share is transferred this long after the session ended.
PAYOUT_DELAY_HOURS = env_int("PAYOUT_DELAY_HOURS", 24)
# How often the payout job looks for bookings due (seconds).
PAYOUT_JOB_SECONDS = env_int("PAYOUT_JOB_SECONDS", 300)

# --- Booking rules --------------------------------------------------------------------------
BOOKING_HOLD_MINUTES = env_int("BOOKING_HOLD_MINUTES", 15)
# The default refund policy's one tier (booking_rules.default_refund_policy).
CANCELLATION_WINDOW_HOURS = env_int("CANCELLATION_WINDOW_HOURS", 24)
# Unpaid pending bookings one user may hold at a time (409 too_many_holds beyond).
MAX_UNPAID_BOOKINGS = env_int("MAX_UNPAID_BOOKINGS", 3)
# How long a waitlist offer holds its seats before it passes to the next entry.
WAITLIST_OFFER_MINUTES = env_int("WAITLIST_OFFER_MINUTES", 120)

# --- Reminders and links in e-mails -----------------------------------------------------------
# Minutes before a session's start at which each confirmed attendee is reminded (each offset
# once per booking); the creator's "starting soon" goes out at the smallest one.
_reminder_offsets = env_list("REMINDER_OFFSETS_MINUTES") or ["1440", "60"]
try:
    REMINDER_OFFSETS_MINUTES = tuple(
        sorted({int(value) for value in _reminder_offsets}, reverse=True)
    )
except ValueError as _error:
    raise ImproperlyConfigured("REMINDER_OFFSETS_MINUTES: comma-separated minutes") from _error
if any(offset <= 0 for offset in REMINDER_OFFSETS_MINUTES):
    raise ImproperlyConfigured("REMINDER_OFFSETS_MINUTES: every offset must be > 0 minutes")
# Where the API is reached from outside (links to the calendar feed in e-mails, which have no
# request to build them from) and where the SPA lives (its booking page in e-mails).
SITE_URL = (env_str("SITE_URL") or "http://localhost:8000").rstrip("/")
FRONTEND_URL = (
    env_str("FRONTEND_URL") or (CORS_ALLOWED_ORIGINS[0] if CORS_ALLOWED_ORIGINS else SITE_URL)
).rstrip("/")

# --- Email ----------------------------------------------------------------------------------
# EMAIL_URL: console:// (default), locmem://, file:///dir, or smtp://user:pass@host:port
# (smtp+tls:// for STARTTLS, smtp+ssl:// for implicit TLS).
EMAIL_URL = env_str("EMAIL_URL") or "console://"
_email = urlsplit(EMAIL_URL)
if _email.scheme == "console":
    # In production the console is the log stream: there a message is only counted (recipients,
    # subject), never printed with names and addresses; check --deploy warns (backend.W002).
    EMAIL_BACKEND = (
        "django.core.mail.backends.console.EmailBackend"
        if DEBUG
        else "backend.mail.RedactedConsoleBackend"
    )
elif _email.scheme == "locmem":
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
elif _email.scheme == "file":
    # file:///path/to/dir: one file per message in that folder (a mail sink for tests).
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = unquote(_email.path)
elif _email.scheme in {"smtp", "smtp+tls", "smtp+ssl"}:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = _email.hostname or "localhost"
    EMAIL_PORT = _email.port or (465 if _email.scheme == "smtp+ssl" else 587)
    EMAIL_HOST_USER = unquote(_email.username or "")
    EMAIL_HOST_PASSWORD = unquote(_email.password or "")
    EMAIL_USE_TLS = _email.scheme == "smtp+tls"
    EMAIL_USE_SSL = _email.scheme == "smtp+ssl"
    EMAIL_TIMEOUT = 10
else:
    raise ImproperlyConfigured(f"EMAIL_URL has an unknown scheme: {_email.scheme!r}")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "Sessions Marketplace <no-reply@localhost>"

# --- Security (production) ------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    # nginx overwrites X-Forwarded-Proto, so trusting it cannot be spoofed by a client.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/health/(live/)?$"]
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {"()": "backend.logs.JsonFormatter"},
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "filters": {"request_context": {"()": "backend.logs.RequestContextFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["request_context"],
            # One JSON object per line; LOG_FORMAT=plain for a human at a terminal.
            "formatter": "plain" if env_str("LOG_FORMAT") == "plain" else "json",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL") or "INFO"},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The access log is ours (backend.access); Django's own duplicate is quieted.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
    },
}

SWAGGER_USE_COMPAT_RENDERERS = False
