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
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any, TypeVar

__all__ = ["Stats", "measure", "versions"]

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
    }
