"""JWT access tokens in process: local validation at a resource (P8), minting at the token
endpoint (P9). Issue #15.

Same settings, WSGI handler and PKI as P1–P3 (``benchmarks.inprocess``); each row runs under
``OAUTH2_MTLS`` with one access-token signing key (``JWT_SIGNING_KEYS``, a key file written at
start: EC P-256 ``ES256``, RSA-2048 ``PS256``, Ed25519 ``EdDSA``, as ``mtls_jwt_key generate``
makes them), ``JWT_AUDIENCE`` = ``RESOURCE_SERVER_AUDIENCE``, DOT's ``OIDC_ISS_ENDPOINT`` and the
row's ``RESOURCE_SERVER_TOKEN_VALIDATION``. No verification cache exists in the package: every
request parses the JWS and verifies its signature.

* **P8**: A = ``GET /test/mtls-any/`` (``MTLSOAuth2Authentication`` + ``TokenHasScope``) with a
  certificate-bound JWT and its certificate, ``RESOURCE_SERVER_TOKEN_VALIDATION="jwt"``; B =
  ``GET /bench/dot-stock/``: DOT's ``OAuth2Authentication`` + ``TokenHasScope`` with DOT's own
  ``OAuth2Validator`` (``benchmarks/urls.py``; in jwt mode ours refuses opaque tokens) and a
  plain opaque token, looked up in the database. **A distinct token per request on both sides**:
  a pool is minted through the real token endpoint before timing, every token drawn once
  (warm-up, timed pairs and the query sample). Goal: A/B ≤ 0.6 and 0 queries vs 1
  (``CaptureQueriesContext`` on a sample of requests of each side). ES256, plus PS256 and EdDSA
  as rows of their own; ``P8-mixed`` (record): ``jwt_or_database`` with B = ``/test/dot-plain/``
  (P3's B: DOT's class, our validator's database path). ``P8-floor``, ``P8-floor-PS256`` (record):
  B = ``/bench/floor/``, an empty DRF view without authentication: in process, the cost of A
  above what P10 compares with (peerbench's ``floor``).
* **P9**: ``POST /o/token/`` ``client_credentials`` with ``tls_client_auth`` (SAN dns,
  validation cache warm: P2's A), A = the client's ``access_token_format="jwt"`` vs B =
  ``"opaque"``, clients otherwise identical. Goal: A/B ≤ 1.15. ES256, plus PS256 and EdDSA;
  ``P9-bound`` (record): both clients with certificate-bound tokens (the JWT carries ``cnf``).

``python -m benchmarks.jwt --profile jwt_get|dot_stock|jwt_token|opaque_token [--alg PS256]``
prints a cProfile of one side.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import json
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks import Arm, compare, load_average

NAME = "jwt"
TITLE = "JWT access tokens in process (WSGI handler, SQLite in memory), ms per request"
GOAL_P8 = 0.6
GOAL_P9 = 1.15
ISSUER = "https://as.bench.example"
AUDIENCE = "https://api.bench.example"
#: The row's ``alg`` → ``mtls_jwt_key generate --type``.
KEY_TYPES = {"ES256": "ec-p256", "PS256": "rsa", "EdDSA": "ed25519"}
VERIFICATION_CACHE = "none (the package has none: every request verifies the signature)"
NOTES = [
    f"P8 goal: bound JWT + certificate, jwt mode / DOT OAuth2Authentication + DOT's "
    f"OAuth2Validator with an opaque token <= {GOAL_P8:g} (median of per-pair ratios), 0 "
    "queries vs 1; a distinct token per request on both sides (pools minted first, each token "
    "drawn once)",
    f"P9 goal: token endpoint tls_client_auth, jwt format / opaque <= {GOAL_P9:.2f}",
    "key type per row (ES256 is the default of mtls_jwt_key); verification cache: none",
    "interleaved pairs (A B, B A, ...); queries counted with CaptureQueriesContext on a sample "
    "of requests of each side",
    "P8's B is /bench/dot-stock/ (benchmarks/urls.py): in jwt mode our validator refuses opaque "
    "tokens, so DOT's own validator serves them, as in an API without django-oauth-mtls",
]

_state: dict[str, Any] = {}


# --- set-up -------------------------------------------------------------------------------------


def key_file(alg: str) -> str:
    """A private key file for ``alg`` (written once per process, PKCS#8 PEM, as
    ``mtls_jwt_key generate`` writes it)."""
    files: dict[str, str] = _state.setdefault("key_files", {})
    if alg not in files:
        from cryptography.hazmat.primitives import serialization

        from django_oauth_mtls.management.commands.mtls_jwt_key import KEY_TYPES as MAKERS

        directory = _state.get("key_dir")
        if directory is None:
            directory = _state["key_dir"] = tempfile.mkdtemp(prefix="django-oauth-mtls-bench-jwt-")
        path = Path(directory) / f"{alg}.pem"
        private = MAKERS[KEY_TYPES[alg]]()
        path.write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        path.chmod(0o600)
        files[alg] = str(path)
    return files[alg]


@contextmanager
def jwt_settings(alg: str, mode: str) -> Iterator[None]:
    """The fixtures' ``OAUTH2_MTLS`` plus the JWT settings, one signing key of type ``alg``."""
    from benchmarks import inprocess as ip

    ip.fixtures()
    from django.conf import settings
    from django.test import override_settings

    from django_oauth_mtls import jwt_keys

    mtls = {
        **settings.OAUTH2_MTLS,
        "ACCESS_TOKEN_FORMAT": "opaque",  # per client: MTLSClient.access_token_format
        "JWT_SIGNING_KEYS": [key_file(alg)],
        "JWT_AUDIENCE": AUDIENCE,
        "RESOURCE_SERVER_TOKEN_VALIDATION": mode,
        "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
    }
    provider = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": ISSUER}
    with override_settings(OAUTH2_MTLS=mtls, OAUTH2_PROVIDER=provider):
        loaded = jwt_keys.signing_key()
        if loaded is None or loaded[0].alg != alg:
            raise RuntimeError(f"the {alg} key does not sign: {loaded!r}")
        yield


def applications() -> dict[str, Any]:
    """The clients of P8 and P9 (created once; format and binding per client)."""
    if "apps" in _state:
        return _state["apps"]  # type: ignore[no-any-return]
    from benchmarks import inprocess as ip

    def tls(name: str, fmt: str, bound: bool) -> Any:
        return ip.make_app(
            name,
            "tls_client_auth",
            tls_client_auth_san_dns=ip.SAN_DNS,
            tls_client_certificate_bound_access_tokens=bound,
            access_token_format=fmt,
        )

    _state["apps"] = {
        "bound_jwt": tls("jwt-bound-jwt", "jwt", True),
        "bound_opaque": tls("jwt-bound-opaque", "opaque", True),
        "san_jwt": tls("jwt-san-jwt", "jwt", False),
        "san_opaque": tls("jwt-san-opaque", "opaque", False),
        "plain": ip.make_app("jwt-plain"),  # client_secret_basic, unhashed, opaque
    }
    return _state["apps"]  # type: ignore[no-any-return]


def _b64json(segment: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))  # type: ignore[no-any-return]


def check_minted(token: str, alg: str | None, x5t_s256: str | None) -> None:
    """A JWT of ``alg`` with ``cnf`` exactly when bound, or an opaque token (``alg`` None).
    Shape only: the resource verifies every one of them in the timed call (and must answer
    200)."""
    if alg is None:
        if "." in token:
            raise RuntimeError("an opaque token was expected, got a JWS")
        return
    header_b64, payload_b64, _signature = token.split(".")
    header, claims = _b64json(header_b64), _b64json(payload_b64)
    if header.get("alg") != alg or header.get("typ") != "at+jwt":
        raise RuntimeError(f"unexpected JWT header {header!r} (wanted alg {alg})")
    expected = {"x5t#S256": x5t_s256} if x5t_s256 else None
    if claims.get("cnf") != expected or claims.get("aud") != AUDIENCE:
        raise RuntimeError(f"unexpected JWT claims {claims!r}")


def mint(app: Any, count: int, *, alg: str | None, bound: bool = False, **how: Any) -> list[str]:
    """``count`` access tokens through the real token endpoint (``how``: ``certificate=`` or
    ``basic_secret=``), each checked with ``check_minted``."""
    from benchmarks import inprocess as ip

    make = ip.token_environ_factory(app, **how)
    x5t = how["certificate"].x5t_s256 if bound else None
    tokens = []
    for _ in range(count):
        token = str(json.loads(ip.checked_token_call(make()).body)["access_token"])
        check_minted(token, alg, x5t)
        tokens.append(token)
    if len(set(tokens)) != len(tokens):
        raise RuntimeError("the token endpoint answered the same token twice")
    return tokens


class Pool:
    """Tokens handed out once each: no request presents a token an earlier request did."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.drawn = 0

    def draw(self) -> str:
        if self.drawn >= len(self.tokens):
            raise RuntimeError(f"token pool exhausted ({len(self.tokens)} tokens)")
        token = self.tokens[self.drawn]
        self.drawn += 1
        return token


def get_factory(path: str, pool: Pool, certificate_field: str | None) -> Callable[[], Any]:
    from benchmarks import inprocess as ip

    def make() -> dict[str, Any]:
        headers = {"HTTP_AUTHORIZATION": f"Bearer {pool.draw()}"}
        if certificate_field is not None:
            headers["HTTP_X_SSL_CLIENT_CERT"] = certificate_field
        return ip.environ("GET", path, headers=headers)

    return make


def query_sample(arm: Arm, requests: int) -> list[list[str]]:
    """The SQL of ``requests`` requests of ``arm`` (one ``CaptureQueriesContext`` each)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    sample = []
    for _ in range(requests):
        argument = arm.prepare()
        with CaptureQueriesContext(connection) as captured:
            arm.call(argument)
        sample.append([q["sql"] for q in captured.captured_queries])
    return sample


# --- P8: DRF GET ---------------------------------------------------------------------------------

#: B of P8-floor: an empty DRF view (``benchmarks/urls.py``).
FLOOR = "/bench/floor/"
#: (row id, alg, mode, B path, pairs full, pairs quick); P8-mixed and P8-floor* are for the
#: record (P8-floor: what A costs above an empty DRF view, in process; P10's goal with wrk).
P8_ROWS: list[tuple[str, str, str, str, int, int]] = [
    ("P8", "ES256", "jwt", "/bench/dot-stock/", 2000, 30),
    ("P8-PS256", "PS256", "jwt", "/bench/dot-stock/", 1000, 10),
    ("P8-EdDSA", "EdDSA", "jwt", "/bench/dot-stock/", 1000, 10),
    ("P8-mixed", "ES256", "jwt_or_database", "/test/dot-plain/", 1000, 10),
    ("P8-floor", "ES256", "jwt", FLOOR, 1000, 10),
    ("P8-floor-PS256", "PS256", "jwt", FLOOR, 1000, 10),
]
B_LABELS = {
    "/bench/dot-stock/": "DOT OAuth2Authentication + OAuth2Validator, opaque (db)",
    "/test/dot-plain/": "DOT OAuth2Authentication, our validator, opaque (db)",
    FLOOR: "empty DRF APIView, no authentication (P10's floor)",
}
QUERY_SAMPLE = 5


def p8_arms(alg: str, b_path: str, tokens: int) -> tuple[Arm, Arm]:
    """Both sides with ``tokens`` fresh tokens each (call under ``jwt_settings``)."""
    from benchmarks import inprocess as ip

    fx = ip.fixtures()
    apps = applications()
    jwts = mint(apps["bound_jwt"], tokens, alg=alg, bound=True, certificate=fx.pki_client)
    opaque = (
        [] if b_path == FLOOR else mint(apps["plain"], tokens, alg=None, basic_secret=ip.SECRET)
    )
    a = Arm(
        f"MTLSOAuth2Authentication, bound JWT {alg} + certificate",
        ip.checked_get,
        get_factory("/test/mtls-any/", Pool(jwts), fx.pki_client.nginx()),
    )
    if b_path == FLOOR:
        b = Arm(B_LABELS[b_path], ip.checked_get, lambda: ip.environ("GET", FLOOR))
    else:
        b = Arm(B_LABELS[b_path], ip.checked_get, get_factory(b_path, Pool(opaque), None))
    return a, b


def p8_row(
    row_id: str, alg: str, mode: str, b_path: str, pairs: int, quick: bool
) -> dict[str, Any]:
    warmup = 5 if quick else 50
    samples = 2 if quick else QUERY_SAMPLE
    tokens = warmup + pairs + samples
    with jwt_settings(alg, mode):
        started = time.monotonic()
        a, b = p8_arms(alg, b_path, tokens)
        minted = time.monotonic() - started
        result = compare(a, b, pairs, warmup=warmup)
        a_sample, b_sample = query_sample(a, samples), query_sample(b, samples)
    a_counts, b_counts = [len(q) for q in a_sample], [len(q) for q in b_sample]
    graded = mode == "jwt" and b_path != FLOOR
    misses = []
    if graded:
        if result["ratio_median"] > GOAL_P8:
            misses.append(f"{result['ratio_median']:.3f} > {GOAL_P8:g}")
        if set(a_counts) != {0}:
            misses.append(f"A queries {a_counts} (goal 0)")
        if set(b_counts) != {1}:
            misses.append(f"B queries {b_counts} (goal 1)")
    return {
        "id": row_id,
        "key": alg,
        "mode": mode,
        "verification_cache": VERIFICATION_CACHE,
        **result,
        "a_queries": max(a_counts),
        "b_queries": max(b_counts),
        "a_queries_sample": a_counts,
        "b_queries_sample": b_counts,
        "a_sql": a_sample[0],
        "b_sql": b_sample[0],
        "distinct_tokens_per_side": tokens if b_path != FLOOR else None,
        "distinct_tokens_a": tokens,
        "mint_seconds": round(minted, 2),
        "goal": f"A/B <= {GOAL_P8:g}, 0 vs 1 queries" if graded else "(record)",
        "verdict": ("pass" if not misses else "miss: " + ", ".join(misses)) if graded else "-",
        "load_average": load_average(),
    }


# --- P9: token endpoint --------------------------------------------------------------------------

#: (row id, alg, bound, pairs full, pairs quick); P9-bound is for the record.
P9_ROWS: list[tuple[str, str, bool, int, int]] = [
    ("P9", "ES256", False, 600, 20),
    ("P9-PS256", "PS256", False, 400, 10),
    ("P9-EdDSA", "EdDSA", False, 400, 10),
    ("P9-bound", "ES256", True, 300, 10),
]


def p9_arms(alg: str, bound: bool) -> tuple[Arm, Arm]:
    from benchmarks import inprocess as ip

    fx = ip.fixtures()
    apps = applications()
    a_app = apps["bound_jwt" if bound else "san_jwt"]
    b_app = apps["bound_opaque" if bound else "san_opaque"]
    kind = "bound" if bound else "SAN dns"
    a = Arm(
        f"tls_client_auth ({kind}), jwt {alg}",
        ip.checked_token_call,
        ip.token_environ_factory(a_app, certificate=fx.pki_client),
    )
    b = Arm(
        f"tls_client_auth ({kind}), opaque",
        ip.checked_token_call,
        ip.token_environ_factory(b_app, certificate=fx.pki_client),
    )
    # One of each, checked: a JWS of the key's alg (cnf exactly when bound), an opaque token.
    mint(a_app, 1, alg=alg, bound=bound, certificate=fx.pki_client)
    mint(b_app, 1, alg=None, certificate=fx.pki_client)
    return a, b


def p9_row(row_id: str, alg: str, bound: bool, pairs: int, quick: bool) -> dict[str, Any]:
    with jwt_settings(alg, "database"):
        a, b = p9_arms(alg, bound)
        result = compare(a, b, pairs, warmup=3 if quick else 20)
    graded = not bound
    ratio = result["ratio_median"]
    return {
        "id": row_id,
        "key": alg,
        "mode": "-",
        "verification_cache": "-",
        **result,
        "goal": f"A/B <= {GOAL_P9:.2f}" if graded else "(record)",
        "verdict": ("pass" if ratio <= GOAL_P9 else f"miss: {ratio:.3f} > {GOAL_P9:.2f}")
        if graded
        else "-",
        "load_average": load_average(),
    }


def run(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import inprocess as ip

    ip.fixtures()
    rows = []
    for row_id, alg, mode, b_path, full_pairs, quick_pairs in P8_ROWS:
        rows.append(p8_row(row_id, alg, mode, b_path, quick_pairs if quick else full_pairs, quick))
    for row_id, alg, bound, full_pairs, quick_pairs in P9_ROWS:
        rows.append(p9_row(row_id, alg, bound, quick_pairs if quick else full_pairs, quick))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'id':<14} {'key':<6} {'A':<55} {'B':<56} {'A ms':>7} {'B ms':>7} {'A/B med':>8} "
        f"{'p25-p75':>13} {'queries':>7} {'pairs':>5}  goal / verdict"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        spread = f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}"
        q = f"{r['a_queries']}/{r['b_queries']}" if "a_queries" in r else "-"
        lines.append(
            f"{r['id']:<14} {r['key']:<6} {r['a']:<55} {r['b']:<56} {r['a_ms']:>7.3f} "
            f"{r['b_ms']:>7.3f} {r['ratio_median']:>8.3f} {spread:>13} {q:>7} {r['pairs']:>5}  "
            f"{r['goal']}: {r['verdict']}  (load {r['load_average']})"
        )
    return "\n".join(lines)


# --- profiling -------------------------------------------------------------------------------


def profile(side: str, alg: str, iterations: int) -> None:
    mode = "jwt" if side in ("jwt_get", "dot_stock") else "database"
    with jwt_settings(alg, mode):
        if side in ("jwt_get", "dot_stock"):
            a, b = p8_arms(alg, "/bench/dot-stock/", iterations + 20)
            arm = a if side == "jwt_get" else b
        else:
            a, b = p9_arms(alg, bound=False)
            arm = a if side == "jwt_token" else b
        for _ in range(20):
            arm.call(arm.prepare())
        profiler = cProfile.Profile()
        for _ in range(iterations):
            argument = arm.prepare()
            profiler.enable()
            arm.call(argument)
            profiler.disable()
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.jwt")
    parser.add_argument(
        "--profile", required=True, choices=("jwt_get", "dot_stock", "jwt_token", "opaque_token")
    )
    parser.add_argument("--alg", choices=sorted(KEY_TYPES), default="ES256")
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args(argv)
    profile(args.profile, args.alg, args.iterations)
    return 0


if __name__ == "__main__":
    sys.exit(main())
