"""Two real HTTP clients for the e2e tests: curl (subprocess) and httpx.

Both present a client certificate from files when given one, trust the test CA for the
proxy's server certificate, can send arbitrary (forged) fields, and can connect from another
loopback source address (``127.0.0.2``) to play an untrusted peer.
"""

from __future__ import annotations

import json
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

CLIENTS = ("curl", "httpx")
TIMEOUT = 15.0


@dataclass(frozen=True)
class Credentials:
    """A client certificate on disk and the thumbprint the client computed itself."""

    cert_file: Path
    key_file: Path
    x5t_s256: str
    subject: str


@dataclass(frozen=True)
class Reply:
    status: int
    body: str

    def json(self) -> dict[str, Any]:
        try:
            data = json.loads(self.body)
        except ValueError as exc:
            raise AssertionError(f"HTTP {self.status}, not JSON: {self.body[:500]!r}") from exc
        assert isinstance(data, dict)
        return data


def fetch(
    client: str,
    url: str,
    *,
    ca: Path | None = None,
    cert: Credentials | None = None,
    headers: list[tuple[str, str]] | None = None,
    local_address: str | None = None,
    curl: str = "curl",
) -> Reply:
    headers = headers or []
    if client == "curl":
        return _curl(curl, url, ca, cert, headers, local_address)
    if client == "httpx":
        return _httpx(url, ca, cert, headers, local_address)
    raise ValueError(client)


def _curl(
    curl: str,
    url: str,
    ca: Path | None,
    cert: Credentials | None,
    headers: list[tuple[str, str]],
    local_address: str | None,
) -> Reply:
    argv = [curl, "--silent", "--show-error", "--max-time", str(int(TIMEOUT)), "--noproxy", "*"]
    if ca is not None:
        argv += ["--cacert", str(ca)]
    if cert is not None:
        argv += ["--cert", str(cert.cert_file), "--key", str(cert.key_file)]
    if local_address is not None:
        argv += ["--interface", local_address]
    for name, value in headers:
        argv += ["--header", f"{name}: {value}"]
    argv += ["--write-out", "\n%{http_code}", url]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT + 5, check=False)  # noqa: S603
    if result.returncode:
        raise AssertionError(f"curl exited {result.returncode}: {result.stderr.strip()}")
    body, _, status = result.stdout.rpartition("\n")
    return Reply(int(status), body)


def _httpx(
    url: str,
    ca: Path | None,
    cert: Credentials | None,
    headers: list[tuple[str, str]],
    local_address: str | None,
) -> Reply:
    # httpx 0.28 ignores cert= when verify= is a path: build the context ourselves.
    context = ssl.create_default_context()
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    transport = httpx.HTTPTransport(verify=context, local_address=local_address)
    with httpx.Client(transport=transport, timeout=TIMEOUT, trust_env=False) as session:
        response = session.get(url, headers=headers)
    return Reply(response.status_code, response.text)
