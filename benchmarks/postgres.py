"""PostgreSQL for the full-run rows (P5, P6): the Debian cluster, a role and databases of ours.

Uses the newest ``pg_lsclusters`` cluster named ``main``; starts it with ``pg_ctlcluster`` when
it is down (and ``stop_if_started()`` stops it again), never creates a cluster. The role
``mtls_bench`` owns the databases ``mtls_bench_*``; nothing else in the cluster is touched.
Raises ``benchmarks.Skip`` with the reason when PostgreSQL or psycopg is not installed.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from benchmarks import Skip

ROLE = "mtls_bench"
PASSWORD = "mtls-bench-only"

_started: list[str] = []


@dataclass(frozen=True)
class Cluster:
    version: str
    port: int

    def url(self, database: str) -> str:
        return f"postgresql://{ROLE}:{PASSWORD}@127.0.0.1:{self.port}/{database}"


def as_postgres(*argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - fixed tools
        ["runuser", "-u", "postgres", "--", *argv],
        input=stdin,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=600,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return done.stdout


def _clusters() -> list[list[str]]:
    done = subprocess.run(
        ["pg_lsclusters", "-h"], capture_output=True, text=True, timeout=30, check=False
    )
    return [line.split() for line in done.stdout.splitlines() if line.strip()]


def cluster() -> Cluster:
    """The running ``main`` cluster (started if needed) with our role; or ``Skip``."""
    if not shutil.which("pg_lsclusters") or not shutil.which("runuser"):
        raise Skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        raise Skip("psycopg is not installed (pip install 'psycopg[binary]')") from exc
    mains = [c for c in _clusters() if len(c) >= 4 and c[1] == "main"]
    if not mains:
        raise Skip("no PostgreSQL cluster 'main' (pg_createcluster <version> main)")
    version, _name, port, status = max(mains, key=lambda c: [int(p) for p in c[0].split(".")])[:4]
    if "online" not in status:
        subprocess.run(["pg_ctlcluster", version, "main", "start"], check=True, timeout=120)
        _started.append(version)
    as_postgres(
        "psql",
        "-p",
        port,
        "-v",
        "ON_ERROR_STOP=1",
        "-q",
        stdin=(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN "
            f"CREATE ROLE {ROLE} LOGIN CREATEDB; END IF; END $$;\n"
            f"ALTER ROLE {ROLE} LOGIN CREATEDB PASSWORD '{PASSWORD}';\n"
        ),
    )
    return Cluster(version, int(port))


def database(pg: Cluster, name: str, *, fresh: bool = False) -> str:
    """Create database ``name`` (owned by our role) unless it exists; its URL."""
    if not name.startswith("mtls_bench"):
        raise ValueError(name)
    exists = as_postgres(
        "psql", "-p", str(pg.port), "-tAc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"
    ).strip()
    if exists and fresh:
        as_postgres("dropdb", "-p", str(pg.port), name)
        exists = ""
    if not exists:
        as_postgres("createdb", "-p", str(pg.port), "-O", ROLE, name)
    return pg.url(name)


def stop_if_started() -> None:
    while _started:
        version = _started.pop()
        subprocess.run(["pg_ctlcluster", version, "main", "stop"], check=False, timeout=120)
