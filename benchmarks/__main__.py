"""``python -m benchmarks [--quick] [--only NAME ...] [--output DIR]`` (``make bench``).

Runs every module of ``MODULES``, prints one table each (versions first) and writes
``<output>/<NAME>.json`` (default ``benchmarks/results/py<X.Y>-django<version>/``, git-ignored,
so the CI cells' runs sit side by side). ``--quick`` is a smoke
run for CI: few iterations, seconds, numbers not meaningful. The exit status is 0 whatever the
numbers (goals are reported, not enforced), 1 when a row family broke (its error is printed and
written as ``"error"``; the other families still run). A family whose tools are missing raises
``benchmarks.Skip`` and is written with ``"skipped"``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks import Skip, load_average, versions

#: Row families, in order (issue #10's ids in the comments).
MODULES = [
    "benchmarks.token_endpoint",  # P1, P2
    "benchmarks.drf",  # P3
    "benchmarks.intake",  # P4
    "benchmarks.jwt",  # P8, P9 (issue #15)
    "benchmarks.nginx_e2e",  # P5 (full run only)
    "benchmarks.pg_scale",  # P6 (full run only)
    "benchmarks.peerbench",  # P7 (full run only)
]
RESULTS = Path(__file__).resolve().parent / "results"


def generic_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)"
    keys = list(rows[0])
    cells = [[str(row.get(key, "")) for key in keys] for row in rows]
    widths = [max(len(key), *(len(c[i]) for c in cells)) for i, key in enumerate(keys)]
    lines = ["  ".join(key.ljust(w) for key, w in zip(keys, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def run_module(
    module: ModuleType, quick: bool, output: Path, header: dict[str, Any]
) -> dict[str, Any]:
    started = time.monotonic()
    load_before = load_average()
    skipped: str | None = None
    error: str | None = None
    rows: list[dict[str, Any]] = []
    if quick and getattr(module, "FULL_ONLY", False):
        skipped = "full run only (skipped with --quick)"
    else:
        try:
            rows = module.run(quick)
        except Skip as skip:
            skipped = str(skip)
        except Exception as exc:  # noqa: BLE001 - one broken row family must not hide the others
            import traceback

            traceback.print_exc()
            error = f"{type(exc).__name__}: {exc}"
    elapsed = time.monotonic() - started
    table = getattr(module, "table", generic_table)
    print(f"\n== {module.TITLE}{' (--quick: smoke run, numbers not meaningful)' if quick else ''}")
    if error:
        print(f"ERROR: {error}")
    else:
        print(f"SKIPPED: {skipped}" if skipped else table(rows))
    notes: list[str] = list(getattr(module, "NOTES", []))
    for note in notes:
        print(f"  - {note}")
    report = {
        "benchmark": module.NAME,
        "title": module.TITLE,
        "quick": quick,
        "seconds": round(elapsed, 2),
        "load_average_before": load_before,
        "load_average_after": load_average(),
        "skipped": skipped,
        "error": error,
        "versions": header,
        "notes": notes,
        "rows": rows,
    }
    output.mkdir(parents=True, exist_ok=True)
    path = output / f"{module.NAME}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"  ({elapsed:.1f} s; written to {path})")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="few iterations (CI smoke run)")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this row family (repeatable), e.g. intake",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="directory for the JSON (default: benchmarks/results/py<X.Y>-django<version>/)",
    )
    args = parser.parse_args(argv)

    selected = [m for m in MODULES if not args.only or m.rsplit(".", 1)[-1] in args.only]
    if not selected:
        parser.error(f"--only matches none of {', '.join(m.rsplit('.', 1)[-1] for m in MODULES)}")
    # One Django configuration for every row family: the in-process rows need theirs.
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    header = versions()
    if args.output is None:
        python = ".".join(header["python"].split(".")[:2])
        args.output = RESULTS / f"py{python}-django{header['django']}"
    print("django-oauth-mtls benchmarks")
    for key, value in header.items():
        print(f"  {key}: {value}")
    failed = []
    for name in selected:
        report = run_module(importlib.import_module(name), args.quick, args.output, header)
        if report["error"]:
            failed.append(report["benchmark"])
    if failed:
        print(f"\nrow families that failed to run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
