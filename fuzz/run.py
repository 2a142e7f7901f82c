"""Run every fuzz target for a fixed number of cases; exit 1 on any finding.

    python -m fuzz.run --cases 100000                 # hypothesis + mutation loop (+ atheris)
    python -m fuzz.run --cases 20000 --engine mutate --target intake.envoy
    python -m fuzz.run --list

``--cases`` is the least total over all selected targets and engines, split evenly (rounded up).
A finding is an exception outside the target's contract, or a broken invariant; each one is
printed with its input (shortened) and the first of each kind is saved under ``fuzz/findings/``
(``--save-dir``). Already-reported package bugs (``fuzz.targets.KNOWN_FINDINGS``) are marked
``[known Bn]``; ``--allow-known`` exits 0 when they are the only findings. Engines:

* ``hypothesis`` — ``settings(max_examples=N)`` over the target's strategy; findings are
  collected, not raised, so every case runs and is counted (no shrinking);
* ``mutate`` — a seeded loop (``--seed``) of structure-aware mutations of real encodings;
* ``atheris`` — coverage-guided (libFuzzer), only when ``atheris`` is importable; each target
  runs in a subprocess (libFuzzer owns the process), instrumented over ``django_oauth_mtls``.

``--engine auto`` (the default) uses hypothesis and mutate, plus atheris when installed.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("hypothesis", "mutate", "atheris")


@dataclass
class Tally:
    """Cases run and findings of one (target, engine)."""

    target: str
    engine: str
    cases: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    notes: dict[str, int] = field(default_factory=dict)

    def record(self, case: Any, exc: BaseException) -> str:
        from fuzz.targets import known_finding

        frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
        where = f"{Path(frame.filename).name}:{frame.lineno}" if frame else "?"
        known = known_finding(self.target, exc)
        kind = f"{type(exc).__name__} at {where}" + (f" [known {known}]" if known else "")
        self.findings[kind] += 1
        if kind not in self.examples:
            text = ascii(case)
            self.examples[kind] = (
                text if len(text) <= 400 else text[:400] + f"… ({len(text)} chars)"
            )
            self.examples[kind + " (traceback)"] = "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:]
            )
        return kind

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "engine": self.engine,
            "cases": self.cases,
            "findings": dict(self.findings),
            "examples": self.examples,
            "seconds": self.seconds,
            "notes": self.notes,
        }


def _execute(target: Any, case: Any, tally: Tally) -> None:
    tally.cases += 1
    try:
        target.run(case)
    except RecursionError as exc:  # must not kill the runner; it is a finding like any other
        tally.record(case, exc)
    except Exception as exc:
        tally.record(case, exc)


def _notes(target: Any, before: dict[str, int]) -> dict[str, int]:
    """What the target's informational counters gained during one run."""
    return {key: value - before.get(key, 0) for key, value in target.counters.items()}


def run_mutate(target: Any, cases: int, seed: int) -> Tally:
    tally = Tally(target.name, "mutate")
    rng = random.Random(f"{seed}:{target.name}")
    started = time.perf_counter()
    before = dict(target.counters)
    for _ in range(cases):
        try:
            case = target.generate(rng)
        except Exception as exc:  # a generator bug is the harness's, not the target's
            raise RuntimeError(f"{target.name}: generator failed") from exc
        _execute(target, case, tally)
    tally.seconds = time.perf_counter() - started
    tally.notes = _notes(target, before)
    return tally


def run_hypothesis(target: Any, cases: int, seed: int) -> Tally:
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    tally = Tally(target.name, "hypothesis")
    started = time.perf_counter()
    before = dict(target.counters)

    @hypothesis_seed(seed)
    @settings(
        max_examples=cases,
        database=None,
        deadline=None,
        derandomize=False,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(target.strategy)
    def fuzz(case: Any) -> None:
        _execute(target, case, tally)

    fuzz()
    tally.seconds = time.perf_counter() - started
    tally.notes = _notes(target, before)
    return tally


def run_atheris(target: Any, cases: int, seed: int) -> Tally:
    """One subprocess per target: libFuzzer exits the process when it is done."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", delete=False) as handle:
        result_path = handle.name
    started = time.perf_counter()
    try:
        process = subprocess.run(
            [
                sys.executable,
                "-m",
                "fuzz.run",
                "--atheris-child",
                target.name,
                "--cases",
                str(cases),
                "--seed",
                str(seed),
                "--result",
                result_path,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=max(600, cases // 10),
        )
        try:
            data = json.loads(Path(result_path).read_text() or "{}")
        except ValueError:
            data = {}
    finally:
        Path(result_path).unlink(missing_ok=True)
    tally = Tally(target.name, "atheris", seconds=time.perf_counter() - started)
    if not data:
        tally.findings[f"atheris child exited {process.returncode} without a result"] = 1
        tally.examples["stderr"] = process.stderr[-2000:]
        return tally
    tally.cases = data["cases"]
    tally.findings.update(data["findings"])
    tally.examples.update(data["examples"])
    tally.notes.update(data.get("notes", {}))
    return tally


def atheris_child(name: str, cases: int, seed: int, result_path: str) -> None:
    import atheris

    with atheris.instrument_imports(include=["django_oauth_mtls"]):
        from fuzz.targets import TARGETS
    target = TARGETS[name]
    tally = Tally(name, "atheris")
    before = dict(target.counters)

    def finish() -> None:
        tally.notes = _notes(target, before)
        Path(result_path).write_text(json.dumps(tally.to_json()))
        sys.stdout.flush()
        os._exit(0)

    def test_one_input(data: bytes) -> None:
        try:
            case = target.from_bytes(data)
        except Exception:
            return  # an input the harness cannot shape: not a case
        _execute(target, case, tally)
        if tally.cases >= cases:
            finish()

    atheris.Setup(
        [sys.argv[0], f"-runs={cases * 20}", f"-seed={seed or 1}", "-max_len=4096"],
        test_one_input,
    )
    atheris.Fuzz()
    finish()  # libFuzzer ran out of runs first (inputs it could not shape do not count)


def _save(tallies: list[Tally], save_dir: Path) -> list[Path]:
    saved = []
    for tally in tallies:
        for kind, example in tally.examples.items():
            if kind.endswith("(traceback)") or kind == "stderr":
                continue
            save_dir.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256(f"{tally.target}{kind}".encode()).hexdigest()[:12]
            path = save_dir / f"{tally.target}-{tally.engine}-{digest}.txt"
            path.write_text(
                f"target: {tally.target}\nengine: {tally.engine}\nkind: {kind}\n"
                f"input: {example}\n\n{tally.examples.get(kind + ' (traceback)', '')}"
            )
            saved.append(path)
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.run", description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="total cases (default 100000)")
    parser.add_argument("--engine", choices=("auto", "all", *ENGINES), default="auto")
    parser.add_argument("--target", action="append", help="a target name or prefix (repeatable)")
    parser.add_argument("--seed", type=int, default=8705)
    parser.add_argument("--save-dir", default=str(ROOT / "fuzz" / "findings"))
    parser.add_argument("--json", help="write the tallies as JSON to this file")
    parser.add_argument("--list", action="store_true", help="list the targets and exit")
    parser.add_argument(
        "--allow-known",
        action="store_true",
        help="exit 0 when every finding is an already-reported bug (fuzz.targets.KNOWN_FINDINGS)",
    )
    parser.add_argument("--atheris-child", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.atheris_child:
        atheris_child(args.atheris_child, args.cases, args.seed, args.result)
        return 0

    from fuzz.targets import TARGETS

    if args.list:
        for target in TARGETS.values():
            print(f"{target.name:42} {target.doc}")
        return 0
    selected = [
        t
        for t in TARGETS.values()
        if not args.target or any(t.name == p or t.name.startswith(p) for p in args.target)
    ]
    if not selected:
        print(f"no target matches {args.target}", file=sys.stderr)
        return 2
    has_atheris = importlib.util.find_spec("atheris") is not None
    if args.engine == "auto":
        engines = ["hypothesis", "mutate"] + (["atheris"] if has_atheris else [])
    elif args.engine == "all":
        engines = list(ENGINES)
    else:
        engines = [args.engine]
    if "atheris" in engines and not has_atheris:
        print("atheris is not installed: pip install atheris", file=sys.stderr)
        return 2
    per_run = max(1, -(-args.cases // (len(selected) * len(engines))))  # at least --cases
    print(
        f"fuzz: {len(selected)} targets × {', '.join(engines)}, {per_run} cases each "
        f"(seed {args.seed})"
    )
    runners = {"hypothesis": run_hypothesis, "mutate": run_mutate, "atheris": run_atheris}
    tallies: list[Tally] = []
    started = time.perf_counter()
    for target in selected:
        for engine in engines:
            tally = runners[engine](target, per_run, args.seed)
            tallies.append(tally)
            found = sum(tally.findings.values())
            notes = "".join(f"  [{k}: {v}]" for k, v in tally.notes.items() if v)
            print(
                f"  {target.name:38} {engine:10} {tally.cases:>8} cases "
                f"{tally.seconds:7.1f} s  {found} findings{notes}",
                flush=True,
            )
            for kind, count in tally.findings.items():
                print(f"      ! {count} × {kind}\n        input: {tally.examples.get(kind, '')}")

    per_target: Counter[str] = Counter()
    for tally in tallies:
        per_target[tally.target] += tally.cases
    total = sum(per_target.values())
    findings = sum(sum(t.findings.values()) for t in tallies)
    known = sum(n for t in tallies for kind, n in t.findings.items() if "[known " in kind)
    print("\nper target:")
    for name, count in per_target.items():
        found = sum(sum(t.findings.values()) for t in tallies if t.target == name)
        print(f"  {name:42} {count:>8} cases  {found} findings")
    print(
        f"total: {total} cases, {findings} findings (uncaught exceptions or broken invariants; "
        f"{known} of them already reported) in {time.perf_counter() - started:.0f} s"
    )
    if known:
        from fuzz.targets import KNOWN_FINDINGS

        seen = sorted(
            {k.split("[known ")[1][:-1] for t in tallies for k in t.findings if "[known " in k}
        )
        for bug in seen:
            print(f"  known {bug}: {KNOWN_FINDINGS[bug]}")
    if args.json:
        Path(args.json).write_text(json.dumps([t.to_json() for t in tallies], indent=2))
    if findings:
        for path in _save(tallies, Path(args.save_dir)):
            print(f"saved: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        if args.allow_known and findings == known:
            print("only already-reported findings (--allow-known): exit 0")
            return 0
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
