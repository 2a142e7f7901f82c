"""``manage.py runserver_mtls`` for real: a subprocess, TLS, client certificates, the app's view.

The server runs with ``tests.settings_wsgi_environ`` (in-memory SQLite: ``/api/certificate/``
touches no database, so the unapplied-migrations notice at start-up is expected) on port 0;
the port is read from Django's "Starting development server at" line.
"""

from __future__ import annotations

import datetime as dt
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

import httpx
import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.core.management import CommandError, call_command

from tests import pki

ROOT = Path(__file__).resolve().parents[2]
READY = "the certificate reaches the application as"  # the last line of the start-up banner
URL_LINE = re.compile(r"Starting (?:\w+ )?development server at (https://[^/\s]+)/")  # 6.1: "WSGI "
CERT_LINE = re.compile(r"TLS server certificate: (\S+)")


@dataclass
class Server:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    url: str = ""
    certificate: str = ""

    @property
    def output(self) -> str:
        return "\n".join(self.lines)


@contextmanager
def runserver_mtls(*args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    process = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "manage.py"),
            "runserver_mtls",
            "127.0.0.1:0",
            "--noreload",
            *args,
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings_wsgi_environ",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_COLORS": "nocolor",
            **(env or {}),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Server(process)
    assert process.stdout is not None
    stdout = process.stdout

    def read() -> None:
        for line in stdout:
            server.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 60
        while not any(READY in line for line in server.lines):
            if process.poll() is not None or time.monotonic() > deadline:
                reader.join(timeout=5)
                pytest.fail(f"runserver_mtls did not start:\n{server.output}")
            time.sleep(0.05)
        url = URL_LINE.search(server.output)
        certificate = CERT_LINE.search(server.output)
        assert url and certificate, server.output
        server.url, server.certificate = url.group(1), certificate.group(1)
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


def client_context(
    server: Server, tmp_path: Path, client: pki.Issued | None, ca: str | None = None
) -> ssl.SSLContext:
    """httpx 0.28 ignores ``cert=`` when ``verify`` is a path: build the context ourselves."""
    context = ssl.create_default_context(cafile=ca or server.certificate)
    if client is not None:
        cert_file, key_file = tmp_path / "client.pem", tmp_path / "client-key.pem"
        cert_file.write_text(client.pem)
        key_file.write_text(client.key_pem)
        context.load_cert_chain(cert_file, key_file)
    return context


def seen(
    server: Server, tmp_path: Path, client: pki.Issued | None, ca: str | None = None
) -> dict[str, object]:
    context = client_context(server, tmp_path, client, ca)
    response = httpx.get(f"{server.url}/api/certificate/", verify=context, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def self_signed(common_name: str, **kwargs: object) -> pki.Issued:
    return pki.issue(pki.name(CN=common_name), **kwargs)  # type: ignore[arg-type]


def test_any_client_certificate_with_a_generated_server_certificate(tmp_path, client_cert):
    # A stale SSL_CLIENT_CERT in the server's process environment must not look like a certificate.
    stale = {"SSL_CLIENT_CERT": self_signed("stale").pem, "SSL_CLIENT_CERT_CHAIN_0": "junk"}
    with runserver_mtls(env=stale) as server:
        assert server.url.startswith("https://127.0.0.1:")
        assert "DEVELOPMENT server" in server.output
        assert "Never use it in production" in server.output
        assert "accepted WITHOUT verification" in server.output
        generated = Path(server.certificate)
        assert generated.is_file() and generated.name == "localhost.pem"

        # A PKI client whose CA the server has never heard of.
        assert seen(server, tmp_path, client_cert) == {
            "x5t#S256": client_cert.x5t_s256,
            "subject": "CN=client-one,O=Example\\, Inc.,C=DE",
            "problem": None,
        }
        # Self-signed (RFC 8705 §2.2), even expired: the app, not the server, judges dates.
        fresh = self_signed("self-signed-client")
        assert seen(server, tmp_path, fresh)["x5t#S256"] == fresh.x5t_s256
        expired = self_signed(
            "expired-client",
            not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
        )
        assert seen(server, tmp_path, expired)["x5t#S256"] == expired.x5t_s256
        # No certificate: the intake says absent (the stale environment variable was blanked).
        assert seen(server, tmp_path, None) == {
            "x5t#S256": None,
            "subject": None,
            "problem": "absent",
        }

        # Plain HTTP on the TLS port is refused and logged; the server keeps serving.
        with pytest.raises(httpx.TransportError):
            httpx.get(server.url.replace("https://", "http://") + "/api/certificate/", timeout=10)
        assert seen(server, tmp_path, fresh)["x5t#S256"] == fresh.x5t_s256

    assert server.process.returncode == 0, server.output
    assert "plain HTTP from 127.0.0.1 on a TLS port" in server.output
    assert not generated.parent.exists(), "the generated certificate is deleted on exit"


def test_ca_option_verifies_client_certificates(tmp_path, root_ca, client_cert):
    server_cert = pki.issue(
        pki.name(CN="localhost"),
        issuer=root_ca,
        dns=("localhost",),
        ips=("127.0.0.1",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    files = {
        "server.pem": server_cert.pem,
        "server-key.pem": server_cert.key_pem,
        "ca.pem": root_ca.pem,
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    ca = str(tmp_path / "ca.pem")
    args = (
        "--certificate",
        str(tmp_path / "server.pem"),
        "--key",
        str(tmp_path / "server-key.pem"),
        "--ca",
        ca,
    )
    with runserver_mtls(*args) as server:
        assert "DEVELOPMENT server" in server.output
        assert f"verified against {ca}" in server.output

        assert seen(server, tmp_path, client_cert, ca)["x5t#S256"] == client_cert.x5t_s256
        assert seen(server, tmp_path, None, ca)["problem"] == "absent"
        # A certificate that does not verify fails the handshake (TLS 1.3: the client learns it
        # when it reads), it is not downgraded to "no certificate".
        with pytest.raises(httpx.TransportError):
            seen(server, tmp_path, self_signed("stranger"), ca)
        # The server survives it.
        assert seen(server, tmp_path, client_cert, ca)["x5t#S256"] == client_cert.x5t_s256
    assert "certificate verify failed" in server.output


def test_bad_options_are_command_errors(tmp_path):
    with pytest.raises(CommandError, match="--key needs --certificate"):
        call_command("runserver_mtls", key=str(tmp_path / "key.pem"), use_reloader=False)
    with pytest.raises(CommandError, match="cannot load the server certificate"):
        call_command(
            "runserver_mtls", certificate=str(tmp_path / "missing.pem"), use_reloader=False
        )
