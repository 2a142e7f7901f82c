"""An experiment on SQLite's write lock (issue #16), for the benchmark project only: writers wait
in a queue instead of SQLite's busy handler.

Opt-in with ``PEERBENCH_OURS_WRITER_QUEUE=1``. SQLite lets one transaction write at a time; a
writer that finds the lock taken sleeps 1, 2, 5, 10 … ms in SQLite's busy handler before it tries
again, even when the lock frees 0.3 ms later. Here each write transaction (Django's ``BEGIN
IMMEDIATE`` … ``COMMIT``/``ROLLBACK``) first takes an exclusive ``flock`` on a file beside the
database, so the kernel wakes the next writer the moment the last one commits.

It is not part of django-oauth-mtls and not a recommendation: it changes every write transaction
of the process (a database backend of its own), it has no timeout (a writer that hangs holds
the queue), and production runs PostgreSQL, whose locks are per row. It exists so that the
number in docs/performance.md ("what SQLite's busy handler costs") can be measured again.
"""

from __future__ import annotations

import fcntl
import os
import threading
from typing import Any

from django.db.backends.sqlite3.base import DatabaseWrapper

_begin = getattr(DatabaseWrapper, "_start_transaction_under_autocommit")  # noqa: B009
_commit = getattr(DatabaseWrapper, "_commit")  # noqa: B009
_rollback = getattr(DatabaseWrapper, "_rollback")  # noqa: B009
_close = getattr(DatabaseWrapper, "_close")  # noqa: B009
#: flock belongs to an open file description: the threads of one process share it, so they
#: queue on a lock of their own first. Opened per process (a fork must not share it).
_state: dict[str, Any] = {"pid": None, "fd": None, "lock": threading.Lock(), "path": None}


def _fd(path: str) -> int:
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), fd=os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        _state["lock"] = threading.Lock()
    fd: int = _state["fd"]
    return fd


def _queued_begin(self: Any) -> None:
    fd = _fd(_state["path"] or f"{self.settings_dict['NAME']}.writer-queue")
    _state["lock"].acquire()
    fcntl.flock(fd, fcntl.LOCK_EX)
    self._writer_queue_held = True
    try:
        _begin(self)
    except BaseException:
        _release(self)
        raise


def _release(self: Any) -> None:
    if getattr(self, "_writer_queue_held", False):
        self._writer_queue_held = False
        fcntl.flock(_state["fd"], fcntl.LOCK_UN)
        _state["lock"].release()


def _then_release(method: Any) -> Any:
    def wrapped(self: Any, *args: Any) -> Any:
        try:
            return method(self, *args)
        finally:
            _release(self)

    return wrapped


def install(path: str | None = None) -> None:
    """Queue this process's write transactions on ``path`` (default: beside the database)."""
    _state["path"] = path
    setattr(DatabaseWrapper, "_start_transaction_under_autocommit", _queued_begin)  # noqa: B010
    setattr(DatabaseWrapper, "_commit", _then_release(_commit))  # noqa: B010
    setattr(DatabaseWrapper, "_rollback", _then_release(_rollback))  # noqa: B010
    setattr(DatabaseWrapper, "_close", _then_release(_close))  # noqa: B010
