"""An authorization server in its own process and its own database, for remote-RS tests.

A resource server that shares the AS's database finds every token locally and never
introspects, so the AS here is the example project in a subprocess: its own SQLite file
(``EXAMPLE_SQLITE_PATH``; ``DATABASE_URL`` is removed from its environment), behind
``manage.py runserver_mtls`` with a server certificate from its own CA, client certificates
verified against ``--ca`` and handed to the app through ``environ["SSL_CLIENT_CERT"]``
(``OAUTH2_MTLS_CERTIFICATE_SOURCE=wsgi_environ``, ``OAUTH2_MTLS_TRUSTED_CA``).

Applications are created before the server starts by ``python -m tests.as_server setup SPEC``
under the same environment (migrate, then one application per spec entry); it prints
``{name: client_id}`` as JSON.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID

ROOT = Path(__file__).resolve().parents[1]
READY = "the certificate reaches the application as"  # last line of runserver_mtls's banner
URL_LINE = re.compile(r"Starting (?:\w+ )?development server at (https://[^/\s]+)/")  # 6.1: "WSGI "
START_TIMEOUT = 60.0


def as_environment(database: Path, trusted_ca: Path) -> dict[str, str]:
    """The example project as an AS: its own SQLite file, ``wsgi_environ``, a trusted CA."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TEST_SQLITE_PATH")}
    env.update(
        DJANGO_SETTINGS_MODULE="example_project.settings",
        EXAMPLE_SQLITE_PATH=str(database),
        OAUTH2_MTLS_CERTIFICATE_SOURCE="wsgi_environ",
        OAUTH2_MTLS_TRUSTED_CA=str(trusted_ca),
        PYTHONUNBUFFERED="1",
        DJANGO_COLORS="nocolor",
    )
    return env


def ssl_context(ca_file: Path | str, directory: Path, certificate: Any = None) -> ssl.SSLContext:
    """A client context trusting ``ca_file``, presenting ``certificate`` (a ``pki.Issued``).

    httpx 0.28 ignores ``cert=`` when ``verify`` is a path: build the context ourselves.
    """
    context = ssl.create_default_context(cafile=str(ca_file))
    if certificate is not None:
        stem = certificate.x5t_s256[:12]
        cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
        cert_file.write_text(certificate.pem)
        key_file.write_text(certificate.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


@dataclass
class AuthorizationServer:
    process: subprocess.Popen[str]
    directory: Path
    server_ca_file: Path
    client_ids: dict[str, str]
    lines: list[str] = field(default_factory=list)
    url: str = ""

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    @property
    def introspection_url(self) -> str:
        return f"{self.url}/o/introspect/"

    def post(self, path: str, data: dict[str, str], certificate: Any = None, **kwargs: Any) -> Any:
        """POST a form to the AS over TLS, presenting ``certificate`` (a ``pki.Issued``)."""
        import httpx

        context = ssl_context(self.server_ca_file, self.directory, certificate)
        return httpx.post(f"{self.url}{path}", data=data, verify=context, timeout=15, **kwargs)

    def token(self, name: str, certificate: Any = None, **kwargs: Any) -> dict[str, Any]:
        """A client-credentials token (scope ``read``) for the application ``name``."""
        response = self.post(
            "/o/token/",
            {
                "grant_type": "client_credentials",
                "client_id": self.client_ids[name],
                "scope": "read",
            },
            certificate,
            **kwargs,
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def _run(command: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@contextmanager
def authorization_server(
    directory: Path, *, trusted_ca: Any, apps: list[dict[str, Any]]
) -> Iterator[AuthorizationServer]:
    """Start the AS; ``trusted_ca`` (a ``pki.Issued``) issues the clients' certificates.

    ``apps`` entries: ``{"name", "method" (an auth method or None), "san_dns", "bound",
    "secret"}``. The server always stops, whatever the test did.
    """
    from tests import pki

    directory.mkdir(parents=True, exist_ok=True)
    server_ca = pki.make_ca("AS Server CA")
    leaf = pki.issue(
        pki.name(CN="localhost", O="Test AS"),
        issuer=server_ca,
        dns=("localhost",),
        ips=("127.0.0.1",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    files = {
        "server_ca": (directory / "server-ca.pem", server_ca.pem),
        "server": (directory / "server.pem", leaf.pem),
        "server_key": (directory / "server-key.pem", leaf.key_pem),
        "trusted_ca": (directory / "trusted-ca.pem", trusted_ca.pem),
    }
    for path, text in files.values():
        path.write_text(text)
    env = as_environment(directory / "as.sqlite3", files["trusted_ca"][0])
    client_ids = json.loads(
        _run([sys.executable, "-m", "tests.as_server", "setup", json.dumps(apps)], env)
        .strip()
        .splitlines()[-1]
    )
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "runserver_mtls",
            "127.0.0.1:0",
            "--noreload",
            "--certificate",
            str(files["server"][0]),
            "--key",
            str(files["server_key"][0]),
            "--ca",
            str(files["trusted_ca"][0]),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = AuthorizationServer(process, directory, files["server_ca"][0], client_ids)
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            server.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not any(READY in line for line in list(server.lines)):
            if process.poll() is not None or time.monotonic() > deadline:
                reader.join(timeout=5)
                raise RuntimeError(f"the AS did not start:\n{server.output}")
            time.sleep(0.05)
        match = URL_LINE.search(server.output)
        if match is None:
            raise RuntimeError(f"no URL in the AS's banner:\n{server.output}")
        server.url = match.group(1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        reader.join(timeout=5)
        stdout.close()


# --- run inside the AS's environment ---------------------------------------------------------


def _setup(spec: list[dict[str, Any]]) -> dict[str, str]:
    import django

    django.setup()
    from django.core.management import call_command
    from oauth2_provider.models import get_application_model

    from django_oauth_mtls.models import MTLSClient

    call_command("migrate", interactive=False, verbosity=0)
    application_model = get_application_model()
    client_ids: dict[str, str] = {}
    for entry in spec:
        app = application_model.objects.create(
            name=entry["name"],
            client_type="confidential",
            authorization_grant_type="client-credentials",
            client_secret=entry.get("secret") or "unused-secret-of-an-mtls-client",
            hash_client_secret=False,
        )
        if entry.get("method"):
            row = MTLSClient(
                application=app,
                token_endpoint_auth_method=entry["method"],
                tls_client_auth_san_dns=entry.get("san_dns", ""),
                tls_client_certificate_bound_access_tokens=bool(entry.get("bound")),
            )
            row.full_clean()
            row.save()
        client_ids[entry["name"]] = app.client_id
    return client_ids


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "setup":
        sys.exit("usage: python -m tests.as_server setup SPEC_JSON")
    print(json.dumps(_setup(json.loads(sys.argv[2]))))
