"""Rendered catalog pages in the shared cache, for anonymous readers; ETags for everyone.

An anonymous catalog page (the list under any query string, one session) is the same bytes for
every anonymous reader, so it is rendered once and kept in Django's cache (Redis in production:
every instance shares it) for CATALOG_CACHE_SECONDS. Signed-in readers see viewer-specific
fields (`meeting_url`) and are never served from, nor stored in, that cache.

Invalidation is by version tokens, not by deleting keys: a stored page carries the tokens that
were current when its rendering began, and is used only while they still are. Any change to a
session or its seats replaces the catalog's token and that session's (`catalog_changed`, which
`lock_session` calls: every seat change takes that lock), a change to what catalog entries show
of creators (names, avatars, ratings) replaces the catalog's and the creators' token
(`creators_changed`). Tokens are replaced when the transaction commits, and a reader reads them
before it reads any row: a page rendered from the snapshot before the commit was stored under a
token the commit retires. What changes without a write (a hold running out) is bounded by the TTL,
and a CDN or browser is told to keep a page only for what is left of it.

The page total (the list's COUNT, which grows with the catalog) is kept the same way for every
reader, signed in or not (`cached_total`): under the catalog's token, for CATALOG_CACHE_SECONDS.

A cache that fails (Redis down) never fails the request: the page is rendered as without one.
"""

import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse, HttpResponseNotModified
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_etags

logger = logging.getLogger(__name__)

CATALOG_VERSION = "catalog:v:list"
CREATORS_VERSION = "catalog:v:creators"
# Version tokens outlive any page by far; one that expired is recreated with a fresh value.
VERSION_TIMEOUT = 24 * 3600


def _session_version(session_id: int) -> str:
    return f"catalog:v:session:{session_id}"


def _new_token() -> str:
    return uuid.uuid4().hex


# --- invalidation ------------------------------------------------------------------------------


class _PendingBump:
    """One on-commit callback per transaction, however many sessions it touches."""

    def __init__(self) -> None:
        self.session_ids: set[int] = set()
        self.creators = False
        self.done = False

    def __call__(self) -> None:
        # Marked, so a caller never adds to a bump that already ran (a test's captured
        # on-commit callbacks stay in the connection's list after running).
        self.done = True
        _replace_tokens(self.session_ids, creators=self.creators)


def _replace_tokens(session_ids, *, creators: bool) -> None:
    tokens = {CATALOG_VERSION: _new_token()}
    tokens.update({_session_version(pk): _new_token() for pk in session_ids})
    if creators:
        tokens[CREATORS_VERSION] = _new_token()
    try:
        cache.set_many(tokens, timeout=VERSION_TIMEOUT)
    except Exception:  # the cache is down: pages it may still hold die with their TTL
        logger.warning("catalog cache: could not replace version tokens", exc_info=True)


def _retire_on_commit(*, session_id: int | None = None, creators: bool = False) -> None:
    if not enabled():
        # This instance stores no page; one that does keeps its own for the TTL at most.
        return
    connection = transaction.get_connection()
    if not connection.in_atomic_block:  # already committed
        _replace_tokens([] if session_id is None else [session_id], creators=creators)
        return
    # Callbacks of a rolled-back transaction are dropped by Django along with this one, so a
    # pending bump found here belongs to the transaction still open (to an outer block's at
    # worst, which commits later: a token retired too many, never one too few).
    bump = next(
        (
            callback
            for _savepoints, callback, _robust in connection.run_on_commit
            if isinstance(callback, _PendingBump) and not callback.done
        ),
        None,
    )
    if bump is None:
        bump = _PendingBump()
        transaction.on_commit(bump, robust=True)
    if session_id is not None:
        bump.session_ids.add(session_id)
    bump.creators = bump.creators or creators


def catalog_changed(*, session_id: int | None) -> None:
    """A session, or its seats, change in this transaction: pages showing it are stale once
    it commits. None: only the lists changed (sessions were added)."""
    _retire_on_commit(session_id=session_id)


def creators_changed() -> None:
    """What entries show of a creator (name, avatar, rating) changed in this transaction, or
    anything else that many sessions' pages show: every list and detail page is stale."""
    _retire_on_commit(creators=True)


# --- page totals -------------------------------------------------------------------------------


def cached_total(query: Hashable, count: Callable[[], int]) -> int:
    """The catalog list's total for `query` (its filters and their values), from the cache
    while the catalog's version token is the one read before counting, `count()` otherwise.

    A total is the same for every reader, so it is shared by signed-in ones too, and a
    `Cache-Control: no-cache` request (which skips the page cache) still uses it: any session
    or seat change retires it when it commits, and what changes without a write (a session
    starting, a hold running out) shows within CATALOG_CACHE_SECONDS. The page's rows are
    always read fresh.
    """
    if not enabled():
        return count()
    key = "catalog:total:" + hashlib.blake2b(repr(query).encode(), digest_size=20).hexdigest()
    try:
        found = cache.get_many([CATALOG_VERSION, key])
        if CATALOG_VERSION not in found:
            cache.add(CATALOG_VERSION, _new_token(), timeout=VERSION_TIMEOUT)
            found[CATALOG_VERSION] = cache.get(CATALOG_VERSION)
    except Exception:
        logger.warning("catalog cache: unavailable, counting uncached", exc_info=True)
        return count()
    token = str(found[CATALOG_VERSION])
    stored = found.get(key)
    if isinstance(stored, tuple) and len(stored) == 2 and stored[0] == token:
        return stored[1]
    total = count()
    try:
        cache.set(key, (token, total), timeout=settings.CATALOG_CACHE_SECONDS)
    except Exception:
        logger.warning("catalog cache: could not store a total", exc_info=True)
    return total


# --- pages -------------------------------------------------------------------------------------


def normalised_query(query_string: str) -> str:
    """The query string as DRF writes its `next`/`previous` links: parameters sorted by name,
    values in their order. Two spellings of one query share a page, and its links are the
    same bytes either way."""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    by_name: dict[str, list[str]] = {}
    for name, value in pairs:
        by_name.setdefault(name, []).append(value)
    return urlencode(sorted(by_name.items()), doseq=True)


@dataclass(frozen=True)
class CachedPage:
    tokens: tuple[str, ...]
    etag: str
    body: bytes
    content_type: str
    stored_at: float


@dataclass
class Slot:
    """Where one anonymous page lives, and the version tokens read before rendering it."""

    key: str
    tokens: tuple[str, ...]
    page: CachedPage | None

    def store(self, *, body: bytes, etag: str, content_type: str) -> None:
        page = CachedPage(self.tokens, etag, body, content_type, time.time())
        try:
            cache.set(self.key, page, timeout=settings.CATALOG_CACHE_SECONDS)
        except Exception:
            logger.warning("catalog cache: could not store a page", exc_info=True)


def enabled() -> bool:
    return settings.CATALOG_CACHE_SECONDS > 0


def is_anonymous_json(request) -> bool:
    """Anonymous, asking for JSON, and not asking to skip caches (a hard reload)."""
    if request.user.is_authenticated or request.auth is not None:
        return False
    if getattr(request.accepted_renderer, "format", None) != "json":
        return False
    no_cache = request.headers.get("Cache-Control", "") + request.headers.get("Pragma", "")
    return "no-cache" not in no_cache.lower()


def open_slot(request, *, session_id: int | None = None) -> Slot | None:
    """The anonymous page for this request, with its stored copy if still current.

    None when the page is not for the shared cache (signed in, not JSON, cache off or down).
    Must be called before the page's rows are read (see the module docstring).
    """
    if not enabled() or not is_anonymous_json(request):
        return None
    if session_id is None:
        version_keys = [CATALOG_VERSION]
        what = f"list?{normalised_query(request.META.get('QUERY_STRING', ''))}"
    else:
        version_keys = [_session_version(session_id), CREATORS_VERSION]
        what = f"session:{session_id}"
    # Absolute links in the body (next/previous, image URLs) follow the scheme and host.
    identity = f"{request.scheme}://{request.get_host()}|{request.accepted_media_type}|{what}"
    key = "catalog:page:" + hashlib.blake2b(identity.encode(), digest_size=20).hexdigest()
    try:
        found = cache.get_many([*version_keys, key])
        missing = [name for name in version_keys if name not in found]
        if missing:
            for name in missing:
                cache.add(name, _new_token(), timeout=VERSION_TIMEOUT)
            found.update(cache.get_many(missing))
    except Exception:
        logger.warning("catalog cache: unavailable, rendering uncached", exc_info=True)
        return None
    tokens = tuple(str(found.get(name)) for name in version_keys)
    page = found.get(key)
    if not isinstance(page, CachedPage) or page.tokens != tokens:
        page = None
    return Slot(key=key, tokens=tokens, page=page)


def _etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def _not_modified(request, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    wanted = parse_etags(header)
    # Weak comparison (RFC 9110 13.1.2), as If-None-Match asks.
    return "*" in wanted or etag.removeprefix("W/") in {tag.removeprefix("W/") for tag in wanted}


def _headers(response: HttpResponse, *, etag: str, public_for: int | None) -> HttpResponse:
    response["ETag"] = etag
    if public_for is None:
        # Viewer-specific: a browser may keep it, but asks again (ETag) each time; no CDN.
        response["Cache-Control"] = "private, no-cache"
    else:
        response["Cache-Control"] = f"public, max-age={public_for}"
    # A shared cache must not give an anonymous page to a signed-in reader, nor the reverse.
    patch_vary_headers(response, ["Authorization"])
    return response


def _answer(request, response: HttpResponse, *, etag: str, public_for: int | None):
    if _not_modified(request, etag):
        response = HttpResponseNotModified()
    return _headers(response, etag=etag, public_for=public_for)


def cached_answer(request, slot: Slot | None) -> HttpResponse | None:
    """The stored page (or a 304) when the slot has a current one."""
    if slot is None or slot.page is None:
        return None
    page = slot.page
    left = settings.CATALOG_CACHE_SECONDS - (time.time() - page.stored_at)
    response = HttpResponse(page.body, content_type=page.content_type)
    return _answer(request, response, etag=page.etag, public_for=max(0, int(left)))


def rendered_answer(request, response, slot: Slot | None):
    """A freshly rendered DRF response with its ETag and Cache-Control (a 304 when the
    client's copy matches), stored in the slot when there is one and it is a 200."""
    if response.status_code != 200:
        return response
    response.render()
    body = bytes(response.content)
    etag = _etag_of(body)
    public_for = None
    if slot is not None:
        slot.store(body=body, etag=etag, content_type=response["Content-Type"])
        public_for = settings.CATALOG_CACHE_SECONDS
    elif not request.user.is_authenticated:
        # Anonymous but not cached here (cache off, not JSON): still the same for everyone.
        public_for = settings.CATALOG_CACHE_SECONDS
    return _answer(request, response, etag=etag, public_for=public_for)
