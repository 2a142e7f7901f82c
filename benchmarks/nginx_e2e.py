"""End to end through real nginx and gunicorn, keep-alive, concurrent clients (P5).

A = ``GET /test/mtls-any/`` over mTLS with a certificate-bound token (``MTLSOAuth2Authentication``
checks the binding against the certificate nginx forwards); B = ``GET /test/dot-plain/`` over
TLS without a client certificate, with a plain bearer token (DOT's ``OAuth2Authentication``).
Same nginx, same gunicorn, same database; goal (issue #10): throughput A/B ≥ 0.9.

Deployment (what a user tuned for speed runs): nginx terminating TLS with
``ssl_verify_client optional_no_ca`` and keep-alive to the app (``benchmarks/nginx-keepalive.
conf.template``); gunicorn ``BENCH_GUNICORN_ARGS`` (default 2 gthread workers × 4 threads,
keep-alive); the example project's settings with the test URLs (``benchmarks/server_settings.
py``); PostgreSQL (persistent connections, ``CONN_MAX_AGE``) when a cluster is installed, else
a SQLite file in WAL mode. nginx, gunicorn and PostgreSQL's backends for our database run on
core 0 (``taskset``), the load generator (``benchmarks/loadgen.py``: asyncio + ssl, keep-alive,
``BENCH_CONNECTIONS`` connections, default 16) on core 1. Interleaved runs A B, B A, …; the
ratio is per pair of runs.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import Skip, load_average, quartiles

NAME = "nginx_e2e"
TITLE = "End to end: nginx (mTLS) -> gunicorn -> Django, keep-alive, concurrent clients"
FULL_ONLY = True
GOAL = 0.9
ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = Path(__file__).with_name("nginx-keepalive.conf.template")
SAN_DNS = "bench-client.example.com"
DEFAULT_GUNICORN = "--workers 2 --worker-class gthread --threads 4 --keep-alive 75"
NOTES = [
    f"P5 goal: requests/s of GET with mTLS + bound token / GET over TLS with a plain bearer "
    f"token >= {GOAL:g} (median of per-pair ratios)",
    "server (nginx, gunicorn, PostgreSQL backends) pinned to core 0, load generator to core 1",
]


def _pin(core: int) -> list[str]:
    taskset = shutil.which("taskset")
    return [taskset, "-c", str(core)] if taskset else []


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def make_pki(directory: Path) -> dict[str, Path]:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    from tests import pki

    root = pki.make_ca("Bench E2E Root CA")
    server = pki.issue(
        pki.name(CN="localhost"),
        issuer=root,
        dns=("localhost",),
        ips=("127.0.0.1",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    client = pki.issue(pki.name(O="Example, Inc.", CN="bench-client"), issuer=root, dns=(SAN_DNS,))
    return {
        "ca": _write(directory / "ca.pem", root.pem),
        "server_cert": _write(directory / "server.pem", server.pem + root.pem),
        "server_key": _write(directory / "server.key", server.key_pem, 0o600),
        "client_cert": _write(directory / "client.pem", client.pem),
        "client_key": _write(directory / "client.key", client.key_pem, 0o600),
    }


def pg_backends(database: str) -> list[int]:
    from benchmarks import postgres

    pg = postgres.cluster()
    out = postgres.as_postgres(
        "psql",
        "-p",
        str(pg.port),
        "-tAc",
        f"SELECT pid FROM pg_stat_activity WHERE datname = '{database}'",
    )
    return [int(line) for line in out.split() if line.strip().isdigit()]


def loadgen(
    url: str,
    ca: Path,
    token: str,
    connections: int,
    duration: float,
    cert: tuple[Path, Path] | None,
) -> dict[str, Any]:
    argv = [
        *_pin(1),
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--url",
        url,
        "--ca",
        str(ca),
        "--header",
        f"Authorization: Bearer {token}",
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--warmup",
        "1",
    ]
    if cert:
        argv += ["--cert", str(cert[0]), "--key", str(cert[1])]
    done = subprocess.run(  # noqa: S603
        argv, cwd=ROOT, capture_output=True, text=True, timeout=duration + 120, check=False
    )
    if done.returncode:
        raise RuntimeError(f"loadgen failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[dict[str, Any]]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None
    )
    if not nginx:
        raise Skip("nginx is not installed (Debian: apt-get install nginx)")
    try:
        import httpx
    except ImportError as exc:
        raise Skip("httpx is not installed (the dev extra)") from exc
    from benchmarks import postgres
    from tests.e2e import servers

    pairs = int(os.environ.get("BENCH_E2E_PAIRS", "5"))
    duration = float(os.environ.get("BENCH_E2E_SECONDS", "5"))
    connections = int(os.environ.get("BENCH_CONNECTIONS", "16"))
    gunicorn_args = os.environ.get("BENCH_GUNICORN_ARGS", DEFAULT_GUNICORN).split()
    diagnose = os.environ.get("BENCH_E2E_DIAGNOSE") == "1"

    work = Path(tempfile.mkdtemp(prefix="mtls-bench-e2e-"))
    work.chmod(0o755)
    files = make_pki(work)
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="benchmarks.server_settings",
        OAUTH2_MTLS_CERTIFICATE_SOURCE="nginx",
        OAUTH2_MTLS_TRUSTED_CA=str(files["ca"]),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
    )
    database = "mtls_bench_e2e"
    try:
        env["BENCH_DATABASE_URL"] = postgres.database(postgres.cluster(), database, fresh=True)
        storage = "PostgreSQL (CONN_MAX_AGE=600)"
    except Skip as reason:
        env["BENCH_SQLITE_PATH"] = str(work / "bench.sqlite3")
        storage = f"SQLite file, WAL ({reason})"
    setup = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "benchmarks.e2e_setup", SAN_DNS],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if setup.returncode:
        raise RuntimeError(f"e2e setup failed: {setup.stdout}{setup.stderr}")
    clients = json.loads(setup.stdout.strip().splitlines()[-1])

    app_port, proxy_port = servers.free_port(), servers.free_port()
    gunicorn = servers.spawn(
        "gunicorn",
        [
            *_pin(0),
            sys.executable,
            "-m",
            "gunicorn",
            *gunicorn_args,
            "--bind",
            f"127.0.0.1:{app_port}",
            "--limit-request-field_size",
            str(servers.GUNICORN_FIELD_LIMIT),
            "--chdir",
            str(ROOT),
            "example_project.wsgi:application",
        ],
        work / "gunicorn.log",
        app_port,
        env=env,
        cwd=ROOT,
    )
    proxy = None
    try:
        servers.wait_for_http(gunicorn, "/api/certificate/")
        user, group = servers.worker_identity()
        config = _write(
            work / "nginx.conf",
            servers.render(
                TEMPLATE,
                user=user,
                group=group,
                prefix=work,
                listen=f"127.0.0.1:{proxy_port}",
                server_cert=files["server_cert"],
                server_key=files["server_key"],
                upstream=f"127.0.0.1:{app_port}",
            ),
        )
        proxy = servers.spawn(
            "nginx",
            [*_pin(0), nginx, "-p", str(work), "-c", str(config), "-e", str(work / "error.log")],
            work / "nginx.log",
            proxy_port,
        )
        servers.wait_for_port(proxy)
        base = f"https://127.0.0.1:{proxy_port}"
        tokens = issue_tokens(httpx, base, files, clients)

        client_pair = (files["client_cert"], files["client_key"])
        arms = {
            "A": ("/test/mtls-any/", tokens["bound"], client_pair),
            "B": ("/test/dot-plain/", tokens["plain"], None),
        }
        if diagnose:
            # C: B's request and view, but over mTLS: nginx forwards the certificate and the
            # intake reads it; C/B is the transport's share, A/C our authentication's.
            arms["C"] = ("/test/dot-plain/", tokens["plain"], client_pair)
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in arms}
        # Warm-up of both sides (connections to the database, caches), then pin the backends.
        for path, token, cert in arms.values():
            loadgen(base + path, files["ca"], token, connections, 2, cert)
        pinned = []
        if "BENCH_DATABASE_URL" in env and _pin(0):
            for pid in pg_backends(database):
                subprocess.run(
                    [*_pin(0)[:1], "-p", "-c", "0", str(pid)], capture_output=True, check=False
                )
                pinned.append(pid)
        for index in range(pairs):
            order = tuple(arms) if index % 2 == 0 else tuple(reversed(arms))
            for side in order:
                path, token, cert = arms[side]
                runs[side].append(
                    loadgen(base + path, files["ca"], token, connections, duration, cert)
                )
        ratios = [
            a["rps"] / b["rps"] for a, b in zip(runs["A"], runs["B"], strict=True) if b["rps"]
        ]
    finally:
        if proxy is not None:
            proxy.stop()
        gunicorn.stop()
    p25, p50, p75 = quartiles(ratios) if ratios else (0.0, 0.0, 0.0)
    rows = []
    labels = {
        "A": "GET /test/mtls-any/: mTLS + bound token (MTLSOAuth2Authentication)",
        "B": "GET /test/dot-plain/: TLS, plain bearer (DOT OAuth2Authentication)",
        "C": "GET /test/dot-plain/: mTLS (certificate forwarded), plain bearer",
    }
    for side, results in runs.items():
        label = labels[side]
        rows.append(
            {
                "id": "P5",
                "side": side,
                "request": label,
                "rps": round(statistics.median(r["rps"] for r in results), 1),
                "p50_ms": round(statistics.median(r["p50_ms"] for r in results), 2),
                "p99_ms": round(statistics.median(r["p99_ms"] for r in results), 2),
                "requests": sum(r["requests"] for r in results),
                "non_2xx": sum(r["non_2xx"] for r in results),
                "errors": sum(r["errors"] for r in results),
                "generator_cpu_percent": round(
                    statistics.median(r["generator_cpu_percent"] for r in results), 1
                ),
                "runs": len(results),
                "seconds_per_run": duration,
                "connections": connections,
            }
        )
    for name, top, bottom in (("C/B", "C", "B"), ("A/C", "A", "C")):
        if top in runs and bottom in runs:
            pair_ratios = [
                x["rps"] / y["rps"]
                for x, y in zip(runs[top], runs[bottom], strict=True)
                if y["rps"]
            ]
            q25, q50, q75 = quartiles(pair_ratios)
            rows.append(
                {
                    "id": "P5-diagnosis",
                    "side": name,
                    "request": "throughput ratio (record)",
                    "ratio_median": round(q50, 4),
                    "ratio_p25": round(q25, 4),
                    "ratio_p75": round(q75, 4),
                }
            )
    misses = []
    if p50 < GOAL:
        misses.append(f"{p50:.3f} < {GOAL:g}")
    if any(r.get("non_2xx") or r.get("errors") for r in rows):
        misses.append("non-2xx answers or errors")
    rows.append(
        {
            "id": "P5",
            "side": "A/B",
            "request": "throughput ratio, median of per-pair ratios",
            "ratio_median": round(p50, 4),
            "ratio_p25": round(p25, 4),
            "ratio_p75": round(p75, 4),
            "goal": f"A/B >= {GOAL:g}",
            "verdict": "pass" if not misses else "miss: " + ", ".join(misses),
            "storage": storage,
            "gunicorn": " ".join(gunicorn_args),
            "pinned": "server core 0, generator core 1" if _pin(0) else "not pinned (no taskset)",
            "pg_backends_pinned": len(pinned),
            "load_average": load_average(),
        }
    )
    return rows


def issue_tokens(
    httpx: Any, base: str, files: dict[str, Path], clients: dict[str, Any]
) -> dict[str, str]:
    """One bound token (tls_client_auth through nginx) and one plain token (Basic); both GETs
    checked once."""
    import ssl

    def session(with_cert: bool) -> Any:
        context = ssl.create_default_context(cafile=str(files["ca"]))
        if with_cert:
            context.load_cert_chain(str(files["client_cert"]), str(files["client_key"]))
        return httpx.Client(verify=context, timeout=30, trust_env=False)

    form = {"grant_type": "client_credentials", "scope": "read"}
    with session(True) as mtls, session(False) as plain:
        bound = mtls.post(f"{base}/o/token/", data={**form, "client_id": clients["bound"]})
        unbound = plain.post(
            f"{base}/o/token/", data=form, auth=(clients["plain"], clients["secret"])
        )
        for reply in (bound, unbound):
            if reply.status_code != 200:
                raise RuntimeError(f"token request through nginx: {reply.status_code} {reply.text}")
        tokens = {"bound": bound.json()["access_token"], "plain": unbound.json()["access_token"]}
        checks = [
            mtls.get(
                f"{base}/test/mtls-any/", headers={"Authorization": f"Bearer {tokens['bound']}"}
            ),
            plain.get(
                f"{base}/test/dot-plain/", headers={"Authorization": f"Bearer {tokens['plain']}"}
            ),
            plain.get(
                f"{base}/test/mtls-any/", headers={"Authorization": f"Bearer {tokens['bound']}"}
            ),
        ]
        if [c.status_code for c in checks] != [200, 200, 401]:
            raise RuntimeError(
                f"checks through nginx: {[(c.status_code, c.text[:200]) for c in checks]}"
            )
    return tokens


def table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'side':<5} {'request':<68} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'gen CPU %':>9} {'requests':>9} {'errors':>6}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        if r["id"] == "P5-diagnosis":
            lines.append(
                f"{r['side']:<5} throughput ratio {r['ratio_median']:.3f} (p25-p75 "
                f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f}), record"
            )
            continue
        if r["side"] == "A/B":
            lines.append(
                f"A/B   throughput ratio {r['ratio_median']:.3f} (p25-p75 "
                f"{r['ratio_p25']:.3f}-{r['ratio_p75']:.3f})  {r['goal']}: {r['verdict']}"
            )
            lines.append(
                f"      storage: {r['storage']}; gunicorn {r['gunicorn']}; {r['pinned']} "
                f"({r['pg_backends_pinned']} PostgreSQL backends pinned); load {r['load_average']}"
            )
            continue
        lines.append(
            f"{r['side']:<5} {r['request']:<68} {r['rps']:>8.1f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['generator_cpu_percent']:>9.1f} {r['requests']:>9} "
            f"{r['non_2xx'] + r['errors']:>6}"
        )
    return "\n".join(lines)
