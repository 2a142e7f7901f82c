"""DRF GET, in process: a certificate-bound token with its certificate vs DOT's plain path (P3).

A = ``GET /test/mtls-any/`` (``MTLSOAuth2Authentication`` + ``TokenHasScope``) with a bound
token and the certificate it is bound to, in the nginx field; B = ``GET /test/dot-plain/``
(DOT's ``OAuth2Authentication`` + ``TokenHasScope``) with an unbound token, no certificate.
Both views are in ``tests/urls.py`` and answer ``{"ok": true}``; both requests go through the
same WSGI handler and middleware (``benchmarks.settings``). Goal (issue #10): A/B ≤ 1.05
(median of interleaved per-pair ratios) with equal query counts (``CaptureQueriesContext``).

For the record: ``/api/whoami/`` (the example's view: ``MTLSOAuth2Authentication`` +
``TokenIsCertificateBound``) against the same B.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from typing import Any

from benchmarks import Arm, compare, load_average

NAME = "drf"
TITLE = "DRF GET in process (WSGI handler, SQLite in memory), ms per request"
GOAL = 1.05
NOTES = [
    f"P3 goal: bound token + certificate through MTLSOAuth2Authentication / DOT "
    f"OAuth2Authentication with a plain token <= {GOAL:.2f} (median of per-pair ratios), equal "
    "query count",
    "interleaved pairs (A B, B A, ...); queries counted with CaptureQueriesContext on one request",
]


def _token(app: Any, *, certificate: Any = None, basic_secret: str | None = None) -> str:
    import json

    from benchmarks import inprocess as ip

    env = ip.token_environ_factory(app, certificate=certificate, basic_secret=basic_secret)()
    return str(json.loads(ip.checked_token_call(env).body)["access_token"])


def build_arms() -> dict[str, Arm]:
    from benchmarks import inprocess as ip

    fx = ip.fixtures()
    bound_app = ip.make_app(
        "drf-bound",
        "tls_client_auth",
        tls_client_auth_san_dns=ip.SAN_DNS,
        tls_client_certificate_bound_access_tokens=True,
    )
    plain_app = ip.make_app("drf-plain")
    bound = _token(bound_app, certificate=fx.pki_client)
    plain = _token(plain_app, basic_secret=ip.SECRET)
    certificate_field = fx.pki_client.nginx()

    def get(path: str, token: str, with_certificate: bool) -> Any:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        if with_certificate:
            headers["HTTP_X_SSL_CLIENT_CERT"] = certificate_field
        return lambda: ip.environ("GET", path, headers=headers)

    arms = {
        "ours": Arm(
            "MTLSOAuth2Authentication, bound token + certificate",
            ip.checked_get,
            get("/test/mtls-any/", bound, True),
        ),
        "whoami": Arm(
            "/api/whoami/ (+ TokenIsCertificateBound)",
            ip.checked_get,
            get("/api/whoami/", bound, True),
        ),
        "dot": Arm(
            "DOT OAuth2Authentication, plain token",
            ip.checked_get,
            get("/test/dot-plain/", plain, False),
        ),
    }
    for arm in arms.values():
        arm.call(arm.prepare())
    return arms


def queries(arm: Arm) -> list[str]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        arm.call(arm.prepare())
    return [q["sql"] for q in captured.captured_queries]


ROWS = [
    ("P3", "ours", "dot", 2000, 30),
    ("P3-whoami", "whoami", "dot", 1000, 20),
]


def run(quick: bool) -> list[dict[str, Any]]:
    arms = build_arms()
    rows = []
    for row_id, a, b, full_pairs, quick_pairs in ROWS:
        result = compare(
            arms[a], arms[b], quick_pairs if quick else full_pairs, warmup=5 if quick else 50
        )
        a_sql, b_sql = queries(arms[a]), queries(arms[b])
        misses = []
        if row_id == "P3":
            if result["ratio_median"] > GOAL:
                misses.append(f"{result['ratio_median']:.3f} > {GOAL:.2f}")
            if len(a_sql) != len(b_sql):
                misses.append(f"{len(a_sql)} queries vs {len(b_sql)}")
        rows.append(
            {
                "id": row_id,
                **result,
                "a_queries": len(a_sql),
                "b_queries": len(b_sql),
                "a_sql": a_sql,
                "b_sql": b_sql,
                "goal": f"A/B <= {GOAL:.2f}, equal queries" if row_id == "P3" else "(record)",
                "verdict": ("pass" if not misses else "miss: " + ", ".join(misses))
                if row_id == "P3"
                else "-",
                "load_average": load_average(),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'id':<10} {'A':<52} {'B':<38} {'A ms':>7} {'B ms':>7} {'A/B med':>8} "
        f"{'p25-p75':>13} {'queries':>7} {'pairs':>5}  goal / verdict"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        spread = f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}"
        q = f"{r['a_queries']}/{r['b_queries']}"
        lines.append(
            f"{r['id']:<10} {r['a']:<52} {r['b']:<38} {r['a_ms']:>7.3f} {r['b_ms']:>7.3f} "
            f"{r['ratio_median']:>8.3f} {spread:>13} {q:>7} {r['pairs']:>5}  "
            f"{r['goal']}: {r['verdict']}  (load {r['load_average']})"
        )
    return "\n".join(lines)


def profile(arm_name: str, iterations: int) -> None:
    arm = build_arms()[arm_name]
    profiler = cProfile.Profile()
    for _ in range(iterations):
        argument = arm.prepare()
        profiler.enable()
        arm.call(argument)
        profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.drf")
    parser.add_argument("--profile", required=True, choices=("ours", "whoami", "dot"))
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args(argv)
    profile(args.profile, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
