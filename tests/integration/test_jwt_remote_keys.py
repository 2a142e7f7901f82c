"""A resource server with the AS's keys from ``RESOURCE_SERVER_JWKS_URI`` (RFC 9068 §4).

The JWK set is served over real TLS by the loopback server of ``tests/jwks_server.py`` (its CA in
``RESOURCE_SERVER_CA_BUNDLE``, the address private and allowed: the URL is the operator's). The
clock of the key cache (``jwt_resource_keys._clock``) is moved instead of sleeping; the tokens'
own times are real. ``server.hits`` proves when a fetch did or did not happen.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from django.core.cache import caches

from django_oauth_mtls import jwt_resource_keys, signals
from django_oauth_mtls.jwt_resource_keys import LAST_GOOD_SECONDS
from tests import pki
from tests.jwks_server import Clock, JWKSServer, Route
from tests.jwt_forge import AUDIENCE, ISSUER, Signer

pytestmark = pytest.mark.django_db

WHOAMI = "/api/whoami/"
PATH = "/.well-known/jwks.json"


@pytest.fixture(scope="module")
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(jwt_resource_keys, "_clock", clock)
    return clock


@pytest.fixture(scope="module")
def first() -> Signer:
    return Signer("ec", kid="as-key-1")


@pytest.fixture(scope="module")
def second() -> Signer:
    return Signer("rsa", kid="as-key-2")


@pytest.fixture
def remote(settings: Any, server: JWKSServer, tmp_path: Any, clock: Clock, first: Signer) -> Any:
    server.reset()
    server.serve_json(PATH, {"keys": [first.public_jwk()]})
    bundle = tmp_path / "as-ca.pem"
    bundle.write_text(server.ca.pem)
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "RESOURCE_SERVER_TOKEN_VALIDATION": "jwt",
        "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
        "RESOURCE_SERVER_JWT_ISSUER": ISSUER,
        "RESOURCE_SERVER_JWKS_URI": server.url(PATH),
        "RESOURCE_SERVER_CA_BUNDLE": str(bundle),
        "JWKS_CACHE_SECONDS": 300,
        "JWKS_REFETCH_INTERVAL_SECONDS": 30,
    }
    caches["default"].clear()
    jwt_resource_keys.reset()
    yield settings
    caches["default"].clear()
    jwt_resource_keys.reset()


@pytest.fixture
def reasons() -> list[str]:
    seen: list[str] = []

    def receiver(sender: Any, reason: str, **kwargs: Any) -> None:
        seen.append(reason)

    signals.access_token_refused.connect(receiver, dispatch_uid="test_jwt_remote_keys")
    yield seen
    signals.access_token_refused.disconnect(dispatch_uid="test_jwt_remote_keys")


def get(client: Any, token: str, cert: pki.Issued) -> int:
    response = client.get(
        WHOAMI,
        HTTP_AUTHORIZATION=f"Bearer {token}",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=cert.nginx(),
    )
    return int(response.status_code)


def test_fetched_once_then_cached(
    client, remote, server, first, client_cert, clock, django_assert_num_queries
):
    token = first.token(x5t=client_cert.x5t_s256)
    assert get(client, token, client_cert) == 200
    with django_assert_num_queries(0):
        for _ in range(5):
            assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert server.hits[PATH] == 1
    clock.advance(301)  # JWKS_CACHE_SECONDS
    assert get(client, token, client_cert) == 200
    assert server.hits[PATH] == 2


def test_the_set_is_shared_through_the_django_cache(client, remote, server, first, client_cert):
    """Another process (a fresh process copy) finds the set in the shared cache: no fetch."""
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    jwt_resource_keys.reset()  # as if this were another worker
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert server.hits[PATH] == 1


def test_unknown_kid_refetches_at_most_once_per_interval(
    client, remote, server, first, second, client_cert, clock, reasons
):
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    stranger = Signer("ec", kid="nobody")
    assert get(client, stranger.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert server.hits[PATH] == 1  # fetched within this interval already
    clock.advance(31)
    for _ in range(4):
        assert get(client, stranger.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert server.hits[PATH] == 2  # the first miss re-fetched; the next three waited
    assert reasons == ["jwt_unknown_key"] * 5
    clock.advance(31)  # JWKS_REFETCH_INTERVAL_SECONDS
    assert get(client, stranger.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert server.hits[PATH] == 3


def test_rotation_mid_run(client, remote, server, first, second, client_cert, clock):
    """The AS starts signing with a key the RS has not fetched yet: one re-fetch finds it."""
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    clock.advance(31)
    server.serve_json(PATH, {"keys": [first.public_jwk(), second.public_jwk()]})
    assert get(client, second.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert server.hits[PATH] == 2
    # The old key is withdrawn: once the set is re-fetched, its tokens are refused.
    server.serve_json(PATH, {"keys": [second.public_jwk()]})
    clock.advance(301)
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert get(client, second.token(x5t=client_cert.x5t_s256), client_cert) == 200


def test_outage_keeps_the_last_good_set_for_24_hours(
    client, remote, server, first, client_cert, clock, caplog, reasons
):
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    server.serve(PATH, Route(status=503, body=b"down"))
    clock.advance(301)
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
        assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    warnings = [
        r.getMessage() for r in caplog.records if "AS JWK set fetch failed" in r.getMessage()
    ]
    assert len(warnings) == 1 and "keeps serving" in warnings[0]
    assert server.hits[PATH] == 2  # one re-fetch per interval, however many requests
    clock.advance(31)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert any("AS JWK set fetch failed" in r.getMessage() for r in caplog.records)  # each re-fetch
    clock.advance(LAST_GOOD_SECONDS)
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert reasons == ["jwt_keys_unavailable"]
    # The AS is back: the next interval's fetch serves again.
    server.serve_json(PATH, {"keys": [first.public_jwk()]})
    clock.advance(31)
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200


def test_never_fetched_is_keys_unavailable(client, remote, server, first, client_cert, reasons):
    server.serve(PATH, Route(status=404, body=b"nope"))
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert server.hits[PATH] == 1  # the failure is not retried within the interval
    assert reasons == ["jwt_keys_unavailable"] * 2


def test_the_as_certificate_is_verified_with_the_ca_bundle(
    client, remote, server, first, client_cert, tmp_path, reasons
):
    other = tmp_path / "other-ca.pem"
    other.write_text(pki.make_ca("Another CA").pem)
    remote.OAUTH2_MTLS = {**remote.OAUTH2_MTLS, "RESOURCE_SERVER_CA_BUNDLE": str(other)}
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert reasons == ["jwt_keys_unavailable"]


@pytest.mark.parametrize(
    "document",
    [
        {"keys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "as-key-1"}]},
        {"not": "a set"},
    ],
)
def test_a_set_without_usable_keys_is_no_set(
    client, remote, server, first, client_cert, document, reasons
):
    server.serve_json(PATH, document)
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 401
    assert reasons == ["jwt_keys_unavailable"]


def test_the_jwk_alg_pins_the_key(client, remote, server, second, client_cert):
    server.serve_json(PATH, {"keys": [second.public_jwk()]})  # alg PS256
    assert get(client, second.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert get(client, second.token(x5t=client_cert.x5t_s256, alg="RS256"), client_cert) == 401


def test_user_is_none_by_default_with_remote_keys(
    client, remote, first, client_cert, user, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = client.get(
            WHOAMI,
            HTTP_AUTHORIZATION=f"Bearer {first.token(x5t=client_cert.x5t_s256, sub=str(user.pk))}",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        )
    assert response.status_code == 200 and "username" not in response.json()


def test_a_set_another_process_fetched_serves_this_one(
    client, remote, server, first, second, client_cert, clock
):
    """Two workers: A re-fetches for a new kid; B, with its older copy, finds A's set in the
    shared cache at its own unknown kid, with no fetch of its own."""
    assert get(client, first.token(x5t=client_cert.x5t_s256), client_cert) == 200
    worker_b = dict(jwt_resource_keys._copies)
    clock.advance(31)
    server.serve_json(PATH, {"keys": [first.public_jwk(), second.public_jwk()]})
    assert get(client, second.token(x5t=client_cert.x5t_s256), client_cert) == 200  # worker A
    assert server.hits[PATH] == 2
    jwt_resource_keys._copies.clear()
    jwt_resource_keys._copies.update(worker_b)  # now worker B
    assert get(client, second.token(x5t=client_cert.x5t_s256), client_cert) == 200
    assert server.hits[PATH] == 2
