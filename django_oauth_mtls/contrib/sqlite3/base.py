"""``DatabaseWrapper`` of ``django_oauth_mtls.contrib.sqlite3`` (see the package docstring)."""

from __future__ import annotations

import contextlib
import functools
import logging
import sqlite3
from collections.abc import Callable
from time import monotonic, sleep
from typing import Any

from django.db.backends.sqlite3 import base as sqlite3_base
from django.db.utils import OperationalError

__all__ = [
    "CACHED_QUERIES",
    "CACHED_QUERY_CHARS",
    "FIRST_PAUSE",
    "LONGEST_PAUSE",
    "STEPPING_FOR",
    "WRITE_LOCKING_MODES",
    "DatabaseWrapper",
    "SQLiteCursorWrapper",
    "is_busy",
]

log = logging.getLogger("django_oauth_mtls.contrib.sqlite3")

#: Seconds between the first two tries of ``BEGIN``; the pause doubles after each try.
FIRST_PAUSE = 10e-6
#: The longest pause between two tries (SQLite's own busy handler starts at 1 ms).
LONGEST_PAUSE = 250e-6
#: How long ``BEGIN`` is tried in short steps (a token request holds the lock about 0.3 ms);
#: after that SQLite's busy handler waits out the rest of the timeout, sleeping, not polling,
#: behind a long transaction (a migration, ``cleartokens``).
STEPPING_FOR = 0.005
#: Transaction modes whose ``BEGIN`` takes the write lock, the only ``BEGIN`` that can be busy.
WRITE_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
#: How many distinct statements keep their placeholder conversion (an LRU, per process).
CACHED_QUERIES = 512
#: Longer statements (a bulk insert of many rows) are converted each time, never kept.
CACHED_QUERY_CHARS = 4096


@functools.lru_cache(maxsize=CACHED_QUERIES)
def _qmark(query: str) -> str:
    # Django's own conversion; it does not use ``self``.
    return sqlite3_base.SQLiteCursorWrapper.convert_query(None, query)  # type: ignore[arg-type]


class SQLiteCursorWrapper(sqlite3_base.SQLiteCursorWrapper):
    """Django's cursor, whose ``"format"`` to ``"qmark"`` placeholder conversion (a regular
    expression over the whole statement, at every ``execute``) is kept per statement: the
    token endpoint runs the same few statements on every request (issue #16)."""

    def convert_query(self, query: str, *, param_names: list[str] | None = None) -> str:
        if param_names is None and len(query) <= CACHED_QUERY_CHARS:
            return _qmark(query)
        return super().convert_query(query, param_names=param_names)


def is_busy(error: BaseException) -> bool:
    """Whether Django's ``OperationalError`` wraps SQLite's ``SQLITE_BUSY`` (any extended code:
    another writer, a checkpoint, WAL recovery). ``SQLITE_LOCKED`` (shared-cache in-memory
    databases) is not retried, as Django's backend does not retry it."""
    cause = error.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    return (
        isinstance(cause, sqlite3.OperationalError)
        and code is not None
        and (code & 0xFF) == sqlite3.SQLITE_BUSY
    )


class DatabaseWrapper(sqlite3_base.DatabaseWrapper):
    """Django's SQLite ``DatabaseWrapper``; ``BEGIN IMMEDIATE`` waits in short steps."""

    def create_cursor(self, name: str | None = None) -> Any:
        return self.connection.cursor(factory=SQLiteCursorWrapper)

    def _start_transaction_under_autocommit(self) -> None:
        self.ensure_connection()  # which sets transaction_mode (get_connection_params)
        # Neither name is in django-stubs; both are Django's own since 5.1.
        mode = self.transaction_mode  # type: ignore[attr-defined]
        if mode not in WRITE_LOCKING_MODES:
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        raw = self.connection  # the PRAGMAs and retries are not logged or counted as queries
        with self.wrap_database_errors:
            # Read each time: OPTIONS["timeout"], init_command, connection_created or the
            # project's own PRAGMA, whichever set it last.
            timeout_ms = int(raw.execute("PRAGMA busy_timeout").fetchone()[0])
            raw.execute("PRAGMA busy_timeout = 0")  # SQLITE_BUSY at once, paced below instead
        try:
            self._begin_in_steps(raw, mode, timeout_ms)
        except BaseException:
            with contextlib.suppress(Exception):
                raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            raise
        try:
            with self.wrap_database_errors:
                raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        except BaseException:
            # Never leave SQLite in a transaction that Django does not know it is in.
            with contextlib.suppress(Exception):
                raw.execute("ROLLBACK")
            raise

    def _busy(self, attempt: Callable[[], Any]) -> OperationalError | None:
        """Run ``attempt``; ``None`` when it succeeded, SQLite's busy error when it was busy.
        Any other error is raised."""
        try:
            with self.wrap_database_errors:
                attempt()
        except OperationalError as error:
            if not is_busy(error):
                raise
            return error
        return None

    def _begin_in_steps(self, raw: Any, mode: str, timeout_ms: int) -> None:
        start = monotonic()
        timeout = timeout_ms / 1000
        # Django logs this first BEGIN, as its own backend does; the retries go to SQLite.
        busy = self._busy(super()._start_transaction_under_autocommit)  # type: ignore[misc]
        if busy is None:
            return
        tries, pause, statement = 1, FIRST_PAUSE, f"BEGIN {mode}"
        while monotonic() - start + pause <= min(STEPPING_FOR, timeout):
            sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
            tries += 1
            if (busy := self._busy(lambda: raw.execute(statement))) is None:
                return
        left_ms = int((timeout - (monotonic() - start)) * 1000)
        if left_ms > 0:  # the rest of the timeout in SQLite's own busy handler
            tries += 1

            def wait_in_sqlite() -> None:
                raw.execute(f"PRAGMA busy_timeout = {left_ms}")
                raw.execute(statement)

            if (busy := self._busy(wait_in_sqlite)) is None:
                return
        log.warning(
            "SQLite write lock not acquired: BEGIN %s busy for the whole timeout of %.3f s "
            "(%d tries; database %s); another connection holds a write transaction open",
            mode,
            timeout,
            tries,
            self.settings_dict.get("NAME"),
        )
        raise busy
