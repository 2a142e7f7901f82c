"""Token endpoint, in process: certificate client authentication vs client secrets (P1, P2).

Every row is a ``client_credentials`` request (``scope=read``) through Django's WSGI handler to
DOT's real ``TokenView`` with our validator, an access token written to SQLite (in memory) per
request. Interleaved pairs (A B, B A, …); the ratio is A/B per pair, median and p25–p75.

* **P1**: B = ``client_secret_basic`` with DOT's default hashed secret (Django's default
  hasher, PBKDF2-SHA256) vs A = ``tls_client_auth``; reported as B/A ("times faster").
  Goal: ≥ 100× (issue #10).
* **P2**: A = ``tls_client_auth`` (SAN dns, validation cache warm) vs B = ``client_secret_basic``
  with an unhashed secret (``hash_client_secret=False``). Goal: A/B ≤ 1.10. Beside it, for the
  record: subject DN, self-signed (``jwks`` with ``x5c``), the validation cache cleared before
  every request (``cold``), and a certificate-bound token (one more INSERT).

``python -m benchmarks.token_endpoint --profile ROW`` prints a cProfile of one row's A side.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
from typing import Any

from benchmarks import Arm, compare, load_average

NAME = "token_endpoint"
TITLE = "Token endpoint in process (WSGI handler, DOT TokenView, SQLite in memory), ms per request"
GOAL_P1 = 100.0
GOAL_P2 = 1.10
NOTES = [
    f"P1 goal: hashed client_secret_basic / tls_client_auth >= {GOAL_P1:g}x (median of per-pair "
    "ratios); P2 goal: tls_client_auth / unhashed secret <= "
    f"{GOAL_P2:.2f} (median of per-pair ratios)",
    "interleaved pairs (A B, B A, ...), ratio per pair, median and p25-p75; 'miss' is reported, "
    "never enforced",
    "request: POST /o/token/ client_credentials scope=read through django.core.handlers.wsgi."
    "WSGIHandler (middleware of tests.settings), nginx source, certificate EC P-256 issued by a "
    "trusted EC P-256 CA",
]


def hasher_description() -> str:
    from django.contrib.auth.hashers import get_hasher

    hasher = get_hasher()
    iterations = getattr(hasher, "iterations", None)
    return f"{hasher.algorithm}" + (f", {iterations:,} iterations" if iterations else "")


def goal_text(row_id: str) -> str:
    return {"P1": f"A/B >= {GOAL_P1:g}", "P2": f"A/B <= {GOAL_P2:.2f}"}.get(row_id, "(record)")


def verdict(row_id: str, ratio: float) -> str:
    if row_id == "P1":
        return "pass" if ratio >= GOAL_P1 else f"miss: {ratio:.1f}x < {GOAL_P1:g}x"
    if row_id == "P2":
        return "pass" if ratio <= GOAL_P2 else f"miss: {ratio:.3f} > {GOAL_P2:.2f}"
    return "-"


def build_arms() -> dict[str, Arm]:
    """Every side of every row, each with its own application; one request checked each."""
    from benchmarks import inprocess as ip
    from django_oauth_mtls.validation import validation_cache

    fx = ip.fixtures()
    token = ip.checked_token_call
    apps = {
        "hashed": ip.make_app("bench-hashed", hashed=True),
        "plain": ip.make_app("bench-plain"),
        "san_dns": ip.make_app(
            "bench-san-dns", "tls_client_auth", tls_client_auth_san_dns=ip.SAN_DNS
        ),
        "dn": ip.make_app(
            "bench-dn",
            "tls_client_auth",
            tls_client_auth_subject_dn=fx.pki_client.cert.subject.rfc4514_string(),
        ),
        "self_signed": ip.make_app(
            "bench-self-signed",
            "self_signed_tls_client_auth",
            jwks=ip.self_signed_jwks(fx.self_signed),
        ),
        "bound": ip.make_app(
            "bench-bound",
            "tls_client_auth",
            tls_client_auth_san_dns=ip.SAN_DNS,
            tls_client_certificate_bound_access_tokens=True,
        ),
    }
    san_env = ip.token_environ_factory(apps["san_dns"], certificate=fx.pki_client)

    def cold() -> dict[str, Any]:
        validation_cache.clear()
        return san_env()

    arms = {
        "hashed": Arm(
            "client_secret_basic, hashed secret (DOT default)",
            token,
            ip.token_environ_factory(apps["hashed"], basic_secret=ip.SECRET),
        ),
        "plain": Arm(
            "client_secret_basic, hash_client_secret=False",
            token,
            ip.token_environ_factory(apps["plain"], basic_secret=ip.SECRET),
        ),
        "san_dns": Arm("tls_client_auth, SAN dns, validation cache warm", token, san_env),
        "dn": Arm(
            "tls_client_auth, subject DN, validation cache warm",
            token,
            ip.token_environ_factory(apps["dn"], certificate=fx.pki_client),
        ),
        "self_signed": Arm(
            "self_signed_tls_client_auth (jwks x5c)",
            token,
            ip.token_environ_factory(apps["self_signed"], certificate=fx.self_signed),
        ),
        "cold": Arm("tls_client_auth, SAN dns, validation cache cleared", token, cold),
        "bound": Arm(
            "tls_client_auth, SAN dns, certificate-bound token",
            token,
            ip.token_environ_factory(apps["bound"], certificate=fx.pki_client),
        ),
    }
    for arm in arms.values():
        arm.call(arm.prepare())
    return arms


#: (row id, label, A, B, pairs full, pairs quick)
ROWS: list[tuple[str, str, str, str, int, int]] = [
    ("P1", "hashed secret vs tls_client_auth", "hashed", "san_dns", 20, 2),
    ("P2", "tls_client_auth (SAN dns) vs unhashed secret", "san_dns", "plain", 600, 20),
    ("P2-dn", "tls_client_auth (subject DN) vs unhashed secret", "dn", "plain", 400, 10),
    ("P2-self", "self_signed_tls_client_auth vs unhashed secret", "self_signed", "plain", 400, 10),
    ("P2-cold", "tls_client_auth, cold validation vs unhashed", "cold", "plain", 300, 10),
    ("P2-bound", "tls_client_auth + bound token vs unhashed", "bound", "plain", 300, 10),
]


def run(quick: bool) -> list[dict[str, Any]]:
    arms = build_arms()
    rows = []
    for row_id, label, a, b, full_pairs, quick_pairs in ROWS:
        pairs = quick_pairs if quick else full_pairs
        warmup = 1 if row_id == "P1" else (3 if quick else 20)
        result = compare(arms[a], arms[b], pairs, warmup=warmup)
        rows.append(
            {
                "id": row_id,
                "row": label,
                **result,
                "goal": goal_text(row_id),
                "verdict": verdict(row_id, result["ratio_median"]),
                "hasher": hasher_description() if row_id == "P1" else "",
                "load_average": load_average(),
            }
        )
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'id':<9} {'A':<50} {'B':<46} {'A ms':>9} {'B ms':>8} "
        f"{'A/B med':>8} {'p25-p75':>17} {'pairs':>5}  goal / verdict"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        spread = f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}"
        lines.append(
            f"{r['id']:<9} {r['a']:<50} {r['b']:<46} {r['a_ms']:>9.3f} {r['b_ms']:>8.3f} "
            f"{r['ratio_median']:>8.3f} {spread:>17} {r['pairs']:>5}  "
            f"{r['goal']}: {r['verdict']}  (load {r['load_average']})"
        )
        if r["hasher"]:
            lines.append(f"{'':<9} hasher: {r['hasher']}")
    return "\n".join(lines)


# --- profiling -------------------------------------------------------------------------------


def profile(arm_name: str, iterations: int) -> None:
    arms = build_arms()
    arm = arms[arm_name]
    profiler = cProfile.Profile()
    for _ in range(iterations):
        argument = arm.prepare()
        profiler.enable()
        arm.call(argument)
        profiler.disable()
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.token_endpoint")
    parser.add_argument(
        "--profile",
        required=True,
        choices=("hashed", "plain", "san_dns", "dn", "self_signed", "cold", "bound"),
    )
    parser.add_argument("--iterations", type=int, default=300)
    args = parser.parse_args(argv)
    profile(args.profile, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
