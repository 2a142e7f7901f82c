"""``python -m benchmarks --quick`` runs and writes the documented JSON; no wall-clock assertions.

One quick run per session (module-scoped fixture): P1–P4 measured with few iterations, the
full-run-only rows (P5–P7) skipped with a reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from django_oauth_mtls.proxies import SOURCES

ROOT = Path(__file__).resolve().parents[2]
FULL_ONLY = ("nginx_e2e", "pg_scale", "peerbench")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    output = tmp_path_factory.mktemp("bench")
    # Without DJANGO_SETTINGS_MODULE, as `make bench` runs it: the bench configures Django itself.
    env = {
        k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a performance bound
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return output, done.stdout


def report(output: Path, name: str) -> dict:
    data = json.loads((output / f"{name}.json").read_text())
    assert data["benchmark"] == name
    assert data["quick"] is True
    for key in ("python", "django", "django-oauth-toolkit", "cryptography"):
        assert data["versions"][key], key
    assert data["load_average_before"] and data["load_average_after"]
    return data


def assert_ratio_row(row: dict) -> None:
    for key in ("a_ms", "b_ms", "ratio_median", "ratio_p25", "ratio_p75"):
        assert isinstance(row[key], float) and row[key] > 0, (row["id"], key)
    assert row["ratio_p25"] <= row["ratio_median"] <= row["ratio_p75"], row["id"]
    assert row["pairs"] >= 1
    assert row["verdict"] == "pass" or row["verdict"].startswith("miss: ") or row["verdict"] == "-"
    assert row["a"] and row["b"] and row["goal"]


def test_versions_are_printed(quick_run):
    _, stdout = quick_run
    assert "django: " in stdout and "django-oauth-toolkit: " in stdout and "python: " in stdout


def test_token_endpoint_rows_P1_P2(quick_run):
    output, stdout = quick_run
    data = report(output, "token_endpoint")
    rows = {row["id"]: row for row in data["rows"]}
    assert {"P1", "P2", "P2-dn", "P2-self", "P2-cold", "P2-bound"} <= set(rows)
    for row in rows.values():
        assert_ratio_row(row)
    assert rows["P1"]["verdict"] != "-" and rows["P2"]["verdict"] != "-"
    assert rows["P1"]["hasher"].startswith("pbkdf2_sha256")  # Django's default, not MD5
    assert rows["P1"]["pairs"] <= 2  # quick: PBKDF2 costs ~1 s a request
    assert "A/B med" in stdout


def test_drf_row_P3(quick_run):
    output, _ = quick_run
    rows = {row["id"]: row for row in report(output, "drf")["rows"]}
    assert_ratio_row(rows["P3"])
    assert rows["P3"]["a_queries"] == rows["P3"]["b_queries"] >= 1


def test_intake_rows_P4(quick_run):
    output, stdout = quick_run
    assert "cold med / p90" in stdout
    rows = report(output, "intake")["rows"]
    expected = set(SOURCES) | {"(dotted-path callable)", "(absent, nginx)"}
    assert {(r["source"], r["path"]) for r in rows} == {
        (source, path) for source in expected for path in ("pure", "django")
    }
    for row in rows:
        for key in ("cold_median_us", "cold_p90_us", "cached_median_us", "cached_p90_us"):
            assert isinstance(row[key], float) and row[key] > 0, (row["source"], key)
        assert row["cold_p90_us"] >= row["cold_median_us"]
        assert row["cached_p90_us"] >= row["cached_median_us"]
        assert row["cold_iterations"] > 0 and row["cached_iterations"] > 0
        assert row["goal"] == "pass" or row["goal"].startswith("miss: ")
        assert (row["goal_cold_us"], row["goal_cached_us"]) == (100.0, 20.0)


@pytest.mark.parametrize("name", FULL_ONLY)
def test_full_only_rows_are_skipped_with_a_reason(quick_run, name):
    output, _ = quick_run
    data = report(output, name)
    assert data["rows"] == []
    assert "--quick" in data["skipped"]
