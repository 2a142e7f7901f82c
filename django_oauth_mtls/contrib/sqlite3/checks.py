"""System check ``oauth_mtls.W040``: ``django_oauth_mtls.contrib.sqlite3`` without a
``transaction_mode`` that takes the write lock at ``BEGIN`` changes nothing."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Warning

ENGINE = "django_oauth_mtls.contrib.sqlite3"


def check_sqlite_backend(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    from .base import WRITE_LOCKING_MODES

    messages: list[CheckMessage] = []
    for alias, database in getattr(settings, "DATABASES", {}).items():
        if database.get("ENGINE") != ENGINE:
            continue
        mode = (database.get("OPTIONS") or {}).get("transaction_mode")
        if str(mode).upper() not in WRITE_LOCKING_MODES:
            messages.append(
                Warning(
                    f"DATABASES[{alias!r}] uses {ENGINE} with transaction_mode {mode!r}: the "
                    "backend changes how BEGIN IMMEDIATE waits for SQLite's write lock, so here "
                    "BEGIN waits exactly as on Django's SQLite backend.",
                    hint='Set DATABASES[...]["OPTIONS"]["transaction_mode"] = "IMMEDIATE" '
                    "(docs/performance.md), or use django.db.backends.sqlite3.",
                    id="oauth_mtls.W040",
                )
            )
    return messages
