"""Resource-server validation among 1,000,000 access tokens vs among 1,000, PostgreSQL (P6).

Two databases of the local cluster (``benchmarks.postgres``): ``mtls_bench_1k`` and
``mtls_bench_1m``, migrated, each with one ``tls_client_auth`` client and N certificate-bound
access tokens (and N ``AccessTokenBinding`` rows) inserted by ``INSERT … SELECT
generate_series`` in one transaction, then ``ANALYZE``. The fill is timed and reported; a
database that already holds the expected tokens for the stored certificate
(``results/pg_scale_client.pem``) is reused (``BENCH_PG_REFILL=1`` forces a refill).

Timed: ``MTLSOAuth2Validator().validate_bearer_token(token, ["read"], request)`` (DOT's path
with our one-query ``_load_access_token``: token, application, user and binding joined; then
the thumbprint check against the certificate in the nginx field), a random token of the set
each call, in a worker process (``python -m benchmarks.pg_scale --worker``, settings
``benchmarks.pg_settings``) whose router sends the call to one database or the other.
Interleaved pairs; goal (issue #10): among 1M / among 1K ≤ 1.2.
"""

from __future__ import annotations

import contextvars
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import Arm, compare, load_average

NAME = "pg_scale"
TITLE = "Resource-server token validation, PostgreSQL: 1,000,000 tokens vs 1,000"
FULL_ONLY = True
GOAL = 1.2
SIZES = {"default": 1_000, "large": 1_000_000}
DATABASES = {"default": "mtls_bench_1k", "large": "mtls_bench_1m"}
ROOT = Path(__file__).resolve().parent.parent
CERT_FILE = Path(__file__).with_name("results") / "pg_scale_client.pem"
FILL_LOG = Path(__file__).with_name("results") / "pg_scale_fill.json"
TOKEN_PREFIX = "pgscale-"
NOTES = [
    f"P6 goal: validate_bearer_token among 1,000,000 tokens / among 1,000 <= {GOAL:g} (median "
    "of interleaved per-pair ratios), a random token of the set per call",
    "validate_bearer_token = one SELECT (access token JOIN application, user, binding) by "
    "token_checksum + the x5t#S256 comparison with the presented certificate",
]

_alias: contextvars.ContextVar[str] = contextvars.ContextVar("pg_scale_alias", default="default")


class Router:
    """Sends every query to the database of the side being timed."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return _alias.get()

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return _alias.get()

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


# --- the worker (inside its own Django) ---------------------------------------------------------


def _certificate() -> Any:
    from cryptography import x509

    from tests import pki

    if CERT_FILE.exists():
        return x509.load_pem_x509_certificate(CERT_FILE.read_bytes())
    root = pki.make_ca("Bench PG Root CA")
    issued = pki.issue(pki.name(CN="pg-scale-client"), issuer=root, dns=("pg.example.com",))
    CERT_FILE.parent.mkdir(parents=True, exist_ok=True)
    CERT_FILE.write_text(issued.pem)
    return issued.cert


def _fill(alias: str, size: int, x5t: str) -> dict[str, Any]:
    """Migrate; insert ``size`` bound tokens unless they are there; seconds it took."""
    from django.core.management import call_command
    from django.db import connections, transaction
    from oauth2_provider.models import get_access_token_model, get_application_model

    from django_oauth_mtls.models import AccessTokenBinding, MTLSClient

    started = time.monotonic()
    call_command("migrate", database=alias, verbosity=0, interactive=False)
    migrated = time.monotonic() - started
    tokens = get_access_token_model().objects.using(alias)
    if (
        os.environ.get("BENCH_PG_REFILL") != "1"
        and tokens.count() == size
        and AccessTokenBinding.objects.using(alias).filter(x5t_s256=x5t).count() == size
    ):
        previous = json.loads(FILL_LOG.read_text()).get(alias, {}) if FILL_LOG.exists() else {}
        return {**previous, "reused": True, "migrate_s": round(migrated, 1)}
    fill_started = time.monotonic()
    with transaction.atomic(using=alias):
        application_model = get_application_model()
        with connections[alias].cursor() as cursor:
            # Every table referring to applications (tokens, bindings, grants) goes with it.
            cursor.execute(f"TRUNCATE {application_model._meta.db_table} CASCADE")
        app = application_model.objects.using(alias).create(
            name="pg-scale",
            client_type="confidential",
            authorization_grant_type="client-credentials",
            client_secret="unused",
            hash_client_secret=False,
        )
        MTLSClient.objects.using(alias).create(
            application=app,
            token_endpoint_auth_method="tls_client_auth",
            tls_client_auth_san_dns="pg.example.com",
            tls_client_certificate_bound_access_tokens=True,
        )
        token_table = get_access_token_model()._meta.db_table
        binding_table = AccessTokenBinding._meta.db_table
        with connections[alias].cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {token_table} (token, token_checksum, expires, scope, "  # noqa: S608
                "application_id, created, updated, resource) "
                "SELECT %s || g, encode(sha256(convert_to(%s || g, 'UTF8')), 'hex'), "
                "now() + interval '10 years', 'read', %s, now(), now(), '[]' "
                "FROM generate_series(1, %s) AS g",
                [TOKEN_PREFIX, TOKEN_PREFIX, app.pk, size],
            )
            cursor.execute(
                f"INSERT INTO {binding_table} (access_token_id, x5t_s256) "  # noqa: S608
                f"SELECT id, %s FROM {token_table}",
                [x5t],
            )
    with connections[alias].cursor() as cursor:
        cursor.execute("ANALYZE")
    fill = {
        "reused": False,
        "migrate_s": round(migrated, 1),
        "fill_s": round(time.monotonic() - fill_started, 1),
        "filled_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_after_fill": load_average(),
    }
    log = json.loads(FILL_LOG.read_text()) if FILL_LOG.exists() else {}
    log[alias] = fill
    FILL_LOG.parent.mkdir(parents=True, exist_ok=True)
    FILL_LOG.write_text(json.dumps(log, indent=2) + "\n")
    return fill


def worker(phase: str, quick: bool) -> dict[str, Any]:
    import django

    django.setup()
    import base64
    import hashlib
    from urllib.parse import quote

    from cryptography.hazmat.primitives import serialization
    from django.db import connections
    from oauthlib.common import Request

    from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator

    certificate = _certificate()
    der = certificate.public_bytes(serialization.Encoding.DER)
    x5t = base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")
    field = quote(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), safe="-")
    if phase == "fill":
        fills = {}
        for alias, size in SIZES.items():
            token = _alias.set(alias)
            try:
                fills[alias] = _fill(alias, size, x5t)
            finally:
                _alias.reset(token)
        return {"fills": fills}
    validator = MTLSOAuth2Validator()
    rng = random.Random(8705)

    def arm(alias: str) -> Arm:
        size = SIZES[alias]

        def prepare() -> tuple[str, Any]:
            headers = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": field}
            value = f"{TOKEN_PREFIX}{rng.randint(1, size)}"
            headers["HTTP_AUTHORIZATION"] = f"Bearer {value}"
            return value, Request("https://rs.example/api/", http_method="GET", headers=headers)

        def call(argument: tuple[str, Any]) -> None:
            value, request = argument
            token = _alias.set(alias)
            try:
                if not validator.validate_bearer_token(value, ["read"], request):
                    raise RuntimeError(f"{alias}: token refused: {request.oauth2_error}")
            finally:
                _alias.reset(token)

        return Arm(f"among {size:,} tokens ({DATABASES[alias]})", call, prepare)

    result = compare(
        arm("large"), arm("default"), 300 if quick else 5000, warmup=50 if quick else 500
    )
    sizes = {}
    for alias in SIZES:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            sizes[alias] = cursor.fetchone()[0]
    return {"result": result, "sizes": sizes}


# --- the row (in the bench process) ------------------------------------------------------------


def prewarm(pg: Any) -> dict[str, Any]:
    """Read every table and index of both databases once (``pg_prewarm``, mode ``read``: into
    the OS page cache), so that the 1M side is measured in its steady state, as on a database
    server whose tokens fit in memory, not the disk's first reads. Blocks read per database, or
    why not (the extension ships with Debian's postgresql-15)."""
    from benchmarks import postgres

    done: dict[str, Any] = {}
    for alias, name in DATABASES.items():
        try:
            out = postgres.as_postgres(
                "psql",
                "-p",
                str(pg.port),
                "-d",
                name,
                "-v",
                "ON_ERROR_STOP=1",
                "-tA",
                "-c",
                "CREATE EXTENSION IF NOT EXISTS pg_prewarm",
                "-c",
                "SELECT sum(pg_prewarm(c.oid::regclass, 'read')) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i')",
            )
            done[alias] = int(out.split()[-1])
        except (RuntimeError, ValueError, IndexError) as exc:
            done[alias] = f"not prewarmed: {exc}"
    return done


def run(quick: bool) -> list[dict[str, Any]]:
    from benchmarks import postgres

    pg = postgres.cluster()
    urls = {alias: postgres.database(pg, name) for alias, name in DATABASES.items()}
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.pg_settings",
        BENCH_PG_SMALL=urls["default"],
        BENCH_PG_LARGE=urls["large"],
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )

    def phase(*flags: str) -> dict[str, Any]:
        argv = [sys.executable, "-m", "benchmarks.pg_scale", "--worker", *flags]
        done = subprocess.run(  # noqa: S603
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False
        )
        if done.returncode:
            raise RuntimeError(
                f"pg_scale worker failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
            )
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    fills = phase("--fill")["fills"]
    started = time.monotonic()
    prewarmed = prewarm(pg)
    prewarm_s = round(time.monotonic() - started, 1)
    report = phase("--quick") if quick else phase()
    result = report["result"]
    ratio = result["ratio_median"]
    return [
        {
            "id": "P6",
            **result,
            "goal": f"A/B <= {GOAL:g}",
            "verdict": "pass" if ratio <= GOAL else f"miss: {ratio:.3f} > {GOAL:g}",
            "fill_1m": fills["large"],
            "fill_1k": fills["default"],
            "prewarmed_blocks": prewarmed,
            "prewarm_s": prewarm_s,
            "database_sizes": report["sizes"],
            "postgresql": f"{pg.version} (port {pg.port})",
            "load_average": load_average(),
        }
    ]


def table(rows: list[dict[str, Any]]) -> str:
    lines = []
    for r in rows:
        fill = r["fill_1m"]
        how = f"filled in {fill.get('fill_s', '?')} s (INSERT ... generate_series + ANALYZE)"
        if fill["reused"]:
            how = f"reused; last {how} at {fill.get('filled_at', '?')}"
        lines += [
            f"A: {r['a']}: {r['a_ms']:.3f} ms",
            f"B: {r['b']}: {r['b_ms']:.3f} ms",
            f"A/B {r['ratio_median']:.3f} (p25-p75 {r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}, "
            f"{r['pairs']} pairs)  {r['goal']}: {r['verdict']}",
            f"PostgreSQL {r['postgresql']}; 1M database {how} (migrate {fill['migrate_s']:.1f} s), "
            f"sizes {r['database_sizes']}; prewarmed (pg_prewarm, blocks) "
            f"{r['prewarmed_blocks']} in {r['prewarm_s']} s; load {r['load_average']}",
        ]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if "--worker" not in argv:
        print(
            "usage: python -m benchmarks pg_scale is run by `python -m benchmarks --only pg_scale`"
        )
        return 2
    phase = "fill" if "--fill" in argv else "time"
    print(json.dumps(worker(phase, "--quick" in argv)))
    return 0


if __name__ == "__main__":
    # Run as the imported module: the router (settings) must see this module's _alias.
    from benchmarks import pg_scale

    sys.exit(pg_scale.main(sys.argv[1:]))
