"""``make demo``: the example project behind real TLS, walked through with real certificates.

What it does, in order (each HTTP exchange is printed):

1. makes a demo PKI in a temporary directory (``example_project/demo_pki.py``);
2. migrates a fresh SQLite database there and creates a demo superuser;
3. starts the example behind TLS: nginx (the package's recipe, ``mtls_proxy_config nginx``) in
   front of gunicorn
   when nginx is installed, otherwise ``manage.py runserver_mtls``; the certificate source is
   chosen through ``OAUTH2_MTLS_CERTIFICATE_SOURCE`` (``nginx`` or ``wsgi_environ``);
4. registers two clients over HTTP (RFC 7591 registration, logged in as the demo superuser):
   a PKI client (``tls_client_auth``) and a self-signed one (``self_signed_tls_client_auth``),
   both with certificate-bound tokens; ``--registration command`` uses ``mtls_set_client``;
5. reads the metadata, gets tokens, calls ``/api/whoami/`` with, without and with a stranger's
   certificate, and introspects a token;
6. stops everything it started, removes the temporary directory and exits 0 — or non-zero as
   soon as an answer differs from the expected one.

``--serve`` (``make serve``) stops after step 4 and keeps the example running, with the admin,
until Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import http.cookies
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

if __package__ in (None, ""):  # `python example_project/demo.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from django_oauth_mtls.recipes import RECIPES, field_values, placeholders, render
from example_project.demo_pki import PKI_CLIENT_DNS, DemoPki, Issued, make_demo_pki

ROOT = Path(__file__).resolve().parent.parent
#: The nginx recipe as the package ships it (django_oauth_mtls/recipes/nginx.conf.template).
NGINX_RECIPE = RECIPES["nginx"]
#: gunicorn's default field limit (8190) is below the app's MAX_HEADER_BYTES (16384).
GUNICORN_FIELD_LIMIT = 32768
DEMO_USER = "demo"
SERVE_PORT = 8443
#: Values longer than this are shortened in the transcript (thumbprints, 43 characters, are not).
SHOW_CHARS = 64
#: Messages of the app's own log (django_oauth_mtls) worth showing next to an exchange.
APP_LOG = re.compile(
    r"^(client authenticated|client authentication refused|bound token refused|"
    r"client certificate refused)"
)


class StepFailed(Exception):
    """An answer differed from the expected one: the demo stops and exits 1."""


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    say(f"\n== {text}")


def short(value: str, limit: int = SHOW_CHARS) -> str:
    if len(value) <= limit:
        return value
    return f"{value[: max(limit - 24, 8)]}...({len(value)} chars)"


def shorten(value: Any) -> Any:
    """A JSON value with long strings shortened, for printing."""
    if isinstance(value, str):
        return short(value)
    if isinstance(value, dict):
        return {key: shorten(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shorten(item) for item in value]
    return value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# --- processes ------------------------------------------------------------------------------


@dataclass
class Started:
    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Processes:
    """Everything the demo starts, each in its own session; ``stop_all`` ends them all."""

    started: list[Started] = field(default_factory=list)

    def spawn(self, name: str, argv: list[str], log: Path, env: dict[str, str]) -> Started:
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                # Own session: Ctrl-C reaches the demo only, which then stops these in order.
                start_new_session=True,
            )
        started = Started(name, process, log)
        self.started.append(started)
        say(f"  started {name} (pid {process.pid})")
        return started

    def check_alive(self) -> None:
        for started in self.started:
            if started.process.poll() is not None:
                raise StepFailed(
                    f"{started.name} exited with status {started.process.returncode}:\n"
                    + tail(started.log)
                )

    def stop_all(self) -> None:
        for started in reversed(self.started):
            stop(started)
            say(f"  stopped {started.name} (pid {started.process.pid})")
        self.started.clear()


def stop(started: Started, timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL to the whole process group (the server and its workers)."""
    process = started.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # Workers left behind by a master that died, or one that ignored SIGTERM.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=timeout)


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def run(argv: list[str], env: dict[str, str], what: str) -> str:
    result = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    if result.returncode:
        raise StepFailed(f"{what} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


# --- HTTP over TLS, with or without a client certificate -----------------------------------


@dataclass
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One TLS connection per request (``http.client`` + ``ssl``): the certificate presented
    in the handshake is the one passed to ``send``, or none."""

    def __init__(self, base: str, ca_file: Path) -> None:
        self.base = base
        self.host, port = base.removeprefix("https://").rsplit(":", 1)
        self.port = int(port)
        self.ca_file = ca_file
        self.cookies: dict[str, str] = {}
        self._contexts: dict[Path | None, ssl.SSLContext] = {}

    def context(self, cert: Issued | None) -> ssl.SSLContext:
        key = cert.cert_file if cert else None
        if key not in self._contexts:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            if cert is not None:
                assert cert.cert_file and cert.key_file
                context.load_cert_chain(cert.cert_file, cert.key_file)
            self._contexts[key] = context
        return self._contexts[key]

    def send(
        self,
        method: str,
        path: str,
        *,
        cert: Issued | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        cookies: bool = False,
    ) -> Response:
        all_headers = {"Connection": "close", **(headers or {})}
        if cookies and self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        connection = http.client.HTTPSConnection(
            self.host, self.port, context=self.context(cert), timeout=30
        )
        try:
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            response = Response(answer.status, answer.reason, answer.headers, answer.read())
        finally:
            connection.close()
        for value in response.headers.get_all("Set-Cookie") or []:
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie(value)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})
        return response


@dataclass
class Exchange:
    title: str
    expected: int
    status: int


@dataclass
class Walk:
    """The client, the certificates, and every exchange so far (for the summary)."""

    client: Client
    pki: DemoPki
    app_log: Path | None
    exchanges: list[Exchange] = field(default_factory=list)
    log_offset: int = 0

    def exchange(
        self,
        title: str,
        method: str,
        path: str,
        *,
        expect: int,
        cert: Issued | None = None,
        form: dict[str, str] | None = None,
        json_body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        cookies: bool = False,
        masked: tuple[str, ...] = (),
        members: tuple[str, ...] = (),
    ) -> Response:
        """Send one request, print it and its answer, fail unless the status is ``expect``."""
        say(f"\n--- {title}")
        headers = dict(headers or {})
        body = None
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form).encode()
        elif json_body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(json_body).encode()
        say(f"> {method} {self.client.base}{path}")
        if cert is not None:
            say(f"  [TLS: client certificate {cert.subject}, x5t#S256 {cert.x5t_s256}]")
        else:
            say("  [TLS: no client certificate]")
        for name, value in headers.items():
            say(f"> {name}: {short(value)}")
        if cookies and self.client.cookies:
            say(
                "> Cookie: "
                + "; ".join(f"{k}={short(v, 12)}" for k, v in self.client.cookies.items())
            )
        if form is not None:
            shown = {k: ("(hidden)" if k in masked else short(v)) for k, v in form.items()}
            say("> " + "&".join(f"{k}={v}" for k, v in shown.items()))
        elif json_body is not None:
            print_json(">", shorten(json_body))
        response = self.client.send(
            method, path, cert=cert, headers=headers, body=body, cookies=cookies
        )
        self.print_response(response, members)
        self.print_app_log()
        self.exchanges.append(Exchange(title, expect, response.status))
        if response.status != expect:
            raise StepFailed(f"{title}: expected HTTP {expect}, got {response.status}")
        return response

    def print_response(self, response: Response, members: tuple[str, ...]) -> None:
        say(f"< HTTP {response.status} {response.reason}")
        for name in ("Location", "WWW-Authenticate", "Cache-Control"):
            if response.headers.get(name):
                say(f"< {name}: {short(response.headers[name], 160)}")
        cookies = [v.split("=", 1)[0] for v in response.headers.get_all("Set-Cookie") or []]
        if cookies:
            say(f"< Set-Cookie: {', '.join(cookies)}")
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("application/json"):
            if response.body:
                say(f"< ({len(response.body)} bytes of {content_type or 'content'})")
            return
        body = response.json()
        if members and isinstance(body, dict):
            others = len(body) - len([m for m in members if m in body])
            body = {m: body[m] for m in members if m in body}
            body["..."] = f"{others} other members"
        print_json("<", shorten(body))

    def print_app_log(self) -> None:
        """The app's log lines written during the exchange (refusals, authentications)."""
        if self.app_log is None:
            return
        time.sleep(0.05)
        try:
            with self.app_log.open("rb") as handle:
                handle.seek(self.log_offset)
                new = handle.read()
        except OSError:
            return
        self.log_offset += len(new)
        for line in new.decode(errors="replace").splitlines():
            if APP_LOG.match(line):
                say(f"  app log: {line}")

    def skip_app_log(self) -> None:
        if self.app_log is not None and self.app_log.exists():
            self.log_offset = self.app_log.stat().st_size

    def check(self, condition: bool, message: str) -> None:
        if not condition:
            raise StepFailed(message)
        say(f"  ok: {message}")


def print_json(prefix: str, value: Any) -> None:
    for line in json.dumps(value, indent=2).splitlines():
        say(f"{prefix} {line}")


# --- setting up: PKI, database, servers ----------------------------------------------------


@dataclass
class Site:
    base: str
    ca_file: Path
    server: str  # "nginx" or "runserver_mtls"
    source: str
    app_log: Path
    password: str
    env: dict[str, str]


def make_pki(workdir: Path) -> DemoPki:
    heading("1. A demo PKI, made now with cryptography (EC P-256, valid for one day)")
    pki = make_demo_pki(workdir)
    rows = [
        ("demo root CA", pki.ca, "trusted by the app (OAUTH2_MTLS_TRUSTED_CA)"),
        ("server", pki.server, "issued by the demo root CA, for localhost"),
        ("PKI client", pki.pki_client, f"issued by the demo root CA, SAN dns {PKI_CLIENT_DNS}"),
        ("self-signed client", pki.self_signed_client, "self-signed"),
        ("stranger", pki.stranger, "self-signed, registered nowhere"),
    ]
    for label, issued, note in rows:
        say(f"  {label:<19} {issued.subject:<45} {note}")
        if label in ("PKI client", "self-signed client", "stranger"):
            say(f"  {'':<19} x5t#S256 {issued.x5t_s256}")
    return pki


def example_env(workdir: Path, pki: DemoPki, source: str, base: str) -> dict[str, str]:
    """The example's settings come from the environment (example_project/settings.py)."""
    dropped = ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "OAUTH2_MTLS_BASE_URL", "DJANGO_DEBUG")
    env = {key: value for key, value in os.environ.items() if key not in dropped}
    assert pki.ca.cert_file is not None
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        EXAMPLE_SQLITE_PATH=str(workdir / "demo.sqlite3"),
        OAUTH2_MTLS_CERTIFICATE_SOURCE=source,
        OAUTH2_MTLS_TRUSTED_CA=str(pki.ca.cert_file),
        OAUTH2_ISSUER=base,
        OAUTH2_MTLS_JWT_SIGNING_KEY=str(jwt_key_file(workdir)),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def jwt_key_file(workdir: Path) -> Path:
    """Where the demo keeps the key that signs JWT access tokens (made in step 2)."""
    return workdir / "jwt" / "access-token-key.pem"


def make_jwt_key(env: dict[str, str], workdir: Path) -> None:
    """The signing key of JWT access tokens, made with the package's own command."""
    path = jwt_key_file(workdir)
    path.parent.mkdir(exist_ok=True)
    argv = ["mtls_jwt_key", "generate", str(path)]
    say(f"\n$ python manage.py {' '.join(argv)}")
    output = run([sys.executable, str(ROOT / "manage.py"), *argv], env, "mtls_jwt_key")
    for line in output.splitlines():
        say(f"  {line}")


def prepare_database(env: dict[str, str]) -> str:
    """Migrate the fresh SQLite file and create the demo superuser; return its password."""
    manage = [sys.executable, str(ROOT / "manage.py")]
    run([*manage, "migrate", "--noinput", "-v", "0"], env, "manage.py migrate")
    password = secrets.token_urlsafe(12)
    run(
        [*manage, "createsuperuser", "--noinput", "--username", DEMO_USER,
         "--email", "demo@localhost"],
        {**env, "DJANGO_SUPERUSER_PASSWORD": password},
        "manage.py createsuperuser",
    )  # fmt: skip
    say(f"  database  {env['EXAMPLE_SQLITE_PATH']} (SQLite, migrated)")
    say(f"  superuser {DEMO_USER} (created for registration and the admin)")
    return password


def ca_file(pki: DemoPki) -> Path:
    assert pki.ca.cert_file is not None
    return pki.ca.cert_file


def find_nginx() -> str | None:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx", "/usr/local/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def wait_until(ready: Any, processes: Processes, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if ready():
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    raise StepFailed(f"{what} did not answer within {timeout:.0f} s")


def http_ok(url_host: str, port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(url_host, port, timeout=2)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    finally:
        connection.close()


def nginx_config(workdir: Path, pki: DemoPki, port: int, upstream: int, serve: bool) -> str:
    """The package's nginx recipe rendered, with the demo's additions (each asserted)."""
    text = NGINX_RECIPE.text()
    if os.geteuid() == 0:
        user, group = nginx_worker_identity()
    else:  # nginx ignores `user` (with a warning) unless it starts as root
        text = re.sub(r"(?m)^user .*\n", "", text)
        user = group = ""
    values = {
        "user": user,
        "group": group,
        "prefix": str(workdir / "nginx"),
        "listen": f"127.0.0.1:{port}",
        "server_cert": str(pki.server.cert_file),
        "server_key": str(pki.server.key_file),
        "upstream": f"127.0.0.1:{upstream}",
    }
    # The example reads the sources' default field names, as the e2e suite runs the recipe.
    text = render(text, {**values, **field_values()})
    if placeholders(text):
        raise StepFailed(f"the nginx recipe has placeholders the demo does not fill: {text!r}")
    # The recipe itself tells the app the scheme and port the client used, so absolute URLs
    # and CSRF origins say https://host:port: the demo changes nothing there, and checks it.
    for line in ("proxy_set_header Host              $http_host;",
                 "proxy_set_header X-Forwarded-Proto $scheme;"):  # fmt: skip
        if line not in text:
            raise StepFailed(f"{NGINX_RECIPE.filename} no longer has `{line}`")
    if serve:  # the admin's CSS and JavaScript
        import django

        static = Path(django.__file__).parent / "contrib" / "admin" / "static" / "admin"
        text = text.replace(
            "        location / {",
            f"        location /static/admin/ {{\n            alias {static}/;\n"
            "            types { text/css css; text/javascript js; image/svg+xml svg; }\n"
            "        }\n\n"
            "        location / {",
            1,
        )
    return text


def nginx_worker_identity() -> tuple[str, str]:
    """Under root, nginx workers drop privileges to this user."""
    for user, group in (("www-data", "www-data"), ("nginx", "nginx"), ("nobody", "nogroup")):
        try:
            pwd.getpwnam(user)
        except KeyError:
            continue
        import grp

        try:
            grp.getgrnam(group)
        except KeyError:
            group = grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
        return user, group
    raise StepFailed("no unprivileged user for nginx's workers (www-data, nginx, nobody)")


@dataclass
class Launch:
    """What both ways of starting the example need."""

    workdir: Path
    pki: DemoPki
    port: int
    serve: bool
    password: str = ""

    @property
    def base(self) -> str:
        return f"https://localhost:{self.port}"

    def env(self, source: str) -> dict[str, str]:
        return example_env(self.workdir, self.pki, source, self.base)

    def site(self, server: str, source: str, app_log: Path) -> Site:
        return Site(
            self.base, ca_file(self.pki), server, source, app_log, self.password, self.env(source)
        )


def start_behind_nginx(nginx: str, launch: Launch, processes: Processes) -> Site:
    say(f"  nginx found ({nginx}): nginx terminates TLS, gunicorn runs the app")
    site = launch.site("nginx", "nginx", launch.workdir / "gunicorn.log")
    upstream = free_port()
    processes.spawn(
        "gunicorn",
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{upstream}",
         "--workers", "1", "--threads", "4", "--graceful-timeout", "3",
         "--limit-request-field_size", str(GUNICORN_FIELD_LIMIT),
         "--error-logfile", "-", "--chdir", str(ROOT), "example_project.wsgi:application"],
        site.app_log,
        site.env,
    )  # fmt: skip
    wait_until(lambda: http_ok("127.0.0.1", upstream, "/api/certificate/"), processes, "gunicorn")
    prefix = launch.workdir / "nginx"
    prefix.mkdir(exist_ok=True)
    prefix.chmod(0o755)  # workers (www-data under root) keep temporary files here
    config = prefix / "nginx.conf"
    config.write_text(nginx_config(launch.workdir, launch.pki, launch.port, upstream, launch.serve))
    say(f"  nginx config: {config}")
    say(f"    (the package's {NGINX_RECIPE.filename} rendered as it is: it sends X-Forwarded-Proto")
    say("     and keeps the port in Host)")
    processes.spawn(
        "nginx",
        [nginx, "-p", str(prefix), "-c", str(config), "-e", str(prefix / "error.log")],
        prefix / "nginx.log",
        site.env,
    )
    wait_for_site(site, processes)
    return site


def start_runserver_mtls(launch: Launch, processes: Processes) -> Site:
    site = launch.site("runserver_mtls", "wsgi_environ", launch.workdir / "runserver_mtls.log")
    pki = launch.pki
    argv = [
        sys.executable, str(ROOT / "manage.py"), "runserver_mtls", f"127.0.0.1:{launch.port}",
        "--noreload", "--certificate", str(pki.server.cert_file), "--key", str(pki.server.key_file),
    ]  # fmt: skip
    if launch.serve:
        argv.append("--insecure")  # serve the admin's static files with DEBUG off
    processes.spawn("runserver_mtls", argv, site.app_log, site.env)
    wait_for_site(site, processes)
    return site


def wait_for_site(site: Site, processes: Processes) -> None:
    client = Client(site.base, site.ca_file)
    wait_until(
        lambda: client.send("GET", "/api/certificate/").status == 200, processes, site.server
    )


def start_example(
    args: argparse.Namespace, pki: DemoPki, workdir: Path, processes: Processes
) -> Site:
    heading("2. The example project behind real TLS")
    port = args.port or (SERVE_PORT if args.serve and port_is_free(SERVE_PORT) else free_port())
    launch = Launch(workdir, pki, port, args.serve)
    make_jwt_key(launch.env("nginx"), workdir)
    launch.password = prepare_database(launch.env("nginx"))
    nginx = find_nginx() if args.server in ("auto", "nginx") else None
    if args.server == "nginx" and nginx is None:
        raise StepFailed("--server nginx: nginx is not installed")
    site = None
    if nginx:
        try:
            site = start_behind_nginx(nginx, launch, processes)
        except StepFailed as failure:
            if args.server == "nginx":
                raise
            say(f"  nginx did not start: {failure}")
            processes.stop_all()
            say("  falling back to manage.py runserver_mtls")
    elif args.server == "auto":
        say("  nginx not found: manage.py runserver_mtls terminates TLS (development only)")
    if site is None:
        site = start_runserver_mtls(launch, processes)
    say(f"  OAUTH2_MTLS_CERTIFICATE_SOURCE={site.source}")
    say(f"  listening on {site.base}/ (server certificate verified against the demo root CA)")
    return site


# --- the walkthrough: one function per step ------------------------------------------------


def show_metadata(walk: Walk) -> None:
    heading("3. Metadata (RFC 8414 with the RFC 8705 members)")
    body = walk.exchange(
        "authorization server metadata",
        "GET",
        "/.well-known/oauth-authorization-server",
        expect=200,
        members=(
            "issuer",
            "token_endpoint",
            "introspection_endpoint",
            "registration_endpoint",
            "token_endpoint_auth_methods_supported",
            "tls_client_certificate_bound_access_tokens",
        ),
    ).json()
    walk.check(
        body.get("tls_client_certificate_bound_access_tokens") is True,
        "tls_client_certificate_bound_access_tokens is true",
    )
    methods = body.get("token_endpoint_auth_methods_supported", [])
    walk.check(
        {"tls_client_auth", "self_signed_tls_client_auth"} <= set(methods),
        "tls_client_auth and self_signed_tls_client_auth are advertised",
    )


def log_in(walk: Walk, password: str) -> None:
    """DOT's default registration permission (IsAuthenticatedDCRPermission) wants an
    authenticated user: the demo logs in to the admin and sends the session cookie and the
    CSRF token with each registration."""
    walk.exchange("fetch the login page (sets the csrftoken cookie)", "GET", "/admin/login/",
                  expect=200, cookies=True)  # fmt: skip
    walk.exchange(
        f"log in as {DEMO_USER} (a session for DOT's default registration permission)",
        "POST",
        "/admin/login/",
        expect=302,
        form={
            "csrfmiddlewaretoken": walk.client.cookies.get("csrftoken", ""),
            "username": DEMO_USER,
            "password": password,
            "next": "/admin/",
        },
        headers={"Referer": f"{walk.client.base}/admin/login/"},
        cookies=True,
        masked=("password", "csrfmiddlewaretoken"),
    )
    walk.check("sessionid" in walk.client.cookies, "logged in: the session cookie is set")


def register(walk: Walk, title: str, metadata: dict[str, Any]) -> str:
    body = walk.exchange(
        title,
        "POST",
        "/o/register/",
        expect=201,
        json_body={"grant_types": ["client_credentials"], **metadata},
        headers={
            "X-CSRFToken": walk.client.cookies.get("csrftoken", ""),
            "Referer": f"{walk.client.base}/admin/",
        },
        cookies=True,
    ).json()
    walk.check("client_secret" not in body, "no client_secret: the certificate is the credential")
    return str(body["client_id"])


def pki_client_metadata() -> dict[str, Any]:
    return {
        "client_name": "demo PKI client",
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_dns": PKI_CLIENT_DNS,
        "tls_client_certificate_bound_access_tokens": True,
    }


def self_signed_metadata(walk: Walk) -> dict[str, Any]:
    return {
        "client_name": "demo self-signed client",
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [walk.pki.self_signed_client.jwk()]},
        "tls_client_certificate_bound_access_tokens": True,
    }


def register_over_http(walk: Walk, password: str) -> tuple[str, str]:
    heading("4. Registering the demo clients over HTTP (RFC 7591 with RFC 8705 metadata)")
    log_in(walk, password)
    pki_id = register(walk, "register the PKI client (tls_client_auth, SAN dns)",
                      pki_client_metadata())  # fmt: skip
    self_signed_id = register(
        walk, "register the self-signed client (self_signed_tls_client_auth, jwks with x5c)",
        self_signed_metadata(walk),
    )  # fmt: skip
    return pki_id, self_signed_id


CREATE_APPLICATION = (
    "from oauth2_provider.models import get_application_model as m; "
    "print('client_id=' + m().objects.create(name={name!r}, client_type='confidential', "
    "authorization_grant_type='client-credentials').client_id)"
)


def register_with_command(walk: Walk, env: dict[str, str]) -> tuple[str, str]:
    heading("4. Registering the demo clients with manage.py mtls_set_client")
    manage = [sys.executable, str(ROOT / "manage.py")]
    ids = []
    for name, cert, options in (
        ("demo PKI client", walk.pki.pki_client, ["--use", "san_dns"]),
        ("demo self-signed client", walk.pki.self_signed_client,
         ["--method", "self_signed_tls_client_auth"]),
    ):  # fmt: skip
        output = run([*manage, "shell", "-c", CREATE_APPLICATION.format(name=name)], env, "shell")
        client_id = re.findall(r"^client_id=(\S+)$", output, re.MULTILINE)[-1]
        say(f"\n(a confidential client_credentials application {name!r}: {client_id})")
        argv = ["mtls_set_client", client_id, "--certificate", str(cert.cert_file), *options,
                "--bound-tokens"]  # fmt: skip
        say(f"\n$ python manage.py {' '.join(argv)}")
        for line in run([*manage, *argv], env, "mtls_set_client").splitlines():
            say(f"  {line}")
        ids.append(client_id)
    return ids[0], ids[1]


def token(walk: Walk, title: str, client_id: str, cert: Issued | None, expect: int = 200) -> str:
    response = walk.exchange(
        title,
        "POST",
        "/o/token/",
        expect=expect,
        cert=cert,
        form={"grant_type": "client_credentials", "client_id": client_id, "scope": "read"},
    )
    return str(response.json().get("access_token", ""))


def whoami(walk: Walk, title: str, access_token: str, cert: Issued | None, expect: int) -> Any:
    return walk.exchange(
        title,
        "GET",
        "/api/whoami/",
        expect=expect,
        cert=cert,
        headers={"Authorization": f"Bearer {access_token}"},
    ).json()


def pki_client_steps(walk: Walk, client_id: str) -> None:
    pki = walk.pki
    heading("5. tls_client_auth: a certificate-bound token for the PKI client")
    token(walk, "token request without the certificate (refused: it is the credential)",
          client_id, None, expect=401)  # fmt: skip
    access_token = token(
        walk, "token request, client_credentials, client_id in the body, certificate in TLS",
        client_id, pki.pki_client,
    )  # fmt: skip

    heading("6. The bound token at the API (/api/whoami/)")
    seen = whoami(walk, "with the PKI client's certificate", access_token, pki.pki_client, 200)
    walk.check(seen.get("x5t#S256") == pki.pki_client.x5t_s256,
               "the API saw the token bound to the PKI client's certificate")  # fmt: skip
    whoami(walk, "the same token without a certificate (a stolen token)", access_token, None, 401)
    whoami(walk, "the same token with a stranger's certificate", access_token, pki.stranger, 401)

    heading("7. Introspection (RFC 7662) with cnf, authenticated by the PKI client's certificate")
    body = walk.exchange(
        "introspect the token",
        "POST",
        "/o/introspect/",
        expect=200,
        cert=pki.pki_client,
        form={"token": access_token, "client_id": client_id},
    ).json()
    thumbprint = body.get("cnf", {}).get("x5t#S256")
    walk.check(thumbprint == pki.pki_client.x5t_s256,
               f"cnf x5t#S256 {thumbprint} is the PKI client's certificate")  # fmt: skip


def self_signed_steps(walk: Walk, client_id: str) -> None:
    cert = walk.pki.self_signed_client
    heading("8. self_signed_tls_client_auth: the self-signed client")
    access_token = token(walk, "token request with the self-signed certificate", client_id, cert)
    seen = whoami(walk, "whoami with the self-signed certificate", access_token, cert, 200)
    walk.check(seen.get("x5t#S256") == cert.x5t_s256,
               "the API saw the token bound to the self-signed certificate")  # fmt: skip


def b64_json(part: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def jwt_steps(walk: Walk, env: dict[str, str], client_id: str) -> None:
    pki = walk.pki
    heading("9. JWT access tokens (RFC 9068) carrying cnf (RFC 8705 §3.1)")
    argv = ["mtls_set_client", client_id, "--access-token-format", "jwt"]
    say(f"\n$ python manage.py {' '.join(argv)}")
    output = run([sys.executable, str(ROOT / "manage.py"), *argv], env, "mtls_set_client")
    for line in output.splitlines():
        say(f"  {line}")
    access_token = token(walk, "token request: the PKI client now gets JWT access tokens",
                         client_id, pki.pki_client)  # fmt: skip
    parts = access_token.split(".")
    walk.check(len(parts) == 3, "the access token is a JWS (header.claims.signature)")
    header, claims = b64_json(parts[0]), b64_json(parts[1])
    say("\n  the token, decoded (the signature is checked below):")
    print_json("  header", header)
    print_json("  claims", claims)
    thumbprint = claims.get("cnf", {}).get("x5t#S256")
    say(f"  >>> cnf.x5t#S256 = {thumbprint}")
    say("  >>> the SHA-256 thumbprint of the PKI client's certificate: the token is bound to it")
    walk.check(header.get("typ") == "at+jwt", 'typ is "at+jwt" (RFC 9068 §2.1)')
    walk.check(thumbprint == pki.pki_client.x5t_s256,
               "cnf x5t#S256 is the PKI client's certificate (RFC 8705 §3.1)")  # fmt: skip
    jwks = walk.exchange("the JWK set the token is signed with", "GET",
                         "/o/.well-known/jwks.json", expect=200).json()  # fmt: skip
    from jwcrypto import jwk, jws

    keys = jwk.JWKSet.from_json(json.dumps(jwks))
    verifier = jws.JWS()
    verifier.deserialize(access_token)
    verifier.verify(keys.get_key(header["kid"]), alg=header["alg"])
    walk.check(True, f"signature verified with jwcrypto against kid {short(header['kid'])}")
    seen = whoami(walk, "the JWT at the API with its certificate (checked locally, no database)",
                  access_token, pki.pki_client, 200)  # fmt: skip
    walk.check(seen.get("x5t#S256") == pki.pki_client.x5t_s256,
               "the API saw the JWT bound to the PKI client's certificate")  # fmt: skip
    whoami(walk, "the same JWT without a certificate (a stolen token)", access_token, None, 401)
    whoami(walk, "the same JWT with a stranger's certificate", access_token, pki.stranger, 401)


def summary(walk: Walk, elapsed: float) -> None:
    heading("Summary")
    for item in walk.exchanges:
        say(f"  {item.status}  (expected {item.expected})  {item.title}")
    say(f"  all {len(walk.exchanges)} exchanges answered as expected ({elapsed:.1f} s)")


def registration_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    return "http" if importlib.util.find_spec("django_oauth_mtls.registration") else "command"


def register_clients(walk: Walk, site: Site, mode: str) -> tuple[str, str]:
    if mode == "http":
        return register_over_http(walk, site.password)
    return register_with_command(walk, site.env)


def serve(site: Site, pki: DemoPki, pki_id: str, processes: Processes, workdir: Path) -> None:
    client = pki.pki_client
    tls = f"--cacert {pki.ca.cert_file} --cert {client.cert_file} --key {client.key_file}"
    indent = " " * 16
    heading(f"The example is running at {site.base}/ ({site.server}); Ctrl-C stops it")
    say(f"  admin       {site.base}/admin/  (user {DEMO_USER}, password {site.password})")
    say(f"  demo CA     {pki.ca.cert_file}  (trust it, or accept the browser's warning)")
    say(f"  PKI client  client_id {pki_id}")
    say("  a token     curl " + tls + " \\")
    say(f"{indent}-d grant_type=client_credentials -d client_id={pki_id} {site.base}/o/token/")
    say("  the API     curl " + tls + " \\")
    say(f'{indent}-H "Authorization: Bearer <the token>" {site.base}/api/whoami/')
    say(f"  files       {workdir} (removed on exit)")
    say("  serving until Ctrl-C")
    while True:
        processes.check_alive()
        time.sleep(0.5)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m example_project.demo",
        description="Walk through the example project with real certificates, then stop.",
    )
    parser.add_argument("--serve", action="store_true", help="keep running until Ctrl-C")
    parser.add_argument("--server", choices=["auto", "nginx", "runserver"], default="auto",
                        help="auto: nginx when installed, else runserver_mtls")  # fmt: skip
    parser.add_argument("--registration", choices=["auto", "http", "command"], default="auto",
                        help="http: RFC 7591 registration; command: mtls_set_client")  # fmt: skip
    parser.add_argument("--port", type=int, default=0,
                        help=f"HTTPS port (default: free; {SERVE_PORT} with --serve)")  # fmt: skip
    return parser.parse_args(argv)


def make_workdir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="oauth-mtls-demo-"))
    if os.geteuid() == 0:
        workdir.chmod(0o711)  # nginx's workers (www-data) traverse it; nobody can list it
    return workdir


def interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started ignoring it
    started_at = time.monotonic()
    workdir = make_workdir()
    processes = Processes()
    status = 1
    say("== django-oauth-mtls demo: RFC 8705 with real TLS and real certificates")
    say(f"  working directory {workdir} (removed at the end)")
    try:
        pki = make_pki(workdir)
        site = start_example(args, pki, workdir, processes)
        walk = Walk(Client(site.base, site.ca_file), pki, site.app_log)
        walk.skip_app_log()
        show_metadata(walk)
        pki_id, self_signed_id = register_clients(walk, site, registration_mode(args.registration))
        if args.serve:
            serve(site, pki, pki_id, processes, workdir)
        pki_client_steps(walk, pki_id)
        self_signed_steps(walk, self_signed_id)
        jwt_steps(walk, site.env, pki_id)
        summary(walk, time.monotonic() - started_at)
        status = 0
    except StepFailed as failure:
        say(f"\n!! FAILED: {failure}")
        for started in processes.started:
            say(f"--- last lines of {started.log.name}:\n{tail(started.log)}")
    except KeyboardInterrupt:
        say("\ninterrupted")
        status = 0 if args.serve else 130
    finally:
        # A second Ctrl-C must not cut the clean-up short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        heading("Stopping everything the demo started")
        processes.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
        say(f"  removed {workdir}")
        say(f"  exit status {status} after {time.monotonic() - started_at:.1f} s")
    return status


if __name__ == "__main__":
    sys.exit(main())
