"""``django_oauth_mtls.contrib.sqlite3`` (issue #16): ``BEGIN IMMEDIATE`` waits for SQLite's
write lock in short steps instead of SQLite's 1, 2, 5 … ms busy handler, and nothing else
changes: the same error after the same timeout, the busy timeout kept for every other statement,
no retry of anything but ``SQLITE_BUSY``, and no lost or doubled write across processes.

Each test opens its own database file through a ``ConnectionHandler`` of its own (the project's
test database is left alone); another connection holds the write lock with plain ``sqlite3``.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.utils import ConnectionHandler, OperationalError
from django.test.utils import CaptureQueriesContext

from django_oauth_mtls.contrib.sqlite3 import base
from django_oauth_mtls.contrib.sqlite3.checks import check_sqlite_backend

ENGINE = "django_oauth_mtls.contrib.sqlite3"


@pytest.fixture(autouse=True)
def _own_files_only(django_db_blocker: Any) -> Iterator[None]:
    """No test database: each test opens files of its own, outside Django's test case."""
    with django_db_blocker.unblock():
        yield


@pytest.fixture
def handler(monkeypatch: Any) -> Iterator[Any]:
    """``handler(path, **OPTIONS)``: Django's connections with alias ``w`` on that file, so
    that ``transaction.atomic(using="w")`` runs as in a project."""

    def add(path: Path, **options: Any) -> Any:
        if "transaction_mode" not in options:
            options["transaction_mode"] = "IMMEDIATE"
        if options["transaction_mode"] is None:
            del options["transaction_mode"]
        database = {"ENGINE": ENGINE, "NAME": str(path), "OPTIONS": options}
        filled = ConnectionHandler({"default": database}).settings["default"]
        monkeypatch.setitem(connections.settings, "w", filled)
        return connections

    yield add
    connections["w"].close()
    del connections["w"]


@pytest.fixture(params=["WAL", "DELETE"])
def db_file(tmp_path: Path, request: Any) -> Path:
    """A database file in WAL mode, and in SQLite's default rollback journal (the example's)."""
    path = tmp_path / "db.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute(f"PRAGMA journal_mode={request.param}")
    raw.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    raw.execute("INSERT INTO t (id, n) VALUES (1, 0)")
    raw.close()
    return path


@pytest.fixture
def holder(db_file: Path) -> Iterator[sqlite3.Connection]:
    """Another connection, in a write transaction until the test commits it."""
    raw = sqlite3.connect(db_file, isolation_level=None, check_same_thread=False)
    raw.execute("BEGIN IMMEDIATE")
    raw.execute("UPDATE t SET n = n + 100 WHERE id = 1")
    yield raw
    if raw.in_transaction:
        raw.execute("ROLLBACK")
    raw.close()


class Pauses:
    """Records the backend's pauses and lets the test act after the n-th one. The backend's
    clock is the sum of its pauses, so which try comes when does not depend on the machine."""

    def __init__(self, monkeypatch: Any, after: int = 0, then: Any = None) -> None:
        self.seen: list[float] = []
        self.after, self.then = after, then
        self.reached = threading.Event()

        def sleep(seconds: float) -> None:
            self.seen.append(seconds)
            if len(self.seen) == self.after:
                if self.then is not None:
                    self.then()
                self.reached.set()
            time.sleep(seconds)

        monkeypatch.setattr(base, "sleep", sleep)
        monkeypatch.setattr(base, "monotonic", lambda: sum(self.seen))


#: Pauses within STEPPING_FOR (5 ms): 10, 20, 40, 80, 160 µs, then 18 × 250 µs (4.81 ms).
STEPS = 23


def test_the_schedule_fills_the_stepping_window() -> None:
    pauses = [base.FIRST_PAUSE * 2**i for i in range(5)] + [base.LONGEST_PAUSE] * (STEPS - 5)
    assert pauses[4] < base.LONGEST_PAUSE < pauses[4] * 2
    assert sum(pauses) <= base.STEPPING_FOR < sum(pauses) + base.LONGEST_PAUSE


def busy_timeout() -> int:
    return int(connections["w"].connection.execute("PRAGMA busy_timeout").fetchone()[0])


@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE"])
def test_begin_waits_for_the_writer_in_short_steps_then_writes(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any, mode: str
) -> None:
    pauses = Pauses(monkeypatch, after=8, then=lambda: holder.execute("COMMIT"))
    handler(db_file, timeout=30, transaction_mode=mode)
    with (
        CaptureQueriesContext(connections["w"]) as queries,
        transaction.atomic(using="w"),
        connections["w"].cursor() as cursor,
    ):
        cursor.execute("UPDATE t SET n = n + 1 WHERE id = 1")
    # eight busy tries while the other transaction held the lock, the ninth got it
    assert pauses.seen == [10e-6, 20e-6, 40e-6, 80e-6, 160e-6, 250e-6, 250e-6, 250e-6]
    # Django logs (and assertNumQueries counts) one BEGIN, as with its own backend
    assert [q["sql"] for q in queries.captured_queries][:1] == [f"BEGIN {mode}"]
    assert sum(q["sql"].startswith("BEGIN") for q in queries.captured_queries) == 1
    row = sqlite3.connect(db_file).execute("SELECT n FROM t WHERE id = 1").fetchone()
    assert row == (101,)  # both writes, the holder's first
    assert busy_timeout() == 30_000  # restored for every other statement


def test_behind_a_long_transaction_sqlites_own_handler_waits_out_the_rest(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any
) -> None:
    """Short steps for STEPPING_FOR only: behind a migration the writer sleeps in SQLite's
    handler instead of polling. The holder commits only once the steps are over."""
    timer = threading.Timer(0.05, lambda: holder.execute("COMMIT"))
    pauses = Pauses(monkeypatch, after=STEPS, then=timer.start)
    handler(db_file, timeout=30)
    try:
        with transaction.atomic(using="w"), connections["w"].cursor() as cursor:
            cursor.execute("UPDATE t SET n = n + 1 WHERE id = 1")
    finally:
        timer.join(30)
    assert len(pauses.seen) == STEPS and sum(pauses.seen) <= base.STEPPING_FOR
    assert sqlite3.connect(db_file).execute("SELECT n FROM t").fetchone() == (101,)
    assert busy_timeout() == 30_000


def test_a_waiting_writer_in_another_thread_gets_the_lock_once_it_frees(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any
) -> None:
    pauses = Pauses(monkeypatch, after=3)
    handler(db_file, timeout=30)
    failures: list[BaseException] = []

    def writer() -> None:
        try:
            with transaction.atomic(using="w"), connections["w"].cursor() as cursor:
                cursor.execute("UPDATE t SET n = n * 2 WHERE id = 1")
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)
        finally:
            connections["w"].close()  # this thread's own connection

    thread = threading.Thread(target=writer)
    thread.start()
    assert pauses.reached.wait(30)  # the writer is waiting now
    holder.execute("COMMIT")
    thread.join(30)
    assert not thread.is_alive() and failures == []
    # serialised: (0 + 100) * 2, not 0 * 2 + 100
    assert sqlite3.connect(db_file).execute("SELECT n FROM t").fetchone() == (200,)


def test_after_the_timeout_djangos_error_a_log_line_and_the_busy_timeout_back(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any, caplog: Any
) -> None:
    pauses = Pauses(monkeypatch)
    handler(db_file, timeout=0.05)
    with (
        caplog.at_level(logging.WARNING, "django_oauth_mtls.contrib.sqlite3"),
        pytest.raises(OperationalError, match="database is locked"),
        transaction.atomic(using="w"),
    ):
        pytest.fail("entered the transaction while another writer held the lock")
    # the short steps, then the rest of the 50 ms in SQLite's handler
    assert len(pauses.seen) == STEPS
    [record] = caplog.records
    assert "BEGIN IMMEDIATE busy for the whole timeout of 0.050 s" in record.getMessage()
    assert f"({STEPS + 2} tries;" in record.getMessage()
    assert str(db_file) in record.getMessage()
    assert busy_timeout() == 50
    assert not connections["w"].in_atomic_block
    # the connection is usable once the lock frees
    holder.execute("COMMIT")
    with transaction.atomic(using="w"), connections["w"].cursor() as cursor:
        cursor.execute("UPDATE t SET n = n + 1 WHERE id = 1")
    assert sqlite3.connect(db_file).execute("SELECT n FROM t").fetchone() == (101,)


def test_a_timeout_of_zero_tries_once(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any
) -> None:
    pauses = Pauses(monkeypatch)
    handler(db_file, timeout=0)
    with pytest.raises(OperationalError, match="database is locked"), transaction.atomic(using="w"):
        pass
    assert pauses.seen == []


def test_an_error_that_is_not_busy_is_raised_at_once(
    handler: Any, db_file: Path, monkeypatch: Any
) -> None:
    pauses = Pauses(monkeypatch)
    handler(db_file, timeout=30)
    wrapper = connections["w"]
    wrapper.ensure_connection()
    wrapper.connection.execute("BEGIN")  # a transaction Django does not know of
    with pytest.raises(OperationalError, match="within a transaction"):
        wrapper._start_transaction_under_autocommit()
    assert pauses.seen == []
    assert busy_timeout() == 30_000
    wrapper.connection.execute("ROLLBACK")


@pytest.mark.parametrize("mode", [None, "DEFERRED"])
def test_without_a_write_locking_mode_it_is_djangos_backend(
    handler: Any, db_file: Path, holder: sqlite3.Connection, monkeypatch: Any, mode: str | None
) -> None:
    pauses = Pauses(monkeypatch)
    handler(db_file, timeout=0.05, transaction_mode=mode)
    # the deferred BEGIN succeeds; the write waits in SQLite's own handler and fails there
    with (
        pytest.raises(OperationalError, match="database is locked"),
        transaction.atomic(using="w"),
        connections["w"].cursor() as cursor,
    ):
        cursor.execute("UPDATE t SET n = n + 1 WHERE id = 1")
    assert pauses.seen == []


def test_the_busy_timeout_set_last_is_the_one_kept(handler: Any, db_file: Path) -> None:
    """OPTIONS["timeout"], then init_command, then the project's own PRAGMA (for example in a
    connection_created receiver): each BEGIN reads the connection's timeout as it is."""
    handler(db_file, timeout=30, init_command="PRAGMA busy_timeout = 1234")
    with transaction.atomic(using="w"):
        pass
    assert busy_timeout() == 1234
    connections["w"].connection.execute("PRAGMA busy_timeout = 7000")
    with transaction.atomic(using="w"):
        pass
    assert busy_timeout() == 7000


def test_a_failing_restore_rolls_back_the_transaction_django_does_not_know_of(
    handler: Any, db_file: Path
) -> None:
    handler(db_file, timeout=30)
    wrapper = connections["w"]
    wrapper.ensure_connection()
    real = wrapper.connection
    statements: list[str] = []

    class Raw:  # the raw connection, whose last PRAGMA fails
        def execute(self, sql: str, *args: Any) -> Any:
            statements.append(sql)
            if sql == "PRAGMA busy_timeout = 30000":
                raise sqlite3.OperationalError("disk I/O error")
            return real.execute(sql, *args)

        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

    wrapper.connection = Raw()
    try:
        with pytest.raises(OperationalError, match="disk I/O error"):
            wrapper._start_transaction_under_autocommit()
    finally:
        wrapper.connection = real
    assert statements[-1] == "ROLLBACK"
    assert not real.in_transaction and wrapper.get_autocommit()


WORKER = """
import sys
import django
from django.conf import settings
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext

settings.configure(DATABASES={"default": {
    "ENGINE": "django_oauth_mtls.contrib.sqlite3", "NAME": sys.argv[1],
    "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 60},
}})
django.setup()
from django_oauth_mtls.contrib.sqlite3 import base
pauses = []
real_sleep = base.sleep
base.sleep = lambda seconds: (pauses.append(seconds), real_sleep(seconds))
for _ in range(int(sys.argv[2])):
    with transaction.atomic(), connections["default"].cursor() as cursor:
        cursor.execute("SELECT n FROM t WHERE id = 1")
        (n,) = cursor.fetchone()
        cursor.execute("UPDATE t SET n = %s WHERE id = 1", [n + 1])
print(len(pauses))
"""


def test_processes_writing_at_once_lose_no_update(db_file: Path) -> None:
    """Read-modify-write in each transaction: only one writer at a time can have held it."""
    processes, each = 4, 150
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(db_file), str(each)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    paused = 0
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
        paused += int(out.split()[-1])
    row = sqlite3.connect(db_file).execute("SELECT n FROM t").fetchone()
    assert row == (processes * each,)
    assert paused > 0  # they did meet at the lock, and waited in steps


def test_check_w040_names_a_database_the_backend_cannot_act_on(monkeypatch: Any) -> None:
    from types import SimpleNamespace

    from django_oauth_mtls.contrib.sqlite3 import checks

    databases = {
        "default": {"ENGINE": ENGINE, "OPTIONS": {"transaction_mode": "IMMEDIATE"}},
        "exclusive": {"ENGINE": ENGINE, "OPTIONS": {"transaction_mode": "exclusive"}},
        "deferred": {"ENGINE": ENGINE, "OPTIONS": {"transaction_mode": "DEFERRED"}},
        "unset": {"ENGINE": ENGINE},
        "stock": {"ENGINE": "django.db.backends.sqlite3"},
    }
    monkeypatch.setattr(checks, "settings", SimpleNamespace(DATABASES=databases))
    messages = check_sqlite_backend()
    assert [m.id for m in messages] == ["oauth_mtls.W040", "oauth_mtls.W040"]
    assert "DATABASES['deferred']" in messages[0].msg and "'DEFERRED'" in messages[0].msg
    assert "DATABASES['unset']" in messages[1].msg and "None" in messages[1].msg
