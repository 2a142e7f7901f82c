"""Concurrency on PostgreSQL (issue #11 item 4): parallel requests, each thread with its own
database connection, against the real token endpoint.

1. ``ROTATE_REFRESH_TOKEN=True``, no grace period: 50 parallel refreshes of one refresh token →
   exactly one new token pair is minted and bound, the others are refused (``invalid_grant``),
   and no binding row is orphaned.
2. 200 token requests (``client_credentials``, 4 bound clients with their own certificates, 50
   threads) → 200 tokens, each with exactly its own binding carrying its request's thumbprint.

PostgreSQL only (SQLite serialises writers, so nothing would be tested): skipped with a reason
unless ``DATABASE_URL`` points at PostgreSQL; when ``CI`` and ``DATABASE_URL`` are both set (CI
cell b) any other database is a failure, never a skip. Locally::

    DATABASE_URL=postgresql://USER:PASSWORD@127.0.0.1:5432/DB \\
      .venv/py3.11-django__5.2.0/bin/pytest tests/integration/test_concurrency.py
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection, connections
from django.test import Client
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from django_oauth_mtls.models import AccessTokenBinding, RefreshTokenBinding
from tests import pki
from tests.conftest import ON_CI
from tests.integration.conftest import authorization_code, code_grant, token_request

pytestmark = pytest.mark.django_db(transaction=True)

AccessToken = get_access_token_model()
RefreshToken = get_refresh_token_model()
REFRESHES = 50
TOKEN_REQUESTS = 200
WORKERS = 50  # PostgreSQL's default max_connections is 100: one connection per thread


@pytest.fixture(autouse=True)
def postgresql_only():
    if connection.vendor == "postgresql":
        return
    if ON_CI and os.environ.get("DATABASE_URL"):
        pytest.fail(
            f"CI=true and DATABASE_URL is set, but the test database is {connection.vendor}: "
            "the concurrency tests must run on PostgreSQL in this cell"
        )
    pytest.skip(
        "needs PostgreSQL: set DATABASE_URL=postgresql://… (CI cell b runs these tests); "
        f"the database here is {connection.vendor}"
    )


def checksum(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def post_in_thread(body: dict[str, str], cert: pki.Issued) -> tuple[int, dict[str, Any]]:
    """One request on a fresh test client; this thread's connection is closed afterwards."""
    client = Client(raise_request_exception=False)
    try:
        response = client.post(
            "/o/token/",
            urlencode(body),
            content_type="application/x-www-form-urlencoded",
            REMOTE_ADDR="127.0.0.1",
            HTTP_X_SSL_CLIENT_CERT=cert.nginx(),
        )
        try:
            data = response.json()
        except ValueError:
            data = {"raw": response.content[:200].decode("latin-1")}
        return response.status_code, data
    finally:
        connections.close_all()  # this thread's connections only


def orphans() -> dict[str, int]:
    """Binding rows whose token is gone, and bound grants' tokens that lost their binding."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) FROM {AccessTokenBinding._meta.db_table} b
                LEFT JOIN {AccessToken._meta.db_table} t ON t.id = b.access_token_id
                WHERE t.id IS NULL"""
        )
        access = cursor.fetchone()[0]
        cursor.execute(
            f"""SELECT count(*) FROM {RefreshTokenBinding._meta.db_table} b
                LEFT JOIN {RefreshToken._meta.db_table} t ON t.id = b.refresh_token_id
                WHERE t.id IS NULL"""
        )
        refresh = cursor.fetchone()[0]
    return {"access_bindings_without_token": access, "refresh_bindings_without_token": refresh}


def race_refreshes(
    client: Client,
    app: Any,
    user: Any,
    certificates: list[pki.Issued],
) -> tuple[str, list[tuple[int, dict[str, Any], pki.Issued]]]:
    """Get a bound token pair with ``certificates[0]``, then refresh it ``REFRESHES`` times at
    once (a barrier releases every thread together), cycling through ``certificates``."""
    code, verifier = authorization_code(client, app, user)
    first = token_request(
        client,
        app,
        certificates[0],
        data=code_grant(code, verifier),
    )
    assert first.status_code == 200, first.content
    old_refresh = first.json()["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": old_refresh, "client_id": app.client_id}
    barrier = threading.Barrier(REFRESHES)

    def refresh(index: int) -> tuple[int, dict[str, Any], pki.Issued]:
        cert = certificates[index % len(certificates)]
        barrier.wait(timeout=60)
        status, data = post_in_thread(body, cert)
        return status, data, cert

    with ThreadPoolExecutor(max_workers=REFRESHES) as pool:
        results = list(pool.map(refresh, range(REFRESHES)))
    statuses = [status for status, *_ in results]
    print(
        "parallel refreshes:",
        {
            "statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
            "distinct_access_tokens_answered": len(
                {d["access_token"] for s, d, _ in results if s == 200}
            ),
            "access_tokens_stored": AccessToken.objects.count(),
            **orphans(),
        },
    )
    assert 500 not in statuses, results
    return old_refresh, results


@pytest.fixture
def rotating(mtls_settings):
    """Rotation on, no reuse grace period (RFC 9700 §4.14.2: a replayed refresh token fails)."""
    mtls_settings.OAUTH2_PROVIDER = {
        **mtls_settings.OAUTH2_PROVIDER,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    }
    return mtls_settings


@pytest.fixture
def code_app(make_app):
    return make_app(
        grant_type="authorization-code",
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )


def test_parallel_refreshes_mint_one_bound_pair_and_orphan_nothing(
    client, code_app, rotating, client_cert, user
):
    """50 refreshes of one refresh token at once: no 500, one new pair stored and bound, every
    success answers with that same pair, every refusal is ``invalid_grant``, no orphan."""
    old_refresh, results = race_refreshes(client, code_app, user, [client_cert])
    ok = [data for status, data, _ in results if status == 200]
    assert ok, results
    assert {d.get("error") for s, d, _ in results if s != 200} <= {"invalid_grant"}
    # Exactly one new pair exists, it is the one answered, and it is bound to the certificate.
    assert len({(d["access_token"], d["refresh_token"]) for d in ok}) == 1
    new = ok[0]
    live = list(AccessToken.objects.all())
    assert [t.token_checksum for t in live] == [checksum(new["access_token"])]
    assert AccessTokenBinding.objects.get(access_token=live[0]).x5t_s256 == client_cert.x5t_s256
    fresh = RefreshToken.objects.get(token_checksum=checksum(new["refresh_token"]))
    assert fresh.revoked is None
    assert RefreshTokenBinding.objects.get(refresh_token=fresh).grant_bound is True
    assert RefreshToken.objects.filter(revoked__isnull=True).count() == 1
    assert orphans() == {"access_bindings_without_token": 0, "refresh_bindings_without_token": 0}
    # The old refresh token is spent; the new one works, with its certificate.
    again = token_request(
        client,
        code_app,
        client_cert,
        data={"grant_type": "refresh_token", "refresh_token": old_refresh},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    follow = token_request(
        client,
        code_app,
        client_cert,
        data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
    )
    assert follow.status_code == 200, follow.content


def test_parallel_refreshes_exactly_one_succeeds(client, code_app, rotating, client_cert, user):
    """With no grace period a refresh token is good for one refresh: 1 × 200, 49 × invalid_grant."""
    _old, results = race_refreshes(client, code_app, user, [client_cert])
    statuses = [status for status, *_ in results]
    assert statuses.count(200) == 1, {s: statuses.count(s) for s in set(statuses)}
    assert statuses.count(400) == REFRESHES - 1


def test_parallel_refreshes_within_grace_refuse_another_certificate(
    client, code_app, mtls_settings, client_cert, root_ca, user
):
    """docs/api.md: within DOT's reuse grace period a different certificate gets
    ``invalid_grant`` — also when the requests race. Half the threads present a renewed
    certificate of the same client (same subject, new key)."""
    mtls_settings.OAUTH2_PROVIDER = {
        **mtls_settings.OAUTH2_PROVIDER,
        "ROTATE_REFRESH_TOKEN": True,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 120,
    }
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    _old, results = race_refreshes(client, code_app, user, [client_cert, renewed])
    winner = AccessTokenBinding.objects.get().x5t_s256
    for status, data, cert in results:
        if cert.x5t_s256 == winner:
            assert status == 200, data
        else:
            assert (status, data.get("error")) == (400, "invalid_grant"), data


def test_parallel_token_requests_each_get_their_own_binding(make_app, mtls_settings, root_ca):
    clients = []
    for index in range(4):
        host = f"client-{index}.example.com"
        cert = pki.issue(pki.name(CN=f"client-{index}"), issuer=root_ca, dns=(host,))
        app = make_app(
            tls_client_auth_san_dns=host, tls_client_certificate_bound_access_tokens=True
        )
        clients.append((app, cert))

    def request(index: int) -> tuple[int, Any, pki.Issued, dict[str, Any]]:
        app, cert = clients[index % len(clients)]
        body = {"grant_type": "client_credentials", "scope": "read", "client_id": app.client_id}
        status, data = post_in_thread(body, cert)
        return status, app, cert, data

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(request, range(TOKEN_REQUESTS)))

    statuses = [status for status, *_ in results]
    print("parallel token requests:", {s: statuses.count(s) for s in set(statuses)}, orphans())
    assert statuses == [200] * TOKEN_REQUESTS, [r for r in results if r[0] != 200][:3]
    assert AccessToken.objects.count() == TOKEN_REQUESTS
    assert AccessTokenBinding.objects.count() == TOKEN_REQUESTS
    tokens = {
        t.token_checksum: t
        for t in AccessToken.objects.select_related("mtls_binding", "application")
    }
    for _status, app, cert, data in results:
        stored = tokens[checksum(data["access_token"])]
        assert stored.application_id == app.id
        assert stored.mtls_binding.x5t_s256 == cert.x5t_s256
    assert len({data["access_token"] for *_, data in results}) == TOKEN_REQUESTS
    assert orphans() == {"access_bindings_without_token": 0, "refresh_bindings_without_token": 0}
