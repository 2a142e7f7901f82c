"""``django_oauth_mtls.contrib.sqlite3``'s cursor (issue #16): Django's ``"format"`` to
``"qmark"`` placeholder conversion is kept per statement, in a bounded cache, and gives what
Django's own gives; the ``"pyformat"`` style and long statements are converted as Django does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db.backends.sqlite3.base import SQLiteCursorWrapper as DjangoCursor

from django_oauth_mtls.contrib.sqlite3 import base

# The backend's own test fixtures: Django's connections on a file of the test's own (alias "w"),
# with the project's test database left alone.
from tests.integration.test_contrib_sqlite3 import _own_files_only, handler  # noqa: F401

STATEMENTS = [
    "SELECT %s",
    "SELECT 'a%%s' || %s",  # a literal "%s" in SQL is written "%%s"
    "SELECT '100%%' , %s, %s",
    "SELECT '%%%s' || %s",
    "SELECT 1",
]


@pytest.fixture
def cursor(request: Any, tmp_path: Path) -> Iterator[Any]:
    """A Django cursor on a file of its own, through the backend (alias ``w``)."""
    connections = request.getfixturevalue("handler")(tmp_path / "db.sqlite3")
    with connections["w"].cursor() as django_cursor:
        yield django_cursor


@pytest.mark.parametrize("statement", STATEMENTS)
def test_the_kept_conversion_is_djangos(statement: str) -> None:
    ours = base.SQLiteCursorWrapper.convert_query
    django = DjangoCursor.convert_query
    assert ours(None, statement) == django(None, statement)  # type: ignore[arg-type]
    assert ours(None, statement) == django(None, statement)  # type: ignore[arg-type]  # kept


def test_statements_run_through_our_cursor_with_the_same_results(cursor: Any) -> None:
    assert isinstance(cursor.cursor, base.SQLiteCursorWrapper)
    for _ in range(2):  # converted, then kept
        cursor.execute("SELECT 'a%%s' || %s, '100%%', %s", ["b", 7])
        assert cursor.fetchone() == ("a%sb", "100%", 7)
    cursor.execute("SELECT %(x)s || %(y)s", {"x": "p", "y": "q"})  # pyformat, as Django
    assert cursor.fetchone() == ("pq",)
    cursor.execute("CREATE TABLE t (n INTEGER)")
    cursor.executemany("INSERT INTO t (n) VALUES (%s)", [(1,), (2,), (3,)])
    cursor.execute("SELECT sum(n) FROM t")
    assert cursor.fetchone() == (6,)


def test_the_cache_is_bounded_and_long_statements_are_not_kept(cursor: Any) -> None:
    assert base._qmark.cache_info().maxsize == base.CACHED_QUERIES
    base._qmark.cache_clear()
    for n in range(base.CACHED_QUERIES + 50):
        cursor.execute(f"SELECT %s + {n}", [1])
        assert cursor.fetchone() == (1 + n,)
    assert base._qmark.cache_info().currsize == base.CACHED_QUERIES
    base._qmark.cache_clear()
    padding = "0" * base.CACHED_QUERY_CHARS
    cursor.execute(f"SELECT %s + {padding}", [5])
    assert cursor.fetchone() == (5,)
    assert base._qmark.cache_info().currsize == 0
