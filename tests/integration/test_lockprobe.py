"""The benchmark project's SQLite lock probe (issue #16): the numbers behind the tuned set-up's
one thread per worker come from it, so it must time real transactions."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.backends.sqlite3.base import DatabaseWrapper

from django_oauth_mtls.models import MTLSClient

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "benchmarks" / "peerbench_project" / "oursproj" / "lockprobe.py"


@pytest.fixture
def probe(monkeypatch: Any) -> Any:
    for name in ("_start_transaction_under_autocommit", "_commit"):
        monkeypatch.setattr(DatabaseWrapper, name, getattr(DatabaseWrapper, name))  # restored
    spec = importlib.util.spec_from_file_location("lockprobe_under_test", PROBE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr("atexit.register", lambda *args: None)
    return module


@pytest.mark.django_db(transaction=True)
def test_each_write_transaction_is_timed(probe: Any, tmp_path: Path, make_app: Any) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("the probe measures SQLite's write lock")
    probe.install(str(tmp_path))
    app = make_app(None)
    for n in range(3):
        with transaction.atomic():
            MTLSClient.objects.filter(application=app).update(tls_client_auth_san_dns=f"n{n}")
    written = probe.write(str(tmp_path))
    assert written is not None and written.parent == tmp_path
    line = written.read_text()
    assert re.fullmatch(
        r"n=3 hold p50=[\d.]+ p90=[\d.]+ p99=[\d.]+ mean=[\d.]+ \| wait p50=[\d.]+ p90=[\d.]+ "
        r"p99=[\d.]+ mean=[\d.]+ ms\n",
        line,
    ), line


def test_nothing_is_written_without_a_transaction(probe: Any, tmp_path: Path) -> None:
    assert probe.write(str(tmp_path)) is None
    assert list(tmp_path.iterdir()) == []
