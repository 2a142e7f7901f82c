"""``DatabaseWrapper`` of ``django_oauth_mtls.contrib.sqlite3`` (see the package docstring)."""

from __future__ import annotations

import logging
import sqlite3
import time
from typing import Any

from django.db.backends.sqlite3 import base as sqlite3_base
from django.db.utils import OperationalError

__all__ = ["FIRST_PAUSE", "LONGEST_PAUSE", "WRITE_LOCKING_MODES", "DatabaseWrapper"]

log = logging.getLogger("django_oauth_mtls.contrib.sqlite3")

#: Seconds between the first two tries of ``BEGIN``; the pause doubles after each try.
FIRST_PAUSE = 10e-6
#: The longest pause between two tries (SQLite's own busy handler starts at 1 ms).
LONGEST_PAUSE = 250e-6
#: Transaction modes whose ``BEGIN`` takes the write lock, the only ``BEGIN`` that can be busy.
WRITE_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})
#: ``sqlite3.connect``'s default ``timeout`` (seconds).
DEFAULT_TIMEOUT = 5.0


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

    #: The connection's busy timeout in milliseconds, read back after it is opened.
    busy_timeout_ms: int = int(DEFAULT_TIMEOUT * 1000)

    def get_new_connection(self, conn_params: Any) -> Any:
        conn = super().get_new_connection(conn_params)
        # Read back rather than parsed from OPTIONS: an init_command may have set it too.
        self.busy_timeout_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        return conn

    def _start_transaction_under_autocommit(self) -> None:
        self.ensure_connection()  # which sets transaction_mode (get_connection_params)
        # Neither name is in django-stubs; both are Django's own since 5.1.
        if self.transaction_mode not in WRITE_LOCKING_MODES:  # type: ignore[attr-defined]
            super()._start_transaction_under_autocommit()  # type: ignore[misc]
            return
        raw = self.connection  # not through Django's cursor: no query is logged or counted
        raw.execute("PRAGMA busy_timeout = 0")  # SQLITE_BUSY at once, paced below instead
        try:
            self._begin_in_steps(self.busy_timeout_ms / 1000)
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")

    def _begin_in_steps(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pause = FIRST_PAUSE
        tries = 0
        while True:
            tries += 1
            try:
                super()._start_transaction_under_autocommit()  # type: ignore[misc]
                return
            except OperationalError as error:
                if not is_busy(error):
                    raise
                if time.monotonic() + pause > deadline:
                    log.warning(
                        "SQLite write lock not acquired: BEGIN %s busy for the whole "
                        "timeout of %.3f s (%d tries; database %s); another connection holds "
                        "a write transaction open",
                        self.transaction_mode,  # type: ignore[attr-defined]
                        timeout,
                        tries,
                        self.settings_dict.get("NAME"),
                    )
                    raise
            time.sleep(pause)
            pause = min(pause * 2, LONGEST_PAUSE)
