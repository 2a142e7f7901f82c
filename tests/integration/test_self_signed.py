"""RFC 8705 §2.2 ``self_signed_tls_client_auth``: clients registered over HTTP (RFC 7591) with
``jwks`` or a ``jwks_uri`` on a loopback https server, then authenticated at DOT's real token
endpoint (rows R8705-2.2*; pitfalls P20–P22)."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from django.core.cache import caches
from oauth2_provider.models import get_application_model

from django_oauth_mtls import jwks_fetch
from django_oauth_mtls.descriptions import client_auth_description
from tests import pki
from tests.integration.conftest import token_request
from tests.jwks_server import Clock, JWKSServer, Route, jwk_of, jwk_set, self_signed

pytestmark = pytest.mark.django_db

Application = get_application_model()
SELF_SIGNED = "self_signed_tls_client_auth"
VECTORS = Path(__file__).resolve().parents[1] / "vectors"

# RFC 8705 Appendix A, Figure 3 (TV1): the JWK of the X.509 v1, EC P-256 certificate of
# Figure 1, which expired on 2022-05-02.
TV1_JWK = {
    "kty": "EC",
    "x": "1yfLHCpXqFjxCeHHHMVDTcLscpb07KUxudBmOMn8C7Q",
    "y": "8_coZwxS7LfA4vOLS9WuneIXhbGGWvsDSb0tH6IxLm8",
    "crv": "P-256",
    "x5c": [
        "MIIBBjCBrAIBAjAKBggqhkjOPQQDAjAPMQ0wCwYDVQQDDARtdGxzMB4XDTE4MTAxODEyMzcwOVoXDTIyMDUwMjEy"
        "MzcwOVowDzENMAsGA1UEAwwEbXRsczBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNcnyxwqV6hY8QnhxxzFQ03C"
        "7HKW9OylMbnQZjjJ/Au08/coZwxS7LfA4vOLS9WuneIXhbGGWvsDSb0tH6IxLm8wCgYIKoZIzj0EAwIDSQAwRgIh"
        "AP0RC1E+vwJD/D1AGHGzuri+hlV/PpQEKTWUVeORWz83AiEA5x2eXZOVbUlJSGQgjwD5vaUaKlLR50Q2DmFfQj1L+SY="
    ],
}

CLIENT_A = self_signed("self-signed-client")
CLIENT_B = self_signed("self-signed-client-rotated")


@pytest.fixture(scope="module")
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(jwks_fetch, "_clock", fake)
    return fake


@pytest.fixture
def dcr(settings, mtls_settings, client, user, server, monkeypatch, clock):
    """DCR on (DOT's default permission, a logged-in user); jwks_uri may be the loopback server."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, "JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    monkeypatch.setattr(jwks_fetch, "_ssl_context", server.client_context)
    server.reset()
    caches["default"].clear()
    client.force_login(user)
    yield client
    caches["default"].clear()


def configure(settings, **values: Any) -> None:
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, **values}


def register(client, **metadata: Any):
    body = {
        "client_name": "self-signed client",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": SELF_SIGNED,
        **metadata,
    }
    response = client.post("/o/register/", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    assert "client_secret" not in response.json()
    return Application.objects.get(client_id=response.json()["client_id"])


def refused(client, app, cert, caplog, **kwargs) -> tuple[str, str]:
    """(reason code logged, error_description) of a refused token request."""
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = token_request(client, app, cert, **kwargs)
    body = response.json()
    assert (response.status_code, body["error"]) == (401, "invalid_client"), response.content
    messages = [r.getMessage() for r in caplog.records if "reason=" in r.getMessage()]
    return messages[-1].split("reason=")[1].split()[0], body.get("error_description", "")


def ok(client, app, cert) -> None:
    response = token_request(client, app, cert)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


# --- jwks ----------------------------------------------------------------------------------------


def test_rfc8705_appendix_a_v1_certificate_TV1(dcr, settings, caplog):
    """X.509 v1 is accepted for self-signed clients; the vector expired in 2022 (P20)."""
    pem = (VECTORS / "rfc8705-appendix-a.pem").read_bytes()
    vector = pki.Issued(cert=x509.load_pem_x509_certificate(pem), key=None)  # type: ignore[arg-type]
    assert vector.cert.version is x509.Version.v1
    app = register(dcr, jwks={"keys": [TV1_JWK]})
    configure(settings, CHECK_SELF_SIGNED_VALIDITY=False)
    ok(dcr, app, vector)
    configure(settings, CHECK_SELF_SIGNED_VALIDITY=True)
    assert refused(dcr, app, vector, caplog)[0] == "expired"


def test_a_set_with_two_keys_both_authenticate(dcr):
    rsa_client = self_signed("rsa-client", key=pki.make_key("rsa"))
    app = register(dcr, jwks=jwk_set(CLIENT_A, rsa_client))
    ok(dcr, app, CLIENT_A)
    ok(dcr, app, rsa_client)


def test_same_subject_another_key_is_refused_P21(dcr, caplog):
    app = register(dcr, jwks=jwk_set(CLIENT_A))
    impostor = self_signed("self-signed-client")  # same subject DN, a new key
    reason, description = refused(dcr, app, impostor, caplog)
    assert reason == "not_in_jwk_set"
    assert "not in the client's registered JWK set" in description


def test_same_key_reissued_is_refused_P21(dcr, caplog):
    """Whole-certificate equality: a new certificate for the registered key does not match."""
    app = register(dcr, jwks=jwk_set(CLIENT_A))
    reissued = self_signed("self-signed-client", key=CLIENT_A.key)
    assert refused(dcr, app, reissued, caplog)[0] == "not_in_jwk_set"


def test_a_ca_issued_certificate_is_no_substitute(dcr, client_cert, caplog):
    """No chain validation, and no chain is enough: only the registered certificates match."""
    app = register(dcr, jwks=jwk_set(CLIENT_A))
    assert refused(dcr, app, client_cert, caplog)[0] == "not_in_jwk_set"


def test_expired_and_not_yet_valid(dcr, settings, caplog):
    expired = self_signed(
        "expired-client",
        not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2021, 1, 1, tzinfo=dt.UTC),
    )
    future = self_signed(
        "future-client",
        not_before=dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2100, 1, 1, tzinfo=dt.UTC),
    )
    app = register(dcr, jwks=jwk_set(expired, future))
    assert refused(dcr, app, expired, caplog)[0] == "expired"
    assert refused(dcr, app, future, caplog)[0] == "not_yet_valid"
    configure(settings, CHECK_SELF_SIGNED_VALIDITY=False)
    ok(dcr, app, expired)
    ok(dcr, app, future)


def test_key_usage_without_digital_signature_is_refused(dcr, caplog):
    """RFC 5280 §4.2.1.3: a key listed for keyEncipherment alone may not sign a TLS handshake."""
    encipher_only = self_signed(
        "encipher-only-client", key_usage=pki.key_usage(key_encipherment=True)
    )
    app = register(dcr, jwks=jwk_set(encipher_only))
    assert refused(dcr, app, encipher_only, caplog)[0] == "wrong_key_usage"


def test_key_usage_is_checked_before_the_jwks_uri_is_fetched(dcr, server, caplog):
    encipher_only = self_signed(
        "encipher-only-client", key_usage=pki.key_usage(key_encipherment=True)
    )
    app = register(dcr, jwks_uri=server.serve_json("/ku.json", jwk_set(encipher_only)))
    assert refused(dcr, app, encipher_only, caplog)[0] == "wrong_key_usage"
    assert server.hits["/ku.json"] == 0


def test_absent_key_usage_is_accepted(dcr):
    no_key_usage = self_signed("no-key-usage-client", key_usage=None)
    app = register(dcr, jwks=jwk_set(no_key_usage))
    ok(dcr, app, no_key_usage)


def test_no_certificate(dcr, caplog):
    app = register(dcr, jwks=jwk_set(CLIENT_A))
    assert refused(dcr, app, None, caplog)[0] == "no_certificate"


def test_a_secret_alongside_the_certificate_is_refused(dcr, caplog):
    app = register(dcr, jwks=jwk_set(CLIENT_A))
    reason, _ = refused(dcr, app, CLIENT_A, caplog, data={"client_secret": "x"})
    assert reason == "method_conflict"


# --- jwks_uri ------------------------------------------------------------------------------------


def test_jwks_uri_registers_and_authenticates(dcr, server):
    uri = server.serve_json("/client/jwks.json", jwk_set(CLIENT_A))
    app = register(dcr, jwks_uri=uri)
    assert app.mtls.jwks_uri == uri
    ok(dcr, app, CLIENT_A)
    ok(dcr, app, CLIENT_A)
    assert server.hits["/client/jwks.json"] == 1  # cached


def test_rotation_through_jwks_uri_is_picked_up_within_the_interval(dcr, server, clock, caplog):
    uri = server.serve_json("/client/jwks.json", jwk_set(CLIENT_A))
    app = register(dcr, jwks_uri=uri)
    ok(dcr, app, CLIENT_A)
    server.serve_json("/client/jwks.json", jwk_set(CLIENT_B))  # the client rotates its key

    # Not before JWKS_REFETCH_INTERVAL_SECONDS (30) since the last fetch: no request.
    clock.advance(10)
    assert refused(dcr, app, CLIENT_B, caplog)[0] == "not_in_jwk_set"
    assert server.hits["/client/jwks.json"] == 1
    # Within the next interval: one re-fetch, the new certificate works, the old one no longer.
    clock.advance(21)
    ok(dcr, app, CLIENT_B)
    assert server.hits["/client/jwks.json"] == 2
    assert refused(dcr, app, CLIENT_A, caplog)[0] == "not_in_jwk_set"
    assert server.hits["/client/jwks.json"] == 2


def test_rotation_with_a_one_second_interval(dcr, server, settings):
    configure(settings, JWKS_REFETCH_INTERVAL_SECONDS=1)
    uri = server.serve_json("/client/jwks.json", jwk_set(CLIENT_A))
    app = register(dcr, jwks_uri=uri)
    ok(dcr, app, CLIENT_A)
    server.serve_json("/client/jwks.json", jwk_set(CLIENT_A, CLIENT_B))
    jwks_fetch._clock.advance(1.5)  # type: ignore[attr-defined]
    ok(dcr, app, CLIENT_B)
    ok(dcr, app, CLIENT_A)
    assert server.hits["/client/jwks.json"] == 2


def test_weak_key_in_a_fetched_set(dcr, server, caplog):
    weak = self_signed("weak-client", key=pki.make_key("rsa", bits=1024))
    app = register(dcr, jwks_uri=server.serve_json("/weak.json", jwk_set(weak)))
    reason, description = refused(dcr, app, weak, caplog)
    assert reason == "weak_key"
    # The detail goes to the log line; the client gets the fixed phrase (issue #14).
    assert "1024" in caplog.text and "1024" not in description
    assert description == client_auth_description("weak_key")


@pytest.mark.parametrize(
    ("route", "message"),
    [
        (Route(status=404), "HTTP 404"),
        (Route(body=b"<html/>"), "not JSON"),
        (
            Route(status=302, headers={"Location": "https://localhost/elsewhere"}),
            "redirect refused",
        ),
    ],
)
def test_unusable_jwks_uri_is_jwk_set_unavailable(dcr, server, caplog, route, message):
    app = register(dcr, jwks_uri=server.serve("/broken.json", route))
    reason, description = refused(dcr, app, CLIENT_A, caplog)
    assert reason == "jwk_set_unavailable"
    assert message in caplog.text
    assert description == client_auth_description("jwk_set_unavailable")


def test_x5c_mismatch_in_a_fetched_set(dcr, server, caplog):
    bad = {"keys": [jwk_of(CLIENT_A, x5c=jwk_of(CLIENT_B)["x5c"])]}
    app = register(dcr, jwks_uri=server.serve_json("/bad.json", bad))
    reason, description = refused(dcr, app, CLIENT_B, caplog)
    assert reason == "jwk_set_unavailable"
    assert "does not match the JWK's key" in caplog.text
    assert description == client_auth_description("jwk_set_unavailable")


def test_private_address_refused_without_the_setting(dcr, server, settings, caplog):
    app = register(dcr, jwks_uri=server.serve_json("/client/jwks.json", jwk_set(CLIENT_A)))
    configure(settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    reason, description = refused(dcr, app, CLIENT_A, caplog)
    assert reason == "jwk_set_unavailable"
    assert "loopback address refused" in caplog.text
    # Whether a host or port answered is never told to the client.
    assert description == client_auth_description("jwk_set_unavailable")
    assert server.hits["/client/jwks.json"] == 0


def test_a_failing_jwks_uri_keeps_the_last_good_set(dcr, server, clock, caplog):
    uri = server.serve_json("/client/jwks.json", jwk_set(CLIENT_A))
    app = register(dcr, jwks_uri=uri)
    ok(dcr, app, CLIENT_A)
    server.serve("/client/jwks.json", Route(status=503))
    clock.advance(31)
    # An unknown certificate triggers a re-fetch, which fails: the cached set still serves.
    assert refused(dcr, app, CLIENT_B, caplog)[0] == "not_in_jwk_set"
    ok(dcr, app, CLIENT_A)
    assert server.hits["/client/jwks.json"] == 2
    clock.advance(300)  # the last good set has expired; the fetch still fails
    assert refused(dcr, app, CLIENT_A, caplog)[0] == "jwk_set_unavailable"
