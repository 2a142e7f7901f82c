"""peerbench's result folder read into our rows (P7, P7a, P7b, P10, P11), for ``peerbench.py``.

Each of our rows is set beside the rows of the same run it is compared with: node-oidc-provider's
(P7, P7a), DOT's plain GET on the same server (P7b), the framework floor that ran the same
server and arguments (P10, P11). The server set-up is read from the peer labels that
``peerbench_target.sh`` writes: ``tuned: ARGS, …`` or ``as dot: ARGS`` for ours, ``floor (Django
PINS; ARGS)`` for the floor, where ARGS are gunicorn's arguments or ``uwsgi`` and uWSGI's. Rows
of ``ours_uwsgi`` carry ids ending in ``-uwsgi``: reported beside the rows graded on gunicorn.
"""

from __future__ import annotations

import itertools
import os
import re
import statistics
from pathlib import Path
from typing import Any

from benchmarks import load_average

#: Every peer side by side in one run (issue #16): node-oidc-provider, DOT, ours as DOT runs,
#: tuned, and tuned on uWSGI, and the framework floor (empty Django/DRF views) in each of those
#: server set-ups.
DEFAULT_TARGETS = "nop dot ours ours_tuned ours_uwsgi floor floor_tuned floor_uwsgi"
AIMS = {"b token tls_client_auth (CA-signed)": 1.0, "d resource GET": 0.5}
#: P11: each of our rows as a fraction of the floor row of the same kind and server set-up.
FLOOR_OF = {
    "b token tls_client_auth (CA-signed)": "f floor POST form (empty DRF APIView)",
    "d resource GET": "f floor GET (empty DRF APIView)",
}
#: P7a (issue #16): the tuned token endpoint at >= 0.5x node-oidc-provider (the aim stays 1x).
P7A_SCENARIO = "b token tls_client_auth (CA-signed)"
P7A_GOAL = 0.5
#: P11 goal (issue #16): the token endpoint at >= 0.2x the DRF POST floor.
FLOOR_AIMS = {"b token tls_client_auth (CA-signed)": 0.2}
#: P10 (issue #15): the GET with a bound JWT (tuned target) >= 0.8x floor_tuned's DRF GET.
P10_SCENARIO = "d resource GET"
P10_FLOOR_GOAL = 0.8
P10_MIN_POOL = 1000


def _config(peer: str) -> str:
    """Which of our targets a row comes from: ``ours`` ("as dot"), ``ours_tuned`` ("tuned") or
    ``ours_uwsgi`` ("uwsgi": the tuned set-up on uWSGI, reported beside the graded rows)."""
    if "tuned: uwsgi " in peer:
        return "uwsgi"
    return "tuned" if "tuned:" in peer else "as dot"


def _server_args(peer: str) -> str | None:
    """The server arguments a label names: ours ``(… tuned: ARGS, CONN_MAX_AGE…)`` or
    ``(… as dot: ARGS)``, the floor's ``floor (Django PINS; ARGS)``; gunicorn's arguments, or
    ``uwsgi`` and uWSGI's."""
    match = re.search(r"(?:tuned|as dot): ((?:uwsgi )?-[^,)]*)", peer) or re.search(
        r"; ((?:uwsgi )?-[^)]*)\)$", peer
    )
    return " ".join(match.group(1).split()) if match else None


def same_server(floor_peer: str, our_peer: str) -> bool:
    """Whether a floor row ran the server set-up of one of our rows (P10, P11): the same
    server and arguments; labels from before they were named there (``tuned: gthread``) pair
    the floor with gthread workers with the tuned target."""
    floor_args, our_args = _server_args(floor_peer), _server_args(our_peer)
    if floor_args is not None and our_args is not None:
        return floor_args == our_args
    if "uwsgi" in floor_peer or "uwsgi" in our_peer:
        return False  # only labels from before uWSGI rows existed fall back
    return ("gthread" in floor_peer) == (_config(our_peer) == "tuned")


def is_jwt_peer(peer: str) -> bool:
    """Our P10 rows: ``peerbench_target.sh`` puts ``jwt`` in their peer label."""
    return peer.startswith("ours-") and " jwt " in peer


def _pool_size(peer: str) -> int | None:
    match = re.search(r"(\d+)-token pool", peer)
    return int(match.group(1)) if match else None


def p10_rows(measured: list[dict[str, Any]], out_dir: Path) -> list[dict[str, Any]]:
    """P10: each JWT GET of ours against floor_tuned's DRF GET and nop's bound GET (same
    connection count, same run)."""
    rows: list[dict[str, Any]] = []
    for mine in [r for r in measured if r["scenario"] == P10_SCENARIO and is_jwt_peer(r["peer"])]:
        same = [r for r in measured if r["conns"] == mine["conns"]]
        floor = next(
            (
                r
                for r in same
                if r["scenario"] == FLOOR_OF[P10_SCENARIO] and same_server(r["peer"], mine["peer"])
            ),
            None,
        )
        nop = next(
            (r for r in same if r["scenario"] == P10_SCENARIO and r["peer"].startswith("nop-")),
            None,
        )
        opaque = next(
            (
                r
                for r in same
                if r["scenario"] == P10_SCENARIO
                and r["peer"].startswith("ours-")
                and "bound token" in r["peer"]
                and _config(r["peer"]) == _config(mine["peer"])
            ),
            None,
        )
        pool = _pool_size(mine["peer"])
        base = {
            "id": "P10",
            "scenario": P10_SCENARIO,
            "ours": mine["peer"],
            "conns": mine["conns"],
            "pool": pool,
            "results": str(out_dir),
            "load_average": load_average(),
        }
        if floor is None or not floor["rps"]:
            rows.append(
                {**base, "peer": "ours jwt / floor", "skipped": "no floor_tuned GET in this run"}
            )
        else:
            ratio = mine["rps"] / floor["rps"]
            misses = []
            if ratio < P10_FLOOR_GOAL:
                misses.append(f"{ratio:.2f}x < {P10_FLOOR_GOAL:g}x")
            if pool is None or pool < P10_MIN_POOL:
                misses.append(f"pool of {pool} tokens < {P10_MIN_POOL}")
            if mine["errors"]:
                misses.append(f"{mine['errors']} errors")
            rows.append(
                {
                    **base,
                    "peer": "ours jwt / floor DRF GET, same server set-up",
                    "floor": floor["peer"],
                    "ratio": round(ratio, 3),
                    "aim": f">= {P10_FLOOR_GOAL:g}x",
                    "verdict": "pass" if not misses else "miss: " + ", ".join(misses),
                }
            )
        if nop is not None and nop["rps"]:
            ratio = mine["rps"] / nop["rps"]
            rows.append(
                {
                    **base,
                    "peer": "ours jwt / nop bound GET",
                    "nop": nop["peer"],
                    "ratio": round(ratio, 3),
                    "aim": "> 1x (beat it)",
                    "verdict": "meets the aim" if ratio > 1 else f"short: {ratio:.2f}x",
                }
            )
        if opaque is not None and opaque["rps"]:
            rows.append(
                {
                    **base,
                    "peer": "ours jwt / ours opaque bound GET, same set-up",
                    "ratio": round(mine["rps"] / opaque["rps"], 3),
                    "aim": "(record)",
                    "verdict": "-",
                }
            )
    return rows


def parse_raw(path: Path) -> dict[tuple[str, str, int], dict[str, Any]]:
    runs: dict[tuple[str, str, int], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        scenario, peer, conns, _rep, rps, p50, p99, n, non2xx, sockerr = line.split("\t")
        entry = runs.setdefault(
            (scenario, peer, int(conns)), {"rps": [], "p50": [], "p99": [], "n": 0, "err": 0}
        )
        entry["rps"].append(float(rps))
        entry["p50"].append(float(p50))
        entry["p99"].append(float(p99))
        entry["n"] += int(n)
        entry["err"] += int(non2xx) + int(sockerr)
    return runs


#: P7b (issue #16): the bound GET vs DOT's plain bearer GET on the same server, in every run.
GOAL_P7B = 0.95
#: One pair of 10 s runs spreads as far as the goal's margin; fewer pairs are not graded.
P7B_MIN_PAIRS = 4


def p7b_row(scenario: str, mine: dict[str, Any], dot: dict[str, Any]) -> dict[str, Any]:
    """``peerbench_target.sh`` runs the two GETs interleaved (A B, B A, …, one run each; at
    least 4 pairs, ``OURS_P7B_PAIRS``), so run *i* of one side pairs with run *i* of the other.
    The run's ratio is the median of the pair ratios, graded against the goal ("in every run":
    every peerbench run). Beside it, the worst pair and the A/A spread: the ratio of each side's
    run to its next run, the same scenario on the same server, which is what the machine alone
    does to a pair (docs/performance.md, "How much one run tells")."""
    bound, plain = mine.get("rps_runs", []), dot.get("rps_runs", [])
    pairs = [a / b for a, b in zip(bound, plain, strict=False) if b]
    if not pairs:
        pairs = [mine["rps"] / dot["rps"]]
    same = [
        later / earlier
        for runs in (bound, plain)
        for earlier, later in itertools.pairwise(runs)
        if earlier
    ]
    ratio = statistics.median(pairs)
    if len(pairs) < P7B_MIN_PAIRS:
        verdict = f"not graded: {len(pairs)} pairs < {P7B_MIN_PAIRS}"
    elif ratio >= GOAL_P7B:
        verdict = "meets the aim"
    else:
        verdict = f"short: median of {len(pairs)} pairs {ratio:.3f}x < {GOAL_P7B:g}x"
    row = {
        "id": "P7b",
        "scenario": scenario,
        "peer": "ours bound / DOT plain, same server",
        "ours": mine["peer"],
        "conns": mine["conns"],
        "ratio": round(ratio, 3),
        "pair_ratios": [round(r, 3) for r in pairs],
        "worst_pair": round(min(pairs), 3),
        "aim": f">= {GOAL_P7B:g}x in every run (median of the run's pairs)",
        "verdict": verdict,
    }
    if same:
        row["aa_spread"] = [round(min(same), 3), round(max(same), 3)]
    return row


#: The goals graded on gunicorn's tuned target; ours_uwsgi's rows of them are reported beside.
GRADED_ON_GUNICORN = ("P7a", "P7b", "P10")
REPORTED = " (reported: graded on gunicorn)"


def mark_uwsgi_rows(rows: list[dict[str, Any]]) -> None:
    """ours_uwsgi's comparison rows (``ours`` names its peer): the id ends in ``-uwsgi``, and a
    row of a graded goal says it is reported (P7a's verdict: "would pass" or "short")."""
    for row in rows:
        if _config(row.get("ours", "")) != "uwsgi":
            continue
        if row["id"] in GRADED_ON_GUNICORN and row.get("aim", "").startswith(">="):
            row["aim"] += REPORTED  # the goal's own row, not the ones recorded beside it
        if row["id"] == "P7a":
            ratio = row["ratio"]
            row.update(
                peer="ours tuned on uWSGI / nop (reported)",
                verdict="would pass" if ratio >= P7A_GOAL else f"short: {ratio:.2f}x",
            )
        row["id"] += "-uwsgi"


def rows_from(out_dir: Path) -> list[dict[str, Any]]:
    """The rows of one peerbench result folder (its ``raw.tsv`` and ``table.md``)."""
    runs = parse_raw(out_dir / "raw.tsv")
    rows: list[dict[str, Any]] = []
    for (scenario, peer, conns), entry in sorted(runs.items()):
        rows.append(
            {
                "id": "P10" if is_jwt_peer(peer) else "P7",
                "scenario": scenario,
                "peer": peer,
                "conns": conns,
                "runs": len(entry["rps"]),
                "rps": round(statistics.median(entry["rps"]), 1),
                "rps_runs": [round(value, 1) for value in entry["rps"]],
                "p50_ms": round(statistics.median(entry["p50"]), 2),
                "p99_ms": round(statistics.median(entry["p99"]), 2),
                "requests": entry["n"],
                "errors": entry["err"],
            }
        )
    measured = [r for r in rows if "rps" in r]
    for scenario, aim in AIMS.items():
        for mine in [r for r in measured if r["scenario"] == scenario and "bound" in r["peer"]]:
            if not mine["peer"].startswith("ours-") or is_jwt_peer(mine["peer"]):
                continue  # P10's JWT rows are set beside the floor and nop below
            same = [
                r for r in measured if r["scenario"] == scenario and r["conns"] == mine["conns"]
            ]
            nop = next((r for r in same if r["peer"].startswith("nop-")), None)
            dot = next(
                (
                    r
                    for r in same
                    if "DOT OAuth2Authentication" in r["peer"]
                    and _config(r["peer"]) == _config(mine["peer"])
                ),
                None,
            )
            if dot is not None and dot["rps"]:
                rows.append(p7b_row(scenario, mine, dot))  # needs no nop row
            if nop is None or not nop["rps"]:
                continue
            ratio = mine["rps"] / nop["rps"]
            if scenario == P7A_SCENARIO and _config(mine["peer"]) in ("tuned", "uwsgi"):
                rows.append(
                    {
                        "id": "P7a",
                        "scenario": scenario,
                        "peer": "ours tuned / nop (goal)",
                        "ours": mine["peer"],
                        "conns": mine["conns"],
                        "ratio": round(ratio, 3),
                        "aim": f">= {P7A_GOAL:g}x",
                        "verdict": "pass" if ratio >= P7A_GOAL else f"miss: {ratio:.2f}x",
                    }
                )
            rows.append(
                {
                    "id": "P7",
                    "scenario": scenario,
                    "peer": "ours / nop",
                    "ours": mine["peer"],
                    "conns": mine["conns"],
                    "ratio": round(ratio, 3),
                    "aim": f">= {aim:g}x",
                    "verdict": "meets the aim"
                    if ratio >= aim
                    else f"short: {ratio:.2f}x < {aim:g}x",
                    "results": str(out_dir),
                    "load_average": load_average(),
                }
            )
            floor = next(
                (
                    r
                    for r in measured
                    if r["scenario"] == FLOOR_OF[scenario]
                    and r["conns"] == mine["conns"]
                    and same_server(r["peer"], mine["peer"])
                ),
                None,
            )
            if floor is not None and floor["rps"]:
                floor_ratio = mine["rps"] / floor["rps"]
                floor_aim = FLOOR_AIMS.get(scenario)
                rows.append(
                    {
                        "id": "P11",
                        "scenario": scenario,
                        "peer": "ours / floor, same server set-up",
                        "ours": mine["peer"],
                        "floor": floor["peer"],
                        "conns": mine["conns"],
                        "ratio": round(floor_ratio, 3),
                        "aim": f">= {floor_aim:g}x" if floor_aim else "(record)",
                        "verdict": "-"
                        if not floor_aim
                        else ("meets the aim" if floor_ratio >= floor_aim else "short"),
                    }
                )
    rows += p10_rows(measured, out_dir)
    mark_uwsgi_rows(rows)
    skipped = [
        line.split("\t")
        for line in (out_dir / "raw.tsv").read_text().splitlines()
        if line.startswith("# SKIPPED")
    ]
    for _mark, scenario, peer, reason in (entry[:4] for entry in skipped if len(entry) >= 4):
        rows.append(
            {
                "id": "P10" if is_jwt_peer(peer) else "P7",
                "scenario": scenario,
                "peer": peer,
                "conns": 0,
                "skipped": f"peerbench skipped it: {reason}",
            }
        )
    if (
        not any(r["id"] == "P10" for r in rows)
        and "ours_tuned" in str(os.environ.get("PEERBENCH_TARGETS", DEFAULT_TARGETS)).split()
    ):
        rows.append(
            {
                "id": "P10",
                "scenario": P10_SCENARIO,
                "peer": "ours jwt",
                "conns": 0,
                "skipped": "no JWT GET in this run (OURS_JWT=0?), see the peerbench log",
            }
        )
    header_file = out_dir / "table.md"
    if header_file.exists():
        rows.append(
            {
                "id": "P7",
                "scenario": "(peerbench header)",
                "peer": "",
                "conns": 0,
                "header": header_file.read_text().split("\n\n", 1)[0],
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'scenario':<44} {'peer':<52} {'conns':>5} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if "header" in r:
            lines.append(r["header"])
        elif "skipped" in r:
            lines.append(f"{r['scenario']:<44} {r['peer']:<52} SKIPPED: {r['skipped']}")
        elif "ratio" in r:
            lines.append(
                f"{r['scenario']:<44} {r['peer']:<52} {r['conns']:>5} ratio {r['ratio']:.3f}  "
                f"[{r['id']}] aim {r['aim']}: {r['verdict']}"
                + (f"  (pairs: {r['pair_ratios']})" if "pair_ratios" in r else "")
                + (f"  (A/A: {r['aa_spread'][0]}-{r['aa_spread'][1]})" if "aa_spread" in r else "")
            )
        else:
            lines.append(
                f"{r['scenario']:<44} {r['peer']:<52} {r['conns']:>5} {r['rps']:>8.1f} "
                f"{r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['errors']:>6}"
            )
    return "\n".join(lines)
