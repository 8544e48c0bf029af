"""`Idempotency-Key` on POSTs (CONTRACT.md "Idempotent writes").

The first request with a key claims it: one committed row (user, key, hash of method, path and
body, `in_progress`), before any work starts. Its answer (status, body) is stored on that row
and replayed, byte for byte, to every later request with that key from that user within
IDEMPOTENCY_KEY_TTL_HOURS. A later request whose method, path or body differ is 422
`idempotency_key_reused`; one that arrives while the first is still running waits for its
answer (up to IDEMPOTENCY_WAIT_SECONDS, then 409 `idempotency_key_in_use`), so two concurrent
requests act once. A server error (5xx) is not stored: the key is released and a retry acts.

Keys are per user (the unique constraint), so one user's key never replays another's answer.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from backend.exceptions import Conflict, Unprocessable, ValidationFailed
from backend.models import IdempotencyKey, User

KEY_MAX_LENGTH = 255
# A claim this old without an answer belongs to a worker that died mid-request (SIGKILL, out of
# memory): the next request with the key takes it over. Too short, and a slow request that is
# still running has its key taken over: the action happens twice. Not derived from
# GUNICORN_TIMEOUT: with threads > 1 (gunicorn.conf.py's default, every deployment) gunicorn
# runs its gthread worker, whose timeout is the process's heartbeat, not a limit on one request
# (a request outlives it). Nothing kills a request at a set age; its steps are bounded
# (DB_LOCK_TIMEOUT_MS, DB_STATEMENT_TIMEOUT_MS per statement, the Stripe, S3 and mail timeouts)
# and a POST takes a few of them, far under this.
ABANDONED_AFTER = timedelta(minutes=5)
POLL_SECONDS = 0.05

Status = IdempotencyKey.Status


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    body: bytes
    content_type: str


def check_key(key: str) -> str:
    if not 1 <= len(key) <= KEY_MAX_LENGTH or not key.isprintable():
        raise ValidationFailed(
            f"Idempotency-Key must be 1 to {KEY_MAX_LENGTH} printable characters.",
            code="invalid_idempotency_key",
        )
    return key


def request_fingerprint(*, method: str, path: str, data: Any) -> str:
    """The same request: same method, path and body (as parsed, so key order and white space
    in the JSON do not matter)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def _expired_before(now: datetime) -> datetime:
    return now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotency_begin(*, user: User, key: str, request_hash: str) -> StoredAnswer | None:
    """None: this request owns the key, act and then call `idempotency_finish`. Otherwise the
    first request's answer to replay. Must not run inside a transaction (the claim commits
    first, so that concurrent requests see it)."""
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        now = timezone.now()
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(user=user, key=key, request_hash=request_hash)
            return None
        except IntegrityError:
            pass
        existing = IdempotencyKey.objects.filter(user=user, key=key).first()
        if existing is None:
            continue  # released meanwhile (a 5xx): claim it again
        stale = existing.created_at < _expired_before(now) or (
            existing.status == Status.IN_PROGRESS and existing.created_at < now - ABANDONED_AFTER
        )
        if stale:
            IdempotencyKey.objects.filter(pk=existing.pk, status=existing.status).delete()
            continue
        if existing.request_hash != request_hash:
            raise Unprocessable(
                "This Idempotency-Key was used for a different request; use a new key.",
                code="idempotency_key_reused",
            )
        if existing.status == Status.DONE:
            return StoredAnswer(
                status=existing.response_status or 200,
                body=bytes(existing.response_body),
                content_type=existing.response_content_type,
            )
        if time.monotonic() > deadline:
            raise Conflict(
                "A request with this Idempotency-Key is still being processed; retry shortly.",
                code="idempotency_key_in_use",
            )
        time.sleep(POLL_SECONDS)


def idempotency_finish(
    *, user: User, key: str, status: int, body: bytes, content_type: str
) -> None:
    """Stores the answer of the request that owns the key; a 5xx releases the key instead."""
    claimed = IdempotencyKey.objects.filter(user=user, key=key, status=Status.IN_PROGRESS)
    if status >= 500:
        claimed.delete()
        return
    claimed.update(
        status=Status.DONE,
        response_status=status,
        response_body=body,
        response_content_type=content_type,
        completed_at=timezone.now(),
    )


def idempotency_release(*, user: User, key: str) -> None:
    """The request crashed: a retry with the key may act."""
    IdempotencyKey.objects.filter(user=user, key=key, status=Status.IN_PROGRESS).delete()


def idempotency_keys_prune(*, now: datetime | None = None) -> int:
    """Deletes keys past IDEMPOTENCY_KEY_TTL_HOURS; returns how many."""
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lt=_expired_before(now or timezone.now())
    ).delete()
    return deleted
