"""Shared set-up of the in-process rows (P1–P3): Django, a migrated database, a PKI, clients.

Requests go through Django's real ``WSGIHandler`` (every middleware of the settings, URL
resolution, DOT's and DRF's real views), the way gunicorn calls it, minus the socket: the
environ is built here, untimed, for every call. Settings: ``benchmarks.settings``.
"""

from __future__ import annotations

import base64
import io
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

SETTINGS = "benchmarks.settings"
SAN_DNS = "bench-client.example.com"
SECRET = "bench-secret-0123456789abcdef0123456789"
TRUSTED_PEER = "127.0.0.1"

_state: dict[str, Any] = {}


def setup() -> None:
    """Django with ``benchmarks.settings`` and a migrated in-memory database; once per process.

    ``python -m benchmarks`` sets ``DJANGO_SETTINGS_MODULE`` before any row runs, so the intake
    row shares this configuration.
    """
    if _state.get("ready"):
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", SETTINGS)
    import django
    from django.conf import settings

    django.setup()
    if settings.SETTINGS_MODULE != SETTINGS:
        raise RuntimeError(
            f"the in-process rows need DJANGO_SETTINGS_MODULE={SETTINGS}, "
            f"got {settings.SETTINGS_MODULE!r}"
        )
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    _state["ready"] = True


@dataclass(frozen=True)
class Fixtures:
    pki_client: Any  # tests.pki.Issued: CA-issued leaf, SAN dns SAN_DNS
    self_signed: Any  # tests.pki.Issued
    ca_file: Path


def fixtures() -> Fixtures:
    """The PKI (EC P-256, as the test suite's) and ``OAUTH2_MTLS`` pointing at its CA."""
    if "fixtures" in _state:
        return _state["fixtures"]  # type: ignore[no-any-return]
    setup()
    from django.test import override_settings

    from django_oauth_mtls import truststore
    from django_oauth_mtls.validation import validation_cache
    from tests import pki

    root = pki.make_ca("Bench Root CA")
    client = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="bench-client"), issuer=root, dns=(SAN_DNS,)
    )
    self_signed = pki.issue(pki.name(O="Example, Inc.", CN="bench-self-signed"))
    directory = Path(tempfile.mkdtemp(prefix="django-oauth-mtls-bench-"))
    ca_file = directory / "trusted-ca.pem"
    ca_file.write_text(root.pem)
    override_settings(
        OAUTH2_MTLS={
            "CERTIFICATE_SOURCE": "nginx",
            "TRUSTED_PROXIES": [f"{TRUSTED_PEER}/32"],
            "TRUSTED_CA_CERTIFICATES": [str(ca_file)],
        }
    ).enable()
    truststore.reset()
    validation_cache.clear()
    _state["fixtures"] = Fixtures(client, self_signed, ca_file)
    return _state["fixtures"]  # type: ignore[no-any-return]


# --- applications -----------------------------------------------------------------------------


def make_app(name: str, method: str | None = None, *, hashed: bool = False, **mtls: Any) -> Any:
    """A confidential client-credentials application, with an ``MTLSClient`` row if ``method``.

    ``hashed=True`` keeps DOT's default (``hash_client_secret=True``: the secret is stored with
    Django's first password hasher, PBKDF2-SHA256 here).
    """
    from oauth2_provider.models import get_application_model

    from django_oauth_mtls.models import MTLSClient

    app = get_application_model().objects.create(
        name=name,
        client_type="confidential",
        authorization_grant_type="client-credentials",
        client_secret=SECRET,
        hash_client_secret=hashed,
    )
    if method is not None:
        row = MTLSClient(application=app, token_endpoint_auth_method=method, **mtls)
        row.full_clean()
        row.save()
    return app


def self_signed_jwks(issued: Any) -> dict[str, Any]:
    from jwcrypto import jwk

    key = jwk.JWK.from_pyca(issued.cert.public_key())
    return {"keys": [{**key.export_public(as_dict=True), "x5c": [issued.b64()]}]}


# --- WSGI ---------------------------------------------------------------------------------------


def handler() -> Any:
    if "handler" not in _state:
        from django.core.handlers.wsgi import WSGIHandler

        _state["handler"] = WSGIHandler()
    return _state["handler"]


def environ(
    method: str,
    path: str,
    *,
    body: bytes = b"",
    content_type: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A WSGI environ as gunicorn builds it behind a TLS-terminating proxy on loopback."""
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": TRUSTED_PEER,
        "REMOTE_PORT": "51234",
        "HTTP_HOST": "testserver",
        "HTTP_USER_AGENT": "bench-client/1.0",
        "HTTP_ACCEPT": "application/json",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)) if body else "",
    }
    if content_type:
        env["CONTENT_TYPE"] = content_type
    env.update(headers or {})
    return env


@dataclass
class Reply:
    status: int
    body: bytes


def call(env: dict[str, Any]) -> Reply:
    """One request through the WSGI handler, the body read and the response closed."""
    seen: list[str] = []

    def start_response(status: str, _headers: Any, _exc_info: Any = None) -> Any:
        seen.append(status)
        return None

    response = handler()(env, start_response)
    try:
        body = b"".join(response)
    finally:
        close = getattr(response, "close", None)
        if close is not None:
            close()
    return Reply(int(seen[0].split(" ", 1)[0]), body)


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")


def token_environ_factory(
    app: Any, *, certificate: Any = None, basic_secret: str | None = None
) -> Callable[[], dict[str, Any]]:
    """A fresh token-request environ per call (client_credentials, scope read)."""
    form: dict[str, str] = {"grant_type": "client_credentials", "scope": "read"}
    headers: dict[str, str] = {}
    if basic_secret is not None:
        headers["HTTP_AUTHORIZATION"] = basic(app.client_id, basic_secret)
    else:
        form["client_id"] = app.client_id
    if certificate is not None:
        headers["HTTP_X_SSL_CLIENT_CERT"] = certificate.nginx()
    body = urlencode(form).encode("ascii")

    def make() -> dict[str, Any]:
        return environ(
            "POST",
            "/o/token/",
            body=body,
            content_type="application/x-www-form-urlencoded",
            headers=headers,
        )

    return make


def checked_token_call(env: dict[str, Any]) -> Reply:
    """A token request that must succeed (a benchmark of a refusal would be meaningless)."""
    reply = call(env)
    if reply.status != 200:
        raise RuntimeError(f"token request failed: {reply.status} {reply.body[:300]!r}")
    return reply


def checked_get(env: dict[str, Any]) -> Reply:
    reply = call(env)
    if reply.status != 200:
        raise RuntimeError(f"GET {env['PATH_INFO']} failed: {reply.status} {reply.body[:300]!r}")
    return reply
