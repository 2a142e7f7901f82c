"""Benchmarks of django-oauth-mtls: ``make bench`` (``python -m benchmarks``).

Each row family is a module of this package with::

    NAME: str                                  # file name of its results: results/<NAME>.json
    TITLE: str                                 # heading of its table
    def run(quick: bool) -> list[dict]: ...    # measured rows, JSON-serialisable
    def table(rows: list[dict]) -> str: ...    # optional; a generic table otherwise
    NOTES: list[str]                           # optional; printed under the table, kept in JSON

and is listed in ``benchmarks.__main__.MODULES``. The helpers below are shared: a timer that
reports the median and p90 of per-call samples, and the versions every report starts with.
Goals are reported (pass/miss), never enforced: wall-clock numbers depend on the machine.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any, TypeVar

__all__ = [
    "Arm",
    "Skip",
    "Stats",
    "compare",
    "load_average",
    "measure",
    "quartiles",
    "ratio_summary",
    "versions",
]

T = TypeVar("T")


class Stats(dict[str, float]):
    """``{"median_us": …, "p90_us": …, "n": …}`` of per-call samples."""

    @classmethod
    def of(cls, samples_ns: list[int]) -> Stats:
        ordered = sorted(samples_ns)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        return cls(
            median_us=round(statistics.median(ordered) / 1000, 3),
            p90_us=round(p90 / 1000, 3),
            n=len(ordered),
        )


def measure(
    call: Callable[[T], object],
    prepare: Callable[[], T],
    iterations: int,
    warmup: int = 50,
) -> Stats:
    """Time ``call(prepare())`` one call at a time; ``prepare`` runs outside the timed region.

    ``time.perf_counter_ns`` around each call (its own cost, tens of nanoseconds, is included);
    the garbage collector is paused while timing, as ``timeit`` does.
    """
    for _ in range(warmup):
        call(prepare())
    samples: list[int] = []
    clock = time.perf_counter_ns
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(iterations):
            argument = prepare()
            start = clock()
            call(argument)
            samples.append(clock() - start)
    finally:
        if gc_was_enabled:
            gc.enable()
    return Stats.of(samples)


class Skip(Exception):  # noqa: N818 - it is a verdict, not an error
    """Raised by a row family's ``run`` when it cannot run here (a tool is missing); the message
    is the reason, printed and written to the JSON (``"skipped"``)."""


@dataclass
class Arm:
    """One side of an A/B comparison: ``call(prepare())`` is timed, ``prepare()`` is not."""

    label: str
    call: Callable[[Any], object]
    prepare: Callable[[], Any] = lambda: None


def quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """(p25, median, p75) of ``values`` (inclusive method; one value gives it three times)."""
    if len(values) == 1:
        return values[0], values[0], values[0]
    p25, p50, p75 = statistics.quantiles(values, n=4, method="inclusive")
    return p25, p50, p75


def ratio_summary(ratios: Sequence[float]) -> dict[str, float]:
    p25, p50, p75 = quartiles(ratios)
    return {
        "ratio_median": round(p50, 4),
        "ratio_p25": round(p25, 4),
        "ratio_p75": round(p75, 4),
    }


def compare(a: Arm, b: Arm, pairs: int, warmup: int = 5) -> dict[str, Any]:
    """Interleaved pairs: each pair times one call of A and one of B, back to back.

    The order inside a pair alternates (A B, B A, A B, …) so that neither side always runs
    right after the other. Returns the median time of each side in ms, and the median and
    p25–p75 of the per-pair ratios A/B: load that comes and goes on a shared machine hits
    both calls of a pair alike, so the ratio is steadier than either time. The garbage
    collector stays on: at the millisecond scale of a request its work is part of the cost.
    """
    for _ in range(warmup):
        a.call(a.prepare())
        b.call(b.prepare())
    clock = time.perf_counter_ns
    a_ns: list[int] = []
    b_ns: list[int] = []
    for index in range(pairs):
        for arm, samples in ((a, a_ns), (b, b_ns)) if index % 2 == 0 else ((b, b_ns), (a, a_ns)):
            argument = arm.prepare()
            start = clock()
            arm.call(argument)
            samples.append(clock() - start)
    ratios = [x / y for x, y in zip(a_ns, b_ns, strict=True)]
    return {
        "a": a.label,
        "b": b.label,
        "a_ms": round(statistics.median(a_ns) / 1e6, 4),
        "b_ms": round(statistics.median(b_ns) / 1e6, 4),
        **ratio_summary(ratios),
        "pairs": pairs,
    }


def load_average() -> str:
    """``os.getloadavg()`` as "1-min 5-min 15-min", for the record next to every row."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on this platform
        return "unknown"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, Any]:
    """What the numbers were measured with."""
    openssl = "unknown"
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        openssl = backend.openssl_version_text()
    except Exception:  # noqa: BLE001 - informational only
        pass
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "django": _version("Django"),
        "django-oauth-toolkit": _version("django-oauth-toolkit"),
        "cryptography": _version("cryptography"),
        "openssl (cryptography)": openssl,
        "django-oauth-mtls": _version("django-oauth-mtls"),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load average at start": load_average(),
    }
