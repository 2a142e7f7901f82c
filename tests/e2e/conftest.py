"""Fixtures of the end-to-end tests: a PKI on disk, the example under gunicorn, real proxies.

Session-scoped: one migrated SQLite file, one gunicorn per certificate source, one proxy per
kind; all stopped at the end of the session. A missing proxy binary skips its tests with a
reason (and fails them when ``CI=true``), through ``tests.conftest.require_tool``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests import pki
from tests.conftest import require_tool
from tests.e2e import servers
from tests.e2e.clients import CLIENTS, Credentials, Reply, fetch

#: proxy → (certificate source it feeds, how it encodes a certificate in X-SSL-Client-Cert)
PROXIES: dict[str, tuple[str, Callable[[pki.Issued], str]]] = {
    "nginx": ("nginx", pki.Issued.nginx),
    "haproxy": ("haproxy", pki.Issued.b64),
    "apache": ("apache", pki.Issued.apache),
}


@dataclass
class E2EPki:
    tls: servers.TLSFiles
    ca: pki.Issued
    clients: dict[str, Credentials]
    #: certificates whose encodings a client forges; their thumbprints must never be seen
    forged: pki.Issued


@dataclass
class Proxy:
    name: str
    source: str
    url: str
    server: servers.Managed
    app: servers.Managed
    encode: Callable[[pki.Issued], str]


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("e2e")
    servers.open_for_workers(directory, stop_at=tmp_path_factory.getbasetemp().parent)
    return directory


def _subdir(parent: Path, name: str) -> Path:
    directory = parent / name
    directory.mkdir()
    # Proxy workers (www-data under root) create temporary files and mutexes here.
    directory.chmod(0o777)
    return directory


def _write(path: Path, text: str, mode: int = 0o644) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def _key_pem(issued: pki.Issued) -> str:
    return issued.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode("ascii")


def thumbprint_of_file(pem_file: Path) -> str:
    """x5t#S256 as a client computes it from its own PEM file (RFC 8705 §3.1), without pki.py."""
    der = ssl.PEM_cert_to_DER_cert(pem_file.read_text())
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


@pytest.fixture(scope="session")
def e2e_pki(e2e_dir: Path, root_ca: pki.Issued, client_cert: pki.Issued) -> E2EPki:
    directory = _subdir(e2e_dir, "pki")
    server = pki.issue(
        pki.name(CN="localhost"),
        issuer=root_ca,
        dns=("localhost",),
        ips=("127.0.0.1",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    self_signed = pki.issue(
        pki.name(O="Example, Inc.", CN="self-signed-client"), dns=("self-signed.example.com",)
    )
    # The server's key is read by the proxies' master processes only (root or the invoking user).
    tls = servers.TLSFiles(
        ca=_write(directory / "ca.pem", root_ca.pem),
        server_cert=_write(directory / "server.pem", server.pem + root_ca.pem),
        server_key=_write(directory / "server.key", _key_pem(server), 0o600),
        server_pem=_write(directory / "server-and-key.pem", server.pem + _key_pem(server), 0o600),
    )
    # Over 8190 bytes once encoded by any of the proxies: gunicorn's default field limit.
    large = pki.issue(
        pki.name(O="Example, Inc.", CN="large-client"),
        issuer=root_ca,
        dns=tuple(f"host-{i:04d}.large-client.example.com" for i in range(200)),
    )
    clients = {}
    for label, issued in (("pki", client_cert), ("self_signed", self_signed), ("large", large)):
        cert_file = _write(directory / f"{label}.pem", issued.pem)
        clients[label] = Credentials(
            cert_file=cert_file,
            key_file=_write(directory / f"{label}.key", _key_pem(issued), 0o600),
            x5t_s256=thumbprint_of_file(cert_file),
            subject=issued.cert.subject.rfc4514_string(),
        )
    forged = pki.issue(pki.name(CN="victim"), issuer=root_ca)
    return E2EPki(tls=tls, ca=root_ca, clients=clients, forged=forged)


@pytest.fixture(scope="session")
def example_db(e2e_dir: Path) -> Path:
    """The example project's SQLite database, migrated once per session."""
    sqlite_path = e2e_dir / "example.sqlite3"
    servers.migrate(sqlite_path, e2e_dir / "migrate.log")
    return sqlite_path


class AppServers:
    """One gunicorn per certificate source, started on first use, stopped at session end."""

    def __init__(self, directory: Path, sqlite_path: Path) -> None:
        self.directory = directory
        self.sqlite_path = sqlite_path
        self.running: dict[str, servers.Managed] = {}

    def __call__(self, source: str) -> servers.Managed:
        server = self.running.get(source)
        if server is None or not server.alive():
            directory = _subdir(self.directory, f"gunicorn-{source}-{len(self.running)}")
            server = servers.start_gunicorn(source, directory, self.sqlite_path)
            self.running[source] = server
        return server

    def stop(self) -> None:
        for server in self.running.values():
            server.stop()


@pytest.fixture(scope="session")
def app_servers(e2e_dir: Path, example_db: Path) -> Iterator[AppServers]:
    registry = AppServers(e2e_dir, example_db)
    yield registry
    registry.stop()


def _proxy(
    name: str,
    start: Callable[[str, Path, servers.TLSFiles, int], servers.Managed],
    binary: str,
    e2e_dir: Path,
    e2e_pki: E2EPki,
    app_servers: AppServers,
) -> Iterator[Proxy]:
    source, encode = PROXIES[name]
    app = app_servers(source)
    server = start(binary, _subdir(e2e_dir, name), e2e_pki.tls, app.port)
    try:
        yield Proxy(name, source, f"https://127.0.0.1:{server.port}", server, app, encode)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def nginx_proxy(e2e_dir: Path, e2e_pki: E2EPki, app_servers: AppServers) -> Iterator[Proxy]:
    binary = require_tool("nginx")
    yield from _proxy("nginx", servers.start_nginx, binary, e2e_dir, e2e_pki, app_servers)


@pytest.fixture(scope="session")
def haproxy_proxy(e2e_dir: Path, e2e_pki: E2EPki, app_servers: AppServers) -> Iterator[Proxy]:
    binary = require_tool("haproxy")
    yield from _proxy("haproxy", servers.start_haproxy, binary, e2e_dir, e2e_pki, app_servers)


@pytest.fixture(scope="session")
def apache_proxy(e2e_dir: Path, e2e_pki: E2EPki, app_servers: AppServers) -> Iterator[Proxy]:
    binary = require_tool("apache2", "httpd")
    if not servers.APACHE_MODULES.is_dir():
        message = f"Apache modules not found in {servers.APACHE_MODULES} (Debian's layout)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(message)
        pytest.skip(message)
    yield from _proxy("apache", servers.start_apache, binary, e2e_dir, e2e_pki, app_servers)


@pytest.fixture(params=list(PROXIES))
def proxy(request: pytest.FixtureRequest) -> Proxy:
    return request.getfixturevalue(f"{request.param}_proxy")


@dataclass(frozen=True)
class Client:
    """curl or httpx, trusting the test CA."""

    kind: str
    ca: Path
    curl: str = "curl"

    def get(self, url: str, **options: Any) -> Reply:
        return fetch(self.kind, url, ca=self.ca, curl=self.curl, **options)


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest, e2e_pki: E2EPki) -> Client:
    curl = require_tool("curl") if request.param == "curl" else "curl"
    return Client(request.param, e2e_pki.tls.ca, curl)
