"""Real threads for race tests: started together, one database connection each.

Django gives every thread its own connection; a thread that ends without closing it leaves a
PostgreSQL backend behind, and `transaction=True` tests then cannot flush the database. So
every worker closes its connection when it is done, whatever happened.
"""

import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import pytest
from django.db import connection

T = TypeVar("T")

BARRIER_TIMEOUT_SECONDS = 10
JOIN_TIMEOUT_SECONDS = 60


def _set_lock_timeout(lock_timeout: str | None) -> None:
    if lock_timeout is not None and connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [lock_timeout])


def run_concurrently(
    tasks: Sequence[Callable[[], T]],
    *,
    max_workers: int | None = None,
    start_together: bool = True,
    lock_timeout: str | None = None,
    join_timeout: float = JOIN_TIMEOUT_SECONDS,
    raise_errors: bool = False,
) -> list[T | BaseException]:
    """Runs the tasks on threads and returns their results in the order of `tasks`.

    One thread per task unless `max_workers` caps it (then each thread takes the next task
    until none is left). With `start_together` the threads wait for each other behind a
    barrier, so the first tasks start at the same instant. `lock_timeout` (PostgreSQL, e.g.
    "30s") keeps a long queue on one row lock on a loaded machine from turning into a lock
    timeout. A task's exception is its result, for the test to inspect, unless
    `raise_errors`: then the first one is raised once every thread has finished. A thread
    still running after `join_timeout` seconds fails the test.
    """
    workers = min(max_workers or len(tasks), len(tasks))
    pending: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(tasks)):
        pending.put(index)
    barrier = threading.Barrier(workers) if start_together and workers > 1 else None
    results: list[Any] = [None] * len(tasks)

    def worker() -> None:
        try:
            _set_lock_timeout(lock_timeout)
            if barrier is not None:
                barrier.wait(timeout=BARRIER_TIMEOUT_SECONDS)
            while True:
                try:
                    index = pending.get_nowait()
                except queue.Empty:
                    return
                try:
                    results[index] = tasks[index]()
                except BaseException as error:  # the test inspects what each task got
                    results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(join_timeout)
    hung = sum(thread.is_alive() for thread in threads)
    if hung:
        raise AssertionError(f"{hung} of {workers} threads still running after {join_timeout}s")
    if raise_errors:
        for result in results:
            if isinstance(result, BaseException):
                raise result
    return results


def wait_after(
    monkeypatch: pytest.MonkeyPatch,
    owner: object,
    name: str,
    *,
    parties: int,
    timeout: float = BARRIER_TIMEOUT_SECONDS,
) -> threading.Barrier:
    """Patches `owner.name` so that every call runs the original, then waits until `parties`
    calls have got that far: the worst interleaving at that point, every time.

    For races that threads started together would hit only sometimes, e.g. two requests that
    both pass an unlocked check before either takes the lock.
    """
    original = getattr(owner, name)
    barrier = threading.Barrier(parties)

    def original_then_wait(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        barrier.wait(timeout=timeout)
        return result

    monkeypatch.setattr(owner, name, original_then_wait)
    return barrier


class Background(Generic[T]):
    """A task running on its own thread (and connection) while the test goes on."""

    def __init__(self, task: Callable[[], T]):
        self._outcome: list[Any] = []
        self._thread = threading.Thread(target=self._run, args=(task,), daemon=True)
        self._thread.start()

    def _run(self, task: Callable[[], T]) -> None:
        try:
            self._outcome.append(task())
        except BaseException as error:
            self._outcome.append(error)
        finally:
            connection.close()

    def result(self, timeout: float = JOIN_TIMEOUT_SECONDS) -> T:
        """Waits for the task; returns its result or raises its exception."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"background task still running after {timeout}s")
        (outcome,) = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def in_background(task: Callable[[], T]) -> Background[T]:
    """Starts `task` on a thread now; `.result()` joins it."""
    return Background(task)
