"""``python -m benchmarks --quick`` runs and writes the documented JSON; no wall-clock assertions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from django_oauth_mtls.proxies import SOURCES

ROOT = Path(__file__).resolve().parents[2]


def test_quick_intake_bench_writes_its_json(tmp_path):
    # Without DJANGO_SETTINGS_MODULE, as `make bench` runs it: the bench configures Django itself.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "intake",
            "--output",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Django" in done.stdout or "django" in done.stdout
    assert "cold med / p90" in done.stdout

    report = json.loads((tmp_path / "intake.json").read_text())
    assert report["benchmark"] == "intake"
    assert report["quick"] is True
    for key in ("python", "django", "django-oauth-toolkit", "cryptography"):
        assert report["versions"][key], key
    rows = report["rows"]
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
