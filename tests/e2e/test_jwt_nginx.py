"""JWT access tokens end to end through real nginx (RFC 9068 with RFC 8705 §3.1), curl and httpx.

gunicorn runs the example project unchanged, configured by its environment variables only:
``OAUTH2_MTLS_ACCESS_TOKEN_FORMAT=jwt``, ``OAUTH2_MTLS_JWT_SIGNING_KEY`` (a key made with
``manage.py mtls_jwt_key generate``), ``OAUTH2_MTLS_JWT_AUDIENCE`` and ``OAUTH2_ISSUER``. A
``tls_client_auth`` client flagged for bound tokens gets a token; PyJWT verifies it against the
JWK set nginx serves (``cnf`` is the thumbprint the client computed from its own file); the API
answers 200 with the certificate and 401 without it or with another client's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e import servers
from tests.e2e.clients import CLIENTS
from tests.e2e.conftest import E2EPki, _subdir
from tests.e2e.jwt_helpers import (
    AUDIENCE,
    ISSUER,
    create_bound_client,
    generate_key,
    jwk_set,
    show,
    verify,
)
from tests.e2e.test_binding_nginx import call, check_bound_at_the_api

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Deployment:
    url: str
    client_id: str
    kid: str
    alg: str


@pytest.fixture(scope="module")
def jwt_deployment(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[Deployment]:
    """nginx → gunicorn (example settings, jwt format); a bound tls_client_auth client."""
    nginx = require_tool("nginx")
    directory = _subdir(e2e_dir, "jwt-nginx")
    sqlite_path = directory / "example.sqlite3"
    servers.migrate(sqlite_path, directory / "migrate.log")
    client_id = create_bound_client(sqlite_path)
    keys = directory / "keys"
    keys.mkdir(mode=0o700)
    signing = keys / "access-token.pem"
    kid, alg = generate_key(sqlite_path, signing)
    app = servers.start_gunicorn(
        "nginx", _subdir(directory, "gunicorn"), sqlite_path,
        extra_env={
            "OAUTH2_MTLS_TRUSTED_CA": str(e2e_pki.tls.ca),
            "OAUTH2_MTLS_ACCESS_TOKEN_FORMAT": "jwt",
            "OAUTH2_MTLS_JWT_SIGNING_KEY": str(signing),
            "OAUTH2_MTLS_JWT_AUDIENCE": AUDIENCE,
            "OAUTH2_ISSUER": ISSUER,
        },
    )  # fmt: skip
    try:
        proxy = servers.start_nginx(nginx, _subdir(directory, "nginx"), e2e_pki.tls, app.port)
    except BaseException:
        app.stop()
        raise
    try:
        yield Deployment(f"https://127.0.0.1:{proxy.port}", client_id, kid, alg)
    finally:
        proxy.stop()
        app.stop()


@pytest.mark.parametrize("kind", CLIENTS)
def test_jwt_bound_token_through_nginx(kind, jwt_deployment, e2e_pki):
    url, client_id = jwt_deployment.url, jwt_deployment.client_id
    ca = e2e_pki.tls.ca
    own, stranger = e2e_pki.clients["pki"], e2e_pki.clients["self_signed"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}

    status, body, head = call(kind, "POST", f"{url}/o/token/", ca, own, form=form)
    assert status == 200, body
    assert body["token_type"] == "Bearer" and "no-store" in head
    token = body["access_token"]
    assert token.count(".") == 2  # a JWS in compact form

    # Verified by PyJWT against the set the AS serves, not by the code that signed it.
    document = jwk_set(f"{url}/o/.well-known/jwks.json", ca)
    header, claims = verify(token, document)
    assert header == {"alg": jwt_deployment.alg, "kid": jwt_deployment.kid, "typ": "at+jwt"}
    assert claims["cnf"] == {"x5t#S256": own.x5t_s256}  # RFC 8705 §3.1
    assert (claims["iss"], claims["aud"]) == (ISSUER, AUDIENCE)
    assert claims["sub"] == claims["client_id"] == client_id
    assert claims["scope"] == "read"
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    [published] = [key for key in document["keys"] if key["kid"] == jwt_deployment.kid]
    assert published["use"] == "sig" and "d" not in published
    if kind == "httpx":
        show("JWK set served at /o/.well-known/jwks.json", document)
        show("header", header)
        show("claims (verified with PyJWT)", claims)
        show("client certificate x5t#S256 (computed from its PEM file)", own.x5t_s256)

    check_bound_at_the_api(kind, url, ca, client_id, token, own, stranger)


def test_metadata_names_the_jwk_set(jwt_deployment, e2e_pki):
    status, body, _ = call(
        "httpx", "GET", f"{jwt_deployment.url}/.well-known/oauth-authorization-server",
        e2e_pki.tls.ca, None,
    )  # fmt: skip
    assert status == 200
    assert body["issuer"] == ISSUER
    assert body["jwks_uri"] == f"{ISSUER}/o/.well-known/jwks.json"
    assert body["tls_client_certificate_bound_access_tokens"] is True
