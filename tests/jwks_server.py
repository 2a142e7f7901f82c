"""A loopback https server for ``jwks_uri`` tests, and JWK helpers.

The server listens on 127.0.0.1 only, with a certificate for ``localhost``, ``127.0.0.1`` and
``jwks.example.test`` issued by its own test CA (``tests/pki.py``); ``client_context()`` is the
TLS context that trusts that CA (tests put it in place of ``jwks_fetch._ssl_context``). Routes
are scripted per path: status, body, headers, a delay before answering, a body dripped byte by
byte, or no ``Content-Length``. ``hits`` counts requests per path, so tests can prove a fetch
did (or did not) happen.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cryptography.x509.oid import ExtendedKeyUsageOID

from tests import pki

HOSTNAMES = ("localhost", "jwks.example.test")


def jwk_of(issued: pki.Issued, **members: Any) -> dict[str, Any]:
    """The public JWK of a certificate's key, with ``x5c`` = [the certificate]."""
    from jwcrypto import jwk

    key = jwk.JWK.from_pyca(issued.cert.public_key())
    data: dict[str, Any] = key.export_public(as_dict=True)
    data["x5c"] = [base64.b64encode(issued.der).decode("ascii")]
    data.update(members)
    return data


def jwk_set(*issued: pki.Issued) -> dict[str, Any]:
    return {"keys": [jwk_of(item) for item in issued]}


def self_signed(common_name: str = "self-signed-client", **kwargs: Any) -> pki.Issued:
    """A self-signed client certificate (EC P-256 unless ``key=`` says otherwise)."""
    return pki.issue(pki.name(CN=common_name), **kwargs)


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line
    drip: float = 0.0  # seconds between body bytes (a slow server)
    content_length: bool = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies are allowed

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        owner: JWKSServer = self.server.owner  # type: ignore[attr-defined]
        owner.hits[self.path] += 1
        route = owner.routes.get(self.path, Route(status=404, body=b"not found"))
        if route.delay:
            time.sleep(route.delay)
        with contextlib.suppress(OSError):
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.content_length:
                self.send_header("Content-Length", str(len(route.body)))
            self.end_headers()
            if route.drip:
                for index in range(len(route.body)):
                    self.wfile.write(route.body[index : index + 1])
                    self.wfile.flush()
                    time.sleep(route.drip)
            else:
                self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None


class _TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, owner: JWKSServer, context: ssl.SSLContext) -> None:
        self.owner = owner
        self.tls = context
        super().__init__(("127.0.0.1", 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs in the request's thread, never in the accept loop.
        request.settimeout(10)
        try:
            tls_request = self.tls.wrap_socket(request, server_side=True)
        except OSError:
            return
        try:
            super().finish_request(tls_request, client_address)
        finally:
            with contextlib.suppress(OSError):
                tls_request.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that give up (timeouts) are expected


class JWKSServer:
    """``with JWKSServer() as server: server.serve_json("/jwks", {...}); server.url("/jwks")``"""

    def __init__(self) -> None:
        self.ca = pki.make_ca("JWKS Server Test CA")
        self.certificate = pki.issue(
            pki.name(CN="localhost"),
            issuer=self.ca,
            dns=HOSTNAMES,
            ips=("127.0.0.1",),
            eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
        )
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self._httpd: _TLSServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> JWKSServer:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        fd, path = tempfile.mkstemp(suffix=".pem")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(self.certificate.pem + self.certificate.key_pem)
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        self._httpd = _TLSServer(self, context)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> JWKSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        self.routes.clear()
        self.hits.clear()

    # --- addresses and trust ---
    @property
    def port(self) -> int:
        assert self._httpd is not None, "start() the server first"
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/jwks", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}{path}"

    def client_context(self) -> ssl.SSLContext:
        """A TLS client context trusting only this server's CA (host names checked)."""
        context = ssl.create_default_context(cadata=self.ca.pem)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    # --- routes ---
    def serve(self, path: str, route: Route) -> str:
        self.routes[path] = route
        return self.url(path)

    def serve_json(self, path: str, document: Any, **kwargs: Any) -> str:
        body = json.dumps(document).encode("utf-8")
        headers = {"Content-Type": "application/jwk-set+json"}
        return self.serve(path, Route(body=body, headers=headers, **kwargs))


class Clock:
    """A settable clock for ``jwks_fetch._clock`` (intervals and cache lifetimes without sleeping)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
