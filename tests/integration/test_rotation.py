"""Rotation without a restart (issue #11 item 5), each through the real token endpoint.

1. A renewed client certificate (same subject, new key) authenticates at once: nothing caches
   the old certificate as "the" client's; tokens are bound to the certificate of their request.
2. A self-signed client's rotated ``jwks_uri`` set: a new certificate is picked up within
   ``JWKS_REFETCH_INTERVAL_SECONDS`` (a certificate not in the cached set triggers a re-fetch,
   at most one per interval); a removed one stops working within ``JWKS_CACHE_SECONDS``
   (documented in ``jwks_fetch``). Time is the fetcher's clock (``jwks_fetch._clock``).
3. A replaced trust-anchor file: re-read when its modification time or size changes, checked at
   most once per ``RELOAD_CHECK_SECONDS`` (``truststore``): not before the check, yes after.
   Time is the trust store's monotonic clock.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import caches

from django_oauth_mtls import jwks_fetch, truststore
from django_oauth_mtls.models import AccessTokenBinding
from tests import pki
from tests.integration.conftest import token_request
from tests.jwks_server import Clock, JWKSServer, jwk_set, self_signed

pytestmark = pytest.mark.django_db

DN = "CN=client-one,O=Example\\, Inc.,C=DE"
SUBJECT = pki.name(C="DE", O="Example, Inc.", CN="client-one")
WHOAMI = "/api/whoami/"


def issued(response: Any) -> str:
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def refused(response: Any) -> str:
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    return response.json()["error_description"]


def whoami(client: Any, token: str, cert: pki.Issued) -> int:
    return client.get(
        WHOAMI,
        HTTP_AUTHORIZATION=f"Bearer {token}",
        HTTP_X_SSL_CLIENT_CERT=cert.nginx(),
        REMOTE_ADDR="127.0.0.1",
    ).status_code


# --- 1: a renewed certificate ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "registration",
    [{"tls_client_auth_subject_dn": DN}, {"tls_client_auth_san_dns": "client-one.example.com"}],
    ids=["subject_dn", "san_dns"],
)
def test_renewed_certificate_with_the_same_subject_authenticates_at_once(
    registration, client, make_app, mtls_settings, root_ca
):
    app = make_app(tls_client_certificate_bound_access_tokens=True, **registration)
    current = pki.issue(SUBJECT, issuer=root_ca, dns=("client-one.example.com",))
    renewed = pki.issue(SUBJECT, issuer=root_ca, dns=("client-one.example.com",))
    assert renewed.x5t_s256 != current.x5t_s256
    old_token = issued(token_request(client, app, current))
    new_token = issued(token_request(client, app, renewed))  # the very next request
    # Each token is bound to the certificate of its own request (RFC 8705 §3, §6.3).
    assert AccessTokenBinding.objects.filter(x5t_s256=renewed.x5t_s256).count() == 1
    assert AccessTokenBinding.objects.filter(x5t_s256=current.x5t_s256).count() == 1
    assert whoami(client, new_token, renewed) == 200
    assert whoami(client, new_token, current) == 401
    assert whoami(client, old_token, current) == 200  # until it expires; not revoked by renewal
    # Both certificates stay valid until the old one expires: overlap is the rotation window.
    issued(token_request(client, app, current))


def test_renewed_self_signed_certificate_in_an_edited_jwks(client, make_app, mtls_settings):
    """An inline ``jwks`` is keyed by its content: an edit takes effect on the next request."""
    old, new = self_signed("self-signed-client"), self_signed("self-signed-client")
    app = make_app("self_signed_tls_client_auth", jwks=jwk_set(old))
    issued(token_request(client, app, old))
    assert "not in the client's registered JWK set" in refused(token_request(client, app, new))
    row = app.mtls
    row.jwks = jwk_set(new)
    row.full_clean()
    row.save()
    app.refresh_from_db()
    issued(token_request(client, app, new))
    refused(token_request(client, app, old))


# --- 2: a rotated jwks_uri set --------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def jwks_uri(server, mtls_settings, monkeypatch):
    mtls_settings.OAUTH2_MTLS = {
        **mtls_settings.OAUTH2_MTLS,
        "JWKS_ALLOW_PRIVATE_ADDRESSES": True,
        "JWKS_CACHE_SECONDS": 300,
        "JWKS_REFETCH_INTERVAL_SECONDS": 30,
    }
    monkeypatch.setattr(jwks_fetch, "_ssl_context", server.client_context)
    clock = Clock(time.time())
    monkeypatch.setattr(jwks_fetch, "_clock", clock)
    server.reset()
    caches["default"].clear()
    yield server, clock
    caches["default"].clear()


def test_rotated_jwks_uri_set_adds_a_certificate_within_the_refetch_interval(
    client, make_app, jwks_uri
):
    server, clock = jwks_uri
    a, b = self_signed("client-key-a"), self_signed("client-key-b")
    uri = server.serve_json("/rotating", jwk_set(a))
    app = make_app("self_signed_tls_client_auth", jwks_uri=uri)
    issued(token_request(client, app, a))
    assert server.hits["/rotating"] == 1
    server.serve_json("/rotating", jwk_set(a, b))  # the client publishes its new certificate
    # Within the interval of the last fetch: no second fetch, B is not known yet.
    clock.advance(10)
    assert "not in the client's registered JWK set" in refused(token_request(client, app, b))
    assert server.hits["/rotating"] == 1
    # Once the interval has passed, the unknown certificate triggers one re-fetch: accepted.
    clock.advance(21)
    issued(token_request(client, app, b))
    assert server.hits["/rotating"] == 2
    issued(token_request(client, app, a))  # still published
    issued(token_request(client, app, b))
    assert server.hits["/rotating"] == 2  # served from the refreshed cache


def test_rotated_jwks_uri_set_drops_a_certificate_within_the_cache_lifetime(
    client, make_app, jwks_uri
):
    server, clock = jwks_uri
    a, b = self_signed("client-key-a"), self_signed("client-key-b")
    uri = server.serve_json("/dropping", jwk_set(a, b))
    app = make_app("self_signed_tls_client_auth", jwks_uri=uri)
    issued(token_request(client, app, a))
    server.serve_json("/dropping", jwk_set(b))  # A removed (compromised, say)
    clock.advance(299)
    issued(token_request(client, app, a))  # the cached set is still fresh (documented)
    assert server.hits["/dropping"] == 1
    clock.advance(2)  # past JWKS_CACHE_SECONDS: the next request fetches the new set
    assert "not in the client's registered JWK set" in refused(token_request(client, app, a))
    assert server.hits["/dropping"] == 2
    issued(token_request(client, app, b))


# --- 3: a replaced trust-anchor file --------------------------------------------------------------


class Monotonic:
    """Stands in for the ``time`` module inside ``truststore`` only."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def trust_clock(mtls_settings, monkeypatch):
    fake = Monotonic()
    monkeypatch.setattr(truststore, "time", fake)
    truststore.reset()
    yield fake
    truststore.reset()


def replace_file(path: Path, text: str, *, keep_mtime: bool = False) -> None:
    before = path.stat()
    path.write_text(text)
    if keep_mtime:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    else:  # a later mtime even on file systems with coarse timestamps
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10_000_000_000))


def test_replaced_trust_anchor_file_is_picked_up_after_the_check_interval(
    client, make_app, mtls_settings, root_ca, ca_file, trust_clock
):
    assert truststore.RELOAD_CHECK_SECONDS == 5.0  # the documented policy
    app = make_app(tls_client_auth_subject_dn=DN)
    new_root = pki.make_ca("Rotated Root CA")
    old_client = pki.issue(SUBJECT, issuer=root_ca)
    new_client = pki.issue(SUBJECT, issuer=new_root)
    issued(token_request(client, app, old_client))  # loads the file at t=1000
    assert "does not validate" in refused(token_request(client, app, new_client))

    replace_file(Path(ca_file), new_root.pem)  # same path, new CA, new mtime and size
    trust_clock.now += truststore.RELOAD_CHECK_SECONDS - 0.5
    # Not before the check interval: the old anchor still answers.
    refused(token_request(client, app, new_client))
    issued(token_request(client, app, old_client))
    trust_clock.now += 1.0
    # After it: the file is re-read, no restart.
    issued(token_request(client, app, new_client))
    refused(token_request(client, app, old_client))  # the old anchor is gone


def test_forced_reload_skips_the_interval(mtls_settings, root_ca, ca_file, trust_clock):
    new_root = pki.make_ca("Rotated Root CA")
    assert [a.subject for a in truststore.get_trust_store().anchors] == [root_ca.cert.subject]
    replace_file(Path(ca_file), new_root.pem)
    assert [a.subject for a in truststore.get_trust_store().anchors] == [root_ca.cert.subject]
    forced = truststore.get_trust_store(force=True)
    assert [a.subject for a in forced.anchors] == [new_root.cert.subject]


def test_a_change_that_keeps_mtime_and_size_is_not_seen(
    mtls_settings, root_ca, ca_file, trust_clock
):
    """The policy compares modification time and size, not content: a same-size replacement
    with the old mtime restored is invisible until a restart or ``truststore.reset()``. Deploy
    tools that preserve timestamps (``cp -p``, ``rsync -t``) should also touch the file."""
    path = Path(ca_file)
    size = len(root_ca.pem)
    for _ in range(200):  # ECDSA signatures vary in length: find a CA of the same PEM size
        twin = pki.make_ca("Test Root CB")
        if len(twin.pem) == size:
            break
    else:  # pragma: no cover - astronomically unlikely
        pytest.skip("no same-size CA found")
    loaded = truststore.get_trust_store()
    replace_file(path, twin.pem, keep_mtime=True)
    trust_clock.now += truststore.RELOAD_CHECK_SECONDS + 1
    assert truststore.get_trust_store() is loaded
    assert truststore.get_trust_store(force=True) is loaded
    truststore.reset()
    assert [a.subject for a in truststore.get_trust_store().anchors] == [twin.cert.subject]
