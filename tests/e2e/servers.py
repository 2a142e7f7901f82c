"""Processes for the end-to-end tests: the example project under gunicorn, and real proxies.

Every process runs in the foreground with its own config, pid file and logs under pytest's
temporary directories, on a free loopback port, and is stopped by the fixture that started it.
The proxy configurations are rendered from the recipes the package ships
(``django_oauth_mtls/recipes/``, the same lines docs/proxies.md shows and
``manage.py mtls_proxy_config`` prints).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The recipes as they ship in the package (package data of django_oauth_mtls).
RECIPES = ROOT / "django_oauth_mtls" / "recipes"
PROBE_CONFIG = Path(__file__).with_name("gunicorn_probe.py")
APACHE_MODULES = Path("/usr/lib/apache2/modules")

#: gunicorn's default (8190) is below the app's MAX_HEADER_BYTES (16384).
GUNICORN_FIELD_LIMIT = 32768

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

#: The certificate field names the suite runs the recipes with: the sources' defaults, spelled
#: out here rather than derived by the package (``mtls_proxy_config`` must agree with these).
FIELD_VALUES = {
    "certificate_header": "X-SSL-Client-Cert",
    "certificate_header_underscored": "X_SSL_Client_Cert",
    "verify_header": "X-SSL-Client-Verify",
    "verify_header_underscored": "X_SSL_Client_Verify",
    "certificate_fields_pattern": "x.ssl.client.cert|x.ssl.client.verify",
}


def render(template: str | Path, **values: object) -> str:
    """Fill ``{{ name }}`` placeholders; every placeholder needs a value and every value a use.

    The field-name placeholders a template has get :data:`FIELD_VALUES` unless given.
    """
    text = Path(template).read_text() if isinstance(template, Path) else template
    used = set(_PLACEHOLDER.findall(text))
    values = {**{k: v for k, v in FIELD_VALUES.items() if k in used}, **values}
    missing = used - values.keys()
    unused = values.keys() - used
    if missing or unused:
        raise KeyError(f"placeholders missing {sorted(missing)}, unused {sorted(unused)}")
    return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), text)


def with_field_names(template: str | Path) -> str:
    """The template with only its field-name placeholders filled (:data:`FIELD_VALUES`): the
    lines as the documentation shows them."""
    text = Path(template).read_text() if isinstance(template, Path) else template
    return _PLACEHOLDER.sub(lambda m: FIELD_VALUES.get(m.group(1), m.group(0)), text)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_identity() -> tuple[str, str]:
    """The user/group proxy workers run as: www-data under root (CI), else the invoking user."""
    if os.geteuid() == 0:
        return "www-data", "www-data"
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def open_for_workers(directory: Path, stop_at: Path) -> None:
    """Let unprivileged workers (www-data) traverse from ``stop_at`` down to ``directory``.

    Only the search bit is added (0o711 style): nobody can list pytest's directories.
    """
    directory.chmod(0o755)
    for parent in directory.parents:
        if parent == stop_at.parent or parent == Path(parent.anchor):
            break
        try:
            if parent.stat().st_uid == os.geteuid():
                parent.chmod(parent.stat().st_mode | 0o011)
        except OSError:
            break


def tail(path: Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return "(no log)"


@dataclass
class Managed:
    """A process we started, in its own session; ``stop()`` ends it and only it."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    port: int
    extra: dict[str, object] = field(default_factory=dict)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            # Our own process group (start_new_session=True): the server and its workers.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def failure(self, what: str) -> RuntimeError:
        status = self.process.poll()
        state = "running" if status is None else f"exited with status {status}"
        logs = [
            self.log,
            *[p for p in self.extra.values() if isinstance(p, Path) and p.suffix == ".log"],
        ]
        shown = "\n".join(f"--- {log}:\n{tail(log)}" for log in logs)
        return RuntimeError(f"{self.name} {what} ({state})\n{shown}")


def spawn(
    name: str,
    argv: list[str],
    log: Path,
    port: int,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Managed:
    with log.open("ab") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv of a tool we located
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Managed(name, process, log, port)


def wait_for_port(server: Managed, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise server.failure("did not start")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    server.stop()
    raise server.failure(f"did not listen on 127.0.0.1:{server.port} within {timeout:.0f} s")


def wait_for_http(server: Managed, path: str, timeout: float = 30.0) -> None:
    url = f"http://127.0.0.1:{server.port}{path}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise server.failure("did not start")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - loopback
                json.load(response)
                return
        except (urllib.error.URLError, ConnectionError, OSError, ValueError):
            time.sleep(0.1)
    server.stop()
    raise server.failure(f"{url} did not answer within {timeout:.0f} s")


# --- the example project under gunicorn ---------------------------------------------------


def example_env(sqlite_path: Path, source: str | None = None) -> dict[str, str]:
    """The example's environment: its own settings module, a SQLite file under tmp."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        EXAMPLE_SQLITE_PATH=str(sqlite_path),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONDONTWRITEBYTECODE="1",
    )
    if source is not None:
        env["OAUTH2_MTLS_CERTIFICATE_SOURCE"] = source
    return env


def manage(
    sqlite_path: Path,
    *argv: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
    timeout: int = 120,
    log: Path | None = None,
) -> str:
    """``manage.py argv…`` against the example's database at ``sqlite_path`` (``env`` on top of
    ``example_env``); its stdout, also written with stderr to ``log`` if given."""
    result = subprocess.run(  # noqa: S603 - our own manage.py
        [sys.executable, str(ROOT / "manage.py"), *argv],
        input=stdin,
        env={**example_env(sqlite_path), **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if log is not None:
        log.write_text(result.stdout + result.stderr)
    if result.returncode:
        raise RuntimeError(f"manage.py {argv[0]} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def migrate(sqlite_path: Path, log: Path, extra_env: dict[str, str] | None = None) -> None:
    manage(sqlite_path, "migrate", "--noinput", "-v", "0", env=extra_env, timeout=180, log=log)


def example_shell(
    sqlite_path: Path, code: str, *, extra_env: dict[str, str] | None = None, stdin: str = ""
) -> str:
    """Run ``code`` in the example's ``manage.py shell``; the last line it printed."""
    printed = manage(sqlite_path, "shell", "-c", code, env=extra_env, stdin=stdin)
    return printed.strip().splitlines()[-1]


def start_gunicorn(
    source: str,
    directory: Path,
    sqlite_path: Path,
    extra_env: dict[str, str] | None = None,
    threads: int = 4,
    workers: int = 1,
) -> Managed:
    """gunicorn on 127.0.0.1 serving the example with ``CERTIFICATE_SOURCE=source``.

    ``header_map=dangerous`` keeps fields with underscores (gunicorn's default drops them) so
    the tests see whether the *proxy* strips them; the probe records the certificate fields
    that arrived, per request. ``workers`` workers with ``threads`` threads each (one thread:
    sync workers).
    """
    port = free_port()
    probe = directory / "probe.jsonl"
    env = example_env(sqlite_path, source)
    env.update(extra_env or {})
    env["E2E_PROBE_FILE"] = str(probe)
    argv = [
        sys.executable, "-m", "gunicorn",
        "--config", str(PROBE_CONFIG),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--graceful-timeout", "3",
        "--limit-request-field_size", str(GUNICORN_FIELD_LIMIT),
        "--header-map", "dangerous",
        "--error-logfile", "-",
        "--chdir", str(ROOT),
        "example_project.wsgi:application",
    ]  # fmt: skip
    log = directory / "gunicorn.log"
    return start_probed_example(f"gunicorn[{source}]", argv, log, port, env, probe)


def start_probed_example(
    name: str, argv: list[str], log: Path, port: int, env: dict[str, str], probe: Path
) -> Managed:
    """Start an app server serving the example whose probe writes to ``probe``; return once
    it answers ``/api/certificate/``."""
    server = spawn(name, argv, log, port, env=env, cwd=ROOT)
    server.extra["probe"] = probe
    try:
        wait_for_http(server, "/api/certificate/")
    except BaseException:
        server.stop()
        raise
    return server


def reached(server: Managed, probe_id: str) -> list[tuple[str, str]] | None:
    """The certificate fields (name as received, value) that reached gunicorn for a request,
    or None when the request did not reach it. The probe writes before the app answers, so
    once a client has its answer the record is there."""
    probe = server.extra["probe"]
    assert isinstance(probe, Path)
    if probe.exists():
        for line in probe.read_text().splitlines():
            record = json.loads(line)
            if record["probe"] == probe_id:
                return [(name, value) for name, value in record["fields"]]
    return None


def arrived(server: Managed, probe_id: str) -> list[tuple[str, str]]:
    fields = reached(server, probe_id)
    if fields is None:
        raise AssertionError(f"request {probe_id} never reached {server.name}")
    return fields


# --- the proxies --------------------------------------------------------------------------


@dataclass
class TLSFiles:
    ca: Path  # the client CA (HAProxy's verify optional needs one) and the server's issuer
    server_cert: Path
    server_key: Path
    server_pem: Path  # certificate + key, for HAProxy's crt


def start_nginx(nginx: str, directory: Path, tls: TLSFiles, upstream: int) -> Managed:
    port = free_port()
    user, group = worker_identity()
    config = directory / "nginx.conf"
    config.write_text(
        render(
            RECIPES / "nginx.conf.template",
            user=user, group=group, prefix=directory, listen=f"127.0.0.1:{port}",
            server_cert=tls.server_cert, server_key=tls.server_key, upstream=f"127.0.0.1:{upstream}",
        )
    )  # fmt: skip
    argv = [nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    server = spawn("nginx", argv, directory / "nginx.log", port)
    server.extra["error_log"] = directory / "error.log"
    wait_for_port(server)
    return server


#: The upstream block of :func:`start_nginx_upstream`, inserted into the rendered recipe.
NGINX_UPSTREAM = Path(__file__).with_name("nginx-upstream.conf.template")
UPSTREAM_NAME = "mtls_nodes"


def start_nginx_upstream(
    nginx: str, directory: Path, tls: TLSFiles, upstreams: Sequence[int]
) -> Managed:
    """nginx from the recipe, unchanged, whose ``proxy_pass`` names an upstream of several app
    nodes (round robin, nginx's default): the recipe's ``{{ upstream }}`` is the group's name
    and :data:`NGINX_UPSTREAM` declares the group at the top of its ``http`` block."""
    port = free_port()
    user, group = worker_identity()
    block = render(
        NGINX_UPSTREAM,
        name=UPSTREAM_NAME,
        servers="".join(f"        server 127.0.0.1:{upstream};\n" for upstream in upstreams),
    )
    text = render(
        RECIPES / "nginx.conf.template",
        user=user, group=group, prefix=directory, listen=f"127.0.0.1:{port}",
        server_cert=tls.server_cert, server_key=tls.server_key, upstream=UPSTREAM_NAME,
    )  # fmt: skip
    if text.count("\nhttp {\n") != 1:
        raise ValueError("the nginx recipe no longer has one top-level `http {` line")
    config = directory / "nginx.conf"
    config.write_text(text.replace("\nhttp {\n", "\nhttp {\n" + block, 1))
    argv = [nginx, "-p", str(directory), "-c", str(config), "-e", str(directory / "error.log")]
    server = spawn("nginx", argv, directory / "nginx.log", port)
    server.extra["error_log"] = directory / "error.log"
    wait_for_port(server)
    return server


def start_haproxy(haproxy: str, directory: Path, tls: TLSFiles, upstream: int) -> Managed:
    port = free_port()
    config = directory / "haproxy.cfg"
    config.write_text(
        render(
            RECIPES / "haproxy.cfg.template",
            listen=f"127.0.0.1:{port}", server_pem=tls.server_pem, client_ca=tls.ca,
            upstream=f"127.0.0.1:{upstream}",
        )
    )  # fmt: skip
    argv = [haproxy, "-db", "-f", str(config), "-p", str(directory / "haproxy.pid")]
    server = spawn("haproxy", argv, directory / "haproxy.log", port)
    wait_for_port(server)
    return server


def start_apache(apache: str, directory: Path, tls: TLSFiles, upstream: int) -> Managed:
    port = free_port()
    user, group = worker_identity()
    config = directory / "apache.conf"
    config.write_text(
        render(
            RECIPES / "apache.conf.template",
            server_root=directory, user=user, group=group, listen=f"127.0.0.1:{port}",
            modules=APACHE_MODULES, server_cert=tls.server_cert, server_key=tls.server_key,
            upstream=f"127.0.0.1:{upstream}",
        )
    )  # fmt: skip
    argv = [apache, "-d", str(directory), "-f", str(config), "-DFOREGROUND"]
    server = spawn("apache", argv, directory / "apache.log", port)
    server.extra["error_log"] = directory / "error.log"
    wait_for_port(server)
    return server


# --- the shared cache -----------------------------------------------------------------------


def start_redis(redis_server: str, directory: Path) -> Managed:
    """redis-server on a free loopback port, in the foreground, nothing written to disk
    (no RDB snapshot, no append-only file); ready once it answers ``PING``."""
    port = free_port()
    argv = [
        redis_server,
        "--bind", "127.0.0.1", "--port", str(port), "--protected-mode", "yes",
        "--daemonize", "no", "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--logfile", "",
    ]  # fmt: skip
    server = spawn("redis-server", argv, directory / "redis.log", port, cwd=directory)
    wait_for_port(server)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(64).startswith(b"+PONG"):
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise server.failure("did not answer PING")
        time.sleep(0.05)
