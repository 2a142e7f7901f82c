"""Measure SQLite's write lock in a running server (issue #16): per write transaction, the
wait for ``BEGIN IMMEDIATE`` (the lock) and the time from there to ``COMMIT`` (the hold).

Opt-in with ``PEERBENCH_OURS_LOCKPROBE=DIR``: each worker process writes one line to
``DIR/lockprobe.<pid>`` when it exits, e.g. ``n=3673 hold p50=0.406 … mean=0.585 | wait p50=0.028
… mean=1.188 ms``. A measuring tool for the benchmark project only; it wraps two methods of
Django's SQLite backend in this process.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from pathlib import Path

from django.db.backends.sqlite3.base import DatabaseWrapper

_waits: list[float] = []
_holds: list[float] = []
_local = threading.local()
_begin = getattr(DatabaseWrapper, "_start_transaction_under_autocommit")  # noqa: B009
_commit = getattr(DatabaseWrapper, "_commit")  # noqa: B009


def _timed_begin(self: DatabaseWrapper) -> None:
    started = time.perf_counter()
    _begin(self)
    _local.locked = time.perf_counter()
    _waits.append(_local.locked - started)


def _timed_commit(self: DatabaseWrapper) -> None:
    _commit(self)
    locked = getattr(_local, "locked", None)
    if locked is not None:
        _holds.append(time.perf_counter() - locked)
        _local.locked = None


def _summary(values: list[float]) -> str:
    ordered = sorted(values)

    def at(share: float) -> float:
        return ordered[int(share * (len(ordered) - 1))] * 1000

    mean = sum(ordered) / len(ordered) * 1000
    return f"p50={at(0.5):.3f} p90={at(0.9):.3f} p99={at(0.99):.3f} mean={mean:.3f}"


def write(folder: str) -> Path | None:
    """This process's line, in ``folder/lockprobe.<pid>`` (nothing if it wrote nothing)."""
    if not _holds:
        return None
    path = Path(folder, f"lockprobe.{os.getpid()}")
    path.write_text(f"n={len(_holds)} hold {_summary(_holds)} | wait {_summary(_waits)} ms\n")
    return path


def install(folder: str) -> None:
    setattr(DatabaseWrapper, "_start_transaction_under_autocommit", _timed_begin)  # noqa: B010
    setattr(DatabaseWrapper, "_commit", _timed_commit)  # noqa: B010
    atexit.register(write, folder)
