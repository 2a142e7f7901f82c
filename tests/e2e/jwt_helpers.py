"""Shared steps of the JWT end-to-end tests (``test_jwt_nginx.py``, ``test_jwt_remote_rs.py``).

Keys are made with the operator's command (``manage.py mtls_jwt_key generate``), clients with
the example's models, and every token is verified with PyJWT against the JWK set the
authorization server serves through nginx: never with the code that signed it.
"""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import httpx
import jwt

from tests.e2e import servers
from tests.e2e.clients import TIMEOUT

#: The example's issuer and its APIs' audience in these tests (OAUTH2_ISSUER,
#: OAUTH2_MTLS_JWT_AUDIENCE): identifiers, never dialled.
ISSUER = "https://as.e2e.example"
AUDIENCE = "https://api.e2e.example"

CREATE_BOUND_CLIENT = """
from oauth2_provider.models import get_application_model
from django_oauth_mtls.models import MTLSClient
app = get_application_model().objects.create(
    name="e2e-jwt", client_type="confidential", authorization_grant_type="client-credentials")
row = MTLSClient(application=app, token_endpoint_auth_method="tls_client_auth",
    tls_client_auth_san_dns="client-one.example.com", tls_client_certificate_bound_access_tokens=True)
row.full_clean(); row.save()
print(app.client_id)
"""


def create_bound_client(sqlite_path: Path) -> str:
    """A ``tls_client_auth`` client (SAN dns of ``client_cert``) flagged for bound tokens."""
    return servers.example_shell(sqlite_path, CREATE_BOUND_CLIENT)


def generate_key(sqlite_path: Path, path: Path, key_type: str = "ec-p256") -> tuple[str, str]:
    """``manage.py mtls_jwt_key generate PATH --type T``: (kid, alg) as the command prints them.
    Writes ``PATH`` (private, 0600) and ``PATH.pub``."""
    printed = dict(
        line.split(" ", 1)
        for line in servers.manage(
            sqlite_path, "mtls_jwt_key", "generate", str(path), "--type", key_type
        )
        .strip()
        .splitlines()
        if line.startswith(("kid ", "alg "))
    )
    return printed["kid"], printed["alg"]


def jwk_set(url: str, ca: Path) -> dict[str, Any]:
    """The JWK set at ``url`` (through nginx; no client certificate)."""
    context = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False) as session:
        response = session.get(url)
    assert response.status_code == 200, (response.status_code, response.text[:300])
    document = response.json()
    assert isinstance(document, dict)
    return document


def verify(token: str, document: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of ``token`` verified by PyJWT with the key of ``document`` named by
    the token's ``kid``, pinned to that JWK's ``alg``; ``iss``, ``aud``, ``exp`` required."""
    header = jwt.get_unverified_header(token)
    keys = {member["kid"]: member for member in document["keys"]}
    member = keys[header["kid"]]
    key = jwt.PyJWK.from_dict(member)
    claims = jwt.decode(
        token,
        key=key.key,
        algorithms=[member["alg"]],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["iss", "aud", "exp", "iat", "sub", "jti"]},
    )
    return header, claims


def show(title: str, value: Any) -> None:
    """Print for the record (``pytest -s``)."""
    print(f"--- {title}\n{json.dumps(value, indent=2, sort_keys=True)}")
