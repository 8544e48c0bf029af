"""The rule: no call to Stripe, S3 or an OAuth provider while the connection holds a row lock.

A network call inside a transaction that has locked rows keeps those rows locked for as long as
the provider takes (a stalled Stripe held a session's row for a minute in the outside review).
Every gateway function calls `assert_no_row_locks()` first.

How it knows, simply: an execute wrapper on every connection (installed by backend.apps) notes
each `SELECT ... FOR UPDATE / FOR SHARE` run inside a transaction, with the outermost atomic
block it belongs to and, on PostgreSQL, the transaction id. The lock counts as held while that
same block (the same savepoint, in tests) and that same transaction are still open; it is held
until the transaction ends, also after the inner `atomic()` that took it has exited. Blocks
opened by Django's TestCase around each test are ignored, so a test's own transaction never
counts. SQLite has no row locks (Django emits no FOR UPDATE there): the guard never fires.

INTEGRATION_LOCK_GUARD: `raise` (default with DEBUG, hence in tests) raises LockHeldError;
`log` (default in production) logs an error and lets the call go on.
"""

import logging
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper

logger = logging.getLogger(__name__)

LOCKING_SQL = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+UPDATE|UPDATE|KEY\s+SHARE|SHARE)\b", re.I)
MARK = "_row_locks_taken_in"


class LockHeldError(RuntimeError):
    """A provider was about to be called while this connection holds row locks."""


def _outermost_real_block(connection: BaseDatabaseWrapper) -> tuple[Any, str | None] | None:
    """The outermost atomic block not opened by a TestCase, with its savepoint id."""
    for index, block in enumerate(connection.atomic_blocks):
        if not getattr(block, "_from_testcase", False):
            # The outermost block has no savepoint; block i > 0 has savepoint_ids[i - 1].
            savepoint = connection.savepoint_ids[index - 1] if index else None
            return block, savepoint
    return None


def _transaction_id(connection: BaseDatabaseWrapper) -> int | None:
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current_if_assigned()")
        return cursor.fetchone()[0]


def track_row_locks(
    execute: Callable[..., Any], sql: str, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    result = execute(sql, params, many, context)
    connection = context["connection"]
    if connection.in_atomic_block and isinstance(sql, str) and LOCKING_SQL.search(sql):
        block = _outermost_real_block(connection)
        if block is not None:
            setattr(connection, MARK, (*block, _transaction_id(connection)))
    return result


def install(connection: BaseDatabaseWrapper, **_kwargs: object) -> None:
    """connection_created receiver: track this connection's row locks."""
    if track_row_locks not in connection.execute_wrappers:
        connection.execute_wrappers.append(track_row_locks)


def holds_row_locks(connection: BaseDatabaseWrapper) -> bool:
    mark = getattr(connection, MARK, None)
    if mark is None or not connection.in_atomic_block:
        return False
    block = _outermost_real_block(connection)
    if block is None or block[0] is not mark[0] or block[1] != mark[1]:
        return False
    return _transaction_id(connection) == mark[2]


def assert_no_row_locks(action: str) -> None:
    for connection in connections.all(initialized_only=True):
        if holds_row_locks(connection):
            message = f"{action} called while the database connection holds row locks"
            if settings.INTEGRATION_LOCK_GUARD == "raise":
                raise LockHeldError(message)
            logger.error(message)
            return
