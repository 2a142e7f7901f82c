"""Against node-oidc-provider with ../shared/peerbench (P7, P10, P11): reported, not a gate.

Runs ``../shared/peerbench/run.sh`` with ``EXTRA_TARGET_FILES`` = our
``benchmarks/peerbench_target.sh`` and peerbench's ``floor/target.sh``, and
``TARGETS="nop dot ours ours_tuned ours_uwsgi floor floor_tuned floor_uwsgi"`` (wrk, same box,
peerbench's method:
warm-up run, measured runs, medians), then reads its ``raw.tsv`` and sets our rows beside
node-oidc-provider's and the framework floor's from the same run: ``b token tls_client_auth
(CA-signed)`` (aim: ≥ 1× nop's req/s; P11: ≥ 0.2× the empty DRF POST on the same server set-up)
and ``d resource GET`` with a bound token (aim: ≥ 0.5×). P10 (issue #15): ``ours_tuned``'s
``d resource GET`` with a bound JWT checked locally (the peer with ``jwt`` in its label, a pool of
≥ 1,000 tokens cycled by our wrk script) against ``floor_tuned``'s empty DRF GET (goal ≥ 0.8×)
and node-oidc-provider's bound GET (beating it is the aim). ``ours_uwsgi`` is the tuned set-up
on uWSGI, its rows reported beside the graded ones (``peerbench_rows``). Knobs (environment):
``PEERBENCH`` (the folder, default ``../shared/peerbench``), ``PEERBENCH_DIR`` (default
``/tmp/peerbench``),
``PEERBENCH_TARGETS``, and peerbench's own ``CONNS`` (default here ``32``), ``REPS`` (3),
``DURATION`` (10), ``WARMUP`` (3), ``OURS_GUNICORN_ARGS`` (default peerbench's
``GUNICORN_ARGS``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from benchmarks import Skip
from benchmarks.peerbench_rows import (
    DEFAULT_TARGETS,
    P10_FLOOR_GOAL,
    P10_MIN_POOL,
    p7b_row,
    parse_raw,
    rows_from,
    same_server,
    table,
)

__all__ = ["p7b_row", "parse_raw", "rows_from", "run", "same_server", "table"]

NAME = "peerbench"
TITLE = "peerbench (wrk): ours vs node-oidc-provider, same run, req/s medians"
FULL_ONLY = True
ROOT = Path(__file__).resolve().parent.parent
TARGET_FILE = Path(__file__).with_name("peerbench_target.sh")
NOTES = [
    "aims (issue #10, P7, reported, not a gate): token endpoint with tls_client_auth >= 1x "
    "node-oidc-provider's req/s, GET with a bound token >= 0.5x",
    "nop keeps tokens in an in-memory LRU; ours writes every token (and its binding) to SQLite",
    "wrk and the servers share the 2 cores (peerbench's set-up); runs are sequential, not "
    "interleaved",
    f"P10 goal (issue #15): ours_tuned's GET with a bound JWT (jwt mode, no verification cache, "
    f"a distinct token per request from a pool of >= {P10_MIN_POOL} tokens) >= "
    f"{P10_FLOOR_GOAL:g}x floor_tuned's empty DRF GET; beating node-oidc-provider's bound GET "
    "is the aim",
]


def _peerbench_dir() -> Path:
    return Path(os.environ.get("PEERBENCH", ROOT.parent / "shared" / "peerbench")).resolve()


def _check_tools(folder: Path) -> None:
    if not (folder / "run.sh").exists():
        raise Skip(f"peerbench not found at {folder} (set PEERBENCH=/path/to/peerbench)")
    for tool, hint in (
        ("wrk", "apt-get install wrk"),
        ("node", "apt-get install nodejs npm"),
        ("npm", "apt-get install npm"),
        ("curl", "apt-get install curl"),
        ("openssl", "apt-get install openssl"),
        ("git", "apt-get install git"),
    ):
        if not shutil.which(tool):
            raise Skip(f"{tool} is not installed ({hint})")
    pyenv = shutil.which("pyenv")
    if not os.environ.get("PY312") and not pyenv:
        raise Skip("no Python 3.12 for peerbench's venvs (pyenv with a 3.12, or PY312=...)")


def run(quick: bool) -> list[dict[str, Any]]:
    folder = _peerbench_dir()
    _check_tools(folder)
    work = Path(os.environ.get("PEERBENCH_DIR", "/tmp/peerbench"))
    results = work / "results"
    before = set(results.iterdir()) if results.exists() else set()
    env = dict(os.environ)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env.update(
        EXTRA_TARGET_FILES=f"{TARGET_FILE} {folder / 'floor' / 'target.sh'}",
        TARGETS=os.environ.get("PEERBENCH_TARGETS", DEFAULT_TARGETS),
        PEERBENCH_DIR=str(work),
    )
    env.setdefault("CONNS", "32")
    log = Path(__file__).with_name("results") / "peerbench.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(  # noqa: S603
            ["bash", str(folder / "run.sh")],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=7200,
            check=False,
        )
    if done.returncode:
        raise RuntimeError(f"peerbench failed (status {done.returncode}), see {log}")
    new = sorted(set(results.iterdir()) - before) if results.exists() else []
    if not new:
        raise RuntimeError(f"peerbench wrote no results, see {log}")
    return rows_from(new[-1])
