"""The benchmark project's SQLite writer queue (issue #16, an experiment the package does not
ship): the number docs/performance.md gives for it must come from a queue that really holds
each write transaction, and lets go whether the transaction commits, rolls back or dies."""

from __future__ import annotations

import fcntl
import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
from django.db import connections, transaction
from django.db.backends.sqlite3.base import DatabaseWrapper

from django_oauth_mtls.models import MTLSClient

ROOT = Path(__file__).resolve().parents[2]
QUEUE = ROOT / "benchmarks" / "peerbench_project" / "oursproj" / "writerqueue.py"
METHODS = ("_start_transaction_under_autocommit", "_commit", "_rollback", "_close")


@pytest.fixture
def queue(monkeypatch: Any, tmp_path: Path) -> Any:
    if connections["default"].vendor != "sqlite":
        pytest.skip("the queue is for SQLite's write lock")
    for name in METHODS:
        monkeypatch.setattr(DatabaseWrapper, name, getattr(DatabaseWrapper, name))  # restored
    spec = importlib.util.spec_from_file_location("writerqueue_under_test", QUEUE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.install(str(tmp_path / "queue"))
    return module


def held(path: Path) -> bool:
    """Whether another open file description can take the lock now."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_held_from_begin_to_commit(queue: Any, tmp_path: Path, make_app: Any) -> None:
    app = make_app(tls_client_auth_san_dns="start.example.com")
    with transaction.atomic():
        MTLSClient.objects.filter(application=app).update(tls_client_auth_san_dns="a")
        assert held(tmp_path / "queue")
    assert not held(tmp_path / "queue")
    assert MTLSClient.objects.get(application=app).tls_client_auth_san_dns == "a"


@pytest.mark.django_db(transaction=True)
def test_the_queue_is_let_go_on_rollback(queue: Any, tmp_path: Path, make_app: Any) -> None:
    app = make_app(tls_client_auth_san_dns="start.example.com")
    with pytest.raises(RuntimeError), transaction.atomic():
        MTLSClient.objects.filter(application=app).update(tls_client_auth_san_dns="b")
        assert held(tmp_path / "queue")
        raise RuntimeError("roll back")
    assert not held(tmp_path / "queue")
    assert MTLSClient.objects.get(application=app).tls_client_auth_san_dns != "b"
    # the process's own lock was let go too: the next transaction gets the queue
    with transaction.atomic():
        assert held(tmp_path / "queue")


@pytest.mark.django_db(transaction=True)
def test_a_forked_process_opens_its_own_lock_file(queue: Any, tmp_path: Path) -> None:
    with transaction.atomic():
        pass
    before = queue._state["fd"]
    queue._state["pid"] = -1  # as a child of a fork sees it: another pid
    with transaction.atomic():
        assert held(tmp_path / "queue")
    assert queue._state["fd"] != before and queue._state["pid"] == os.getpid()
