"""``makemigrations --check`` is clean with DOT's default models and with a swapped Application,
and our migration applies in both (DOT integration notes §1.4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run(settings_module: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    env.pop("DATABASE_URL", None)  # each run gets its own SQLite file
    env["TEST_SQLITE_PATH"] = str(tmp_path / "db.sqlite3")
    return subprocess.run(
        [sys.executable, "-m", "django", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("settings_module", ["tests.settings", "tests.settings_swapped"])
def test_no_missing_migrations(settings_module, tmp_path):
    result = run(settings_module, "makemigrations", "--check", "--dry-run", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("settings_module", ["tests.settings", "tests.settings_swapped"])
def test_migrate_applies(settings_module, tmp_path):
    result = run(settings_module, "migrate", "--noinput", tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "oauth_mtls.0001_initial" in result.stdout or "Applying oauth_mtls" in result.stdout
