"""Scale-out on one machine (issue #16): two app nodes, one database, one cache.

Two gunicorn instances of the example project behind one nginx upstream (round robin), on
PostgreSQL (a scratch database created beside ``DATABASE_URL``'s and dropped afterwards) and
Django's ``RedisCache`` on a ``redis-server`` the test starts on a free port. The nodes run
``example_project.settings`` through ``tests/e2e/settings_scale_out.py`` (loopback
``jwks_uri`` allowed, a short re-fetch interval: tests only). docs/scaling.md describes the
set-up. Shown:

1. a token issued by one node works at the other: each node addressed directly on its own
   port (as the proxy would, the certificate in nginx's field from loopback), and through nginx,
   which spreads the requests over both;
2. a revocation at one node is seen at once at the other (opaque tokens live in the database);
3. 50 parallel refreshes of one refresh token, 25 at each node, the grant got by logging in at
   one node and authorizing at the other → exactly one winner, 49 × ``invalid_grant``;
4. a ``self_signed_tls_client_auth`` client's ``jwks_uri`` is fetched once per
   ``JWKS_REFETCH_INTERVAL_SECONDS`` for the whole deployment, not once per node, through a key
   rotation; and, as a control, two nodes with Django's per-process cache fetch it once each.

PostgreSQL only: without ``DATABASE_URL`` the tests skip with a reason (CI cell a); with a
``DATABASE_URL`` that is not PostgreSQL they skip, or fail when ``CI=true`` (cell b runs them).
A missing nginx or redis-server skips, or fails on CI (``require_tool``). Locally::

    DATABASE_URL=postgresql://USER:PASSWORD@127.0.0.1:5432/DB \\
      .venv/py3.11-django__5.2.0/bin/pytest tests/e2e/test_scale_out.py -v
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from tests import pki
from tests.conftest import ON_CI, require_tool
from tests.e2e import servers
from tests.e2e.conftest import E2EPki, _subdir
from tests.jwks_server import JWKSServer, jwk_set, self_signed

pytestmark = pytest.mark.e2e

CERT_HEADER = servers.FIELD_VALUES["certificate_header"]
REDIRECT_URI = "https://client.example/cb"
USERNAME, PASSWORD = "scale-out-user", "scale-out-password-not-a-secret"
REFRESHES = 50
#: gthread threads per node: every one of the 25 refreshes a node gets is in flight at once.
THREADS = REFRESHES // 2
#: JWKS_REFETCH_INTERVAL_SECONDS of the nodes (default 30 s): short, so a second interval starts
#: within the test; long enough for the requests the test makes inside the first one.
INTERVAL = 6
TIMEOUT = 60.0

SELF_SIGNED_A = self_signed("scale-out-key-a")
SELF_SIGNED_B = self_signed("scale-out-key-b")
SELF_SIGNED_C = self_signed("scale-out-key-c")

CREATE_CLIENTS = """
import json, sys
from django.contrib.auth import get_user_model
from oauth2_provider.models import get_application_model
from django_oauth_mtls.models import MTLSClient
Application = get_application_model()
spec = json.loads(sys.stdin.read())
get_user_model().objects.create_user(spec["username"], password=spec["password"], is_staff=True)
made = {}
for label, grant, mtls in [
    ("cc", "client-credentials", {"token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_dns": "client-one.example.com"}),
    ("code", "authorization-code", {"token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_dns": "client-one.example.com"}),
    ("self_signed", "client-credentials", {"token_endpoint_auth_method":
        "self_signed_tls_client_auth", "jwks_uri": spec["jwks_uri"]}),
    ("self_signed_control", "client-credentials", {"token_endpoint_auth_method":
        "self_signed_tls_client_auth", "jwks_uri": spec["jwks_uri_control"]}),
]:
    app = Application.objects.create(name=f"scale-out {label}", client_type="confidential",
        authorization_grant_type=grant, redirect_uris=spec["redirect_uri"], skip_authorization=True)
    row = MTLSClient(application=app, tls_client_certificate_bound_access_tokens=True, **mtls)
    row.full_clean(); row.save()
    made[label] = app.client_id
print(json.dumps(made))
"""


# --- PostgreSQL -----------------------------------------------------------------------------


def postgresql_url() -> str:
    """``DATABASE_URL`` when it is PostgreSQL; else skip with the reason (fail on CI when set)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        pytest.skip(
            "needs PostgreSQL: set DATABASE_URL=postgresql://… (CI cell b runs this test); "
            "app nodes on several machines need a database server, not a SQLite file"
        )
    scheme = urlsplit(url).scheme
    if scheme not in ("postgres", "postgresql", "pgsql"):
        message = f"DATABASE_URL is a {scheme}:// URL, and the scale-out test needs PostgreSQL"
        if ON_CI:
            pytest.fail(f"CI=true and {message}")
        pytest.skip(message)
    return url


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """A new, empty database on ``url``'s server (the role needs CREATEDB, as in .ci/run):
    the URL of ``<name>_scale_out``, dropped afterwards."""
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'postgres'}_scale_out"
    statement = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(statement)
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(statement)


def query(url: str, text: str, *params: object) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url) as connection:
        return connection.execute(text, params).fetchall()


# --- the deployment -------------------------------------------------------------------------


@dataclass
class Deployment:
    nodes: list[servers.Managed]
    proxy_url: str
    database_url: str
    clients: dict[str, str]  # label → client_id
    jwks: JWKSServer
    node_env: dict[str, str]
    directory: Path

    @property
    def node_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{node.port}" for node in self.nodes]


def start_nodes(
    directory: Path, label: str, env: dict[str, str], count: int = 2
) -> list[servers.Managed]:
    nodes: list[servers.Managed] = []
    try:
        for index in range(count):
            nodes.append(
                servers.start_gunicorn(
                    "nginx", _subdir(directory, f"{label}-{index}"), directory / "unused.sqlite3",
                    extra_env=env, threads=THREADS,
                )
            )  # fmt: skip
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return nodes


@pytest.fixture(scope="module")
def deployment(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[Deployment]:
    url = postgresql_url()
    nginx = require_tool("nginx")
    redis_server = require_tool("redis-server")
    pytest.importorskip("redis", reason="Django's RedisCache needs the redis package (dev extra)")
    directory = _subdir(e2e_dir, "scale-out")
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(scratch_database(url))
        redis = servers.start_redis(redis_server, _subdir(directory, "redis"))
        stack.callback(redis.stop)
        jwks = stack.enter_context(JWKSServer())
        jwks_ca = directory / "jwks-ca.pem"
        jwks_ca.write_text(jwks.ca.pem)
        env = {
            "DJANGO_SETTINGS_MODULE": "tests.e2e.settings_scale_out",
            "DATABASE_URL": database_url,
            "EXAMPLE_REDIS_URL": f"redis://127.0.0.1:{redis.port}/0",
            "OAUTH2_MTLS_TRUSTED_CA": str(e2e_pki.tls.ca),
            "SCALE_OUT_REFETCH_INTERVAL": str(INTERVAL),
            # The jwks_uri server's CA, the way docs/registration.md trusts an internal CA.
            "SSL_CERT_FILE": str(jwks_ca),
        }
        servers.migrate(directory / "unused.sqlite3", directory / "migrate.log", extra_env=env)
        spec = {
            "username": USERNAME, "password": PASSWORD, "redirect_uri": REDIRECT_URI,
            "jwks_uri": jwks.url("/jwks"), "jwks_uri_control": jwks.url("/jwks-control"),
        }  # fmt: skip
        created = servers.example_shell(
            directory / "unused.sqlite3", CREATE_CLIENTS, extra_env=env, stdin=json.dumps(spec)
        )
        clients = json.loads(created)
        nodes = start_nodes(directory, "node", env)
        for node in nodes:
            stack.callback(node.stop)
        proxy = servers.start_nginx_upstream(
            nginx, _subdir(directory, "nginx"), e2e_pki.tls, [node.port for node in nodes]
        )
        stack.callback(proxy.stop)
        yield Deployment(
            nodes=nodes, proxy_url=f"https://127.0.0.1:{proxy.port}", database_url=database_url,
            clients=clients, jwks=jwks, node_env=env, directory=directory,
        )  # fmt: skip


# --- requests -------------------------------------------------------------------------------


def direct(certificate: pki.Issued | None = None) -> httpx.Client:
    """A client of one node's own port, as the proxy: the certificate in nginx's field."""
    headers = {CERT_HEADER: certificate.nginx()} if certificate is not None else {}
    return httpx.Client(headers=headers, timeout=TIMEOUT, trust_env=False)


def through_nginx(e2e_pki: E2EPki, label: str = "pki") -> httpx.Client:
    """A TLS client of nginx presenting the certificate on disk (``e2e_pki.clients[label]``)."""
    context = ssl.create_default_context(cafile=str(e2e_pki.tls.ca))
    own = e2e_pki.clients[label]
    context.load_cert_chain(str(own.cert_file), str(own.key_file))
    return httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False)


def client_credentials(session: httpx.Client, base: str, client_id: str) -> httpx.Response:
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}
    return session.post(f"{base}/o/token/", data=form)


def whoami(session: httpx.Client, base: str, token: str) -> httpx.Response:
    return session.get(f"{base}/api/whoami/", headers={"Authorization": f"Bearer {token}"})


def requests_served(node: servers.Managed) -> int:
    """Requests the node has served: gunicorn_probe.py writes a line for each."""
    probe = node.extra["probe"]
    assert isinstance(probe, Path)
    return len(probe.read_text().splitlines()) if probe.exists() else 0


def issued_token(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "Bearer"
    return str(body["access_token"])


# --- 1. a token from one node works at the other ------------------------------------------


def test_a_token_issued_by_one_node_works_at_the_other(deployment, client_cert):
    client_id = deployment.clients["cc"]
    expected = {"client_id": client_id, "x5t#S256": client_cert.x5t_s256}
    with direct(client_cert) as session:
        for issuer, other in ((0, 1), (1, 0)):
            urls = deployment.node_urls
            token = issued_token(client_credentials(session, urls[issuer], client_id))
            reply = whoami(session, urls[other], token)
            assert (reply.status_code, reply.json()) == (200, expected), (issuer, other)
    # Without its certificate, at either node: the binding is checked everywhere.
    with direct() as bare:
        for url in deployment.node_urls:
            reply = whoami(bare, url, token)
            assert reply.status_code == 401
            assert 'error="invalid_token"' in reply.headers["www-authenticate"]


def test_through_nginx_round_robin_reaches_both_nodes(deployment, e2e_pki, client_cert):
    client_id = deployment.clients["cc"]
    expected = {"client_id": client_id, "x5t#S256": e2e_pki.clients["pki"].x5t_s256}
    before = [requests_served(node) for node in deployment.nodes]
    with through_nginx(e2e_pki) as session:
        token = issued_token(client_credentials(session, deployment.proxy_url, client_id))
        for _ in range(6):
            reply = whoami(session, deployment.proxy_url, token)
            assert (reply.status_code, reply.json()) == (200, expected)
    served = [requests_served(n) - b for n, b in zip(deployment.nodes, before, strict=True)]
    print("requests per node through nginx:", served)
    assert sum(served) == 7
    assert min(served) >= 3, served  # round robin: 7 requests, 3 and 4
    # The token nginx got is good at each node's own port too, with its certificate only.
    with direct(client_cert) as own, direct(SELF_SIGNED_A) as stranger:
        for url in deployment.node_urls:
            assert (whoami(own, url, token).status_code, whoami(own, url, token).json()) == (
                200,
                expected,
            )
            assert whoami(stranger, url, token).status_code == 401


# --- 2. a revocation at one node is seen at the other -------------------------------------


def test_a_revocation_at_one_node_is_seen_at_the_other(deployment, client_cert):
    """Opaque tokens: validity is a row in the shared database, read on every request, so a
    revocation holds everywhere at once (no per-node cache of token validity)."""
    client_id = deployment.clients["cc"]
    first, second = deployment.node_urls
    with direct(client_cert) as session:
        token = issued_token(client_credentials(session, first, client_id))
        assert whoami(session, second, token).status_code == 200
        assert whoami(session, first, token).status_code == 200
        revoked = session.post(
            f"{first}/o/revoke_token/",
            data={"token": token, "token_type_hint": "access_token", "client_id": client_id},
        )
        assert revoked.status_code == 200, revoked.text
        for url in (second, first):
            reply = whoami(session, url, token)
            assert reply.status_code == 401, (url, reply.text)
            assert 'error="invalid_token"' in reply.headers["www-authenticate"]


# --- 3. parallel refreshes across both nodes ----------------------------------------------


def authorization_code(deployment: Deployment) -> tuple[str, str]:
    """(code, verifier): log in at the first node, authorize at the second (the session is in
    the shared database), PKCE S256."""
    first, second = deployment.node_urls
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    with httpx.Client(timeout=TIMEOUT, trust_env=False) as browser:
        page = browser.get(f"{first}/admin/login/")
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert page.status_code == 200 and match, page.text[:500]
        login = browser.post(
            f"{first}/admin/login/?next=/admin/",
            data={"username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": match[1]},
        )
        assert login.status_code == 302 and login.headers["location"] == "/admin/", login.text[:500]
        query_string = urlencode({
            "response_type": "code", "client_id": deployment.clients["code"],
            "redirect_uri": REDIRECT_URI, "scope": "read", "state": "scale-out",
            "code_challenge": challenge.decode(), "code_challenge_method": "S256",
        })  # fmt: skip
        authorized = browser.get(f"{second}/o/authorize/?{query_string}")
    assert authorized.status_code == 302, authorized.text[:500]
    location = authorized.headers["location"]
    assert location.startswith(f"{REDIRECT_URI}?"), location
    answer = parse_qs(urlsplit(location).query)
    assert answer["state"] == ["scale-out"]
    return answer["code"][0], verifier


def test_parallel_refreshes_across_both_nodes_have_exactly_one_winner(deployment, client_cert):
    """DOT's defaults in the example: rotation on, no reuse grace period. 50 refreshes of one
    refresh token at once, 25 at each node, each node's own database connections: PostgreSQL's
    row lock decides, as it does within one process (tests/integration/test_concurrency.py)."""
    client_id = deployment.clients["code"]
    code, verifier = authorization_code(deployment)
    first = deployment.node_urls[0]
    with direct(client_cert) as session:
        pair = session.post(f"{first}/o/token/", data={
            "grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": REDIRECT_URI, "client_id": client_id,
        })  # fmt: skip
    assert pair.status_code == 200, pair.text
    old_refresh = pair.json()["refresh_token"]
    body = {"grant_type": "refresh_token", "refresh_token": old_refresh, "client_id": client_id}
    barrier = threading.Barrier(REFRESHES)

    def refresh(index: int) -> tuple[int, int, dict[str, Any]]:
        node = index % 2
        with direct(client_cert) as session:
            barrier.wait(timeout=TIMEOUT)
            reply = session.post(f"{deployment.node_urls[node]}/o/token/", data=body)
        return node, reply.status_code, reply.json()

    with ThreadPoolExecutor(max_workers=REFRESHES) as pool:
        results = list(pool.map(refresh, range(REFRESHES)))

    per_node = {node: sorted(status for n, status, _ in results if n == node) for node in (0, 1)}
    print(
        "parallel refreshes, statuses per node:",
        {n: {s: v.count(s) for s in set(v)} for n, v in per_node.items()},
    )
    assert [len(v) for v in per_node.values()] == [REFRESHES // 2, REFRESHES // 2]
    winners = [(node, data) for node, status, data in results if status == 200]
    assert len(winners) == 1, results
    losers = [(status, data.get("error")) for _, status, data in results if status != 200]
    assert losers == [(400, "invalid_grant")] * (REFRESHES - 1), losers
    winner_node, new = winners[0]
    print("the winner was node", winner_node)

    # One live refresh token for the client, the winner's; the old one is spent everywhere.
    live = query(
        deployment.database_url,
        "SELECT count(*) FROM oauth2_provider_refreshtoken r JOIN oauth2_provider_application a"
        " ON a.id = r.application_id WHERE a.client_id = %s AND r.revoked IS NULL",
        client_id,
    )
    assert live == [(1,)]
    other = deployment.node_urls[1 - winner_node]
    with direct(client_cert) as session:
        assert whoami(session, other, new["access_token"]).status_code == 200
        again = session.post(f"{other}/o/token/", data=body)
        assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")
        follow = session.post(
            f"{other}/o/token/", data={**body, "refresh_token": new["refresh_token"]}
        )
        assert follow.status_code == 200, follow.text


# --- 4. one jwks_uri fetch per interval for the whole deployment --------------------------


def self_signed_token(url: str, client_id: str, certificate: pki.Issued) -> int:
    with direct(certificate) as session:
        reply = client_credentials(session, url, client_id)
    if reply.status_code != 200:
        assert (reply.status_code, reply.json()["error"]) == (401, "invalid_client"), reply.text
    return reply.status_code


def test_jwks_uri_is_fetched_once_per_interval_for_the_whole_deployment(deployment):
    """With the cache in Redis the nodes share one copy of the client's set and one re-fetch
    marker per URI, so the client's server sees at most one request per
    ``JWKS_REFETCH_INTERVAL_SECONDS`` (the first fetch included) whatever the number of nodes,
    and a rotation is picked up in the next interval. Requests are sequential: two nodes
    missing an empty cache at the same instant may both fetch (nothing waits for another
    node's fetch)."""
    jwks, client_id, urls = deployment.jwks, deployment.clients["self_signed"], deployment.node_urls
    jwks.serve_json("/jwks", jwk_set(SELF_SIGNED_A))
    jwks.hits["/jwks"] = 0

    def round_of(certificate: pki.Issued, requests: int) -> list[int]:
        return [self_signed_token(urls[i % 2], client_id, certificate) for i in range(requests)]

    def within(began: float, what: str) -> None:
        elapsed = time.monotonic() - began
        assert elapsed < INTERVAL, f"the machine was too slow: {what} took {elapsed:.1f} s"

    # The first request fetches, and that fetch opens the interval; every other request, at
    # either node, reads the set from Redis.
    began = time.monotonic()
    assert round_of(SELF_SIGNED_A, 10) == [200] * 10
    assert jwks.hits["/jwks"] == 1
    # The client rotates to key B at once: an unknown certificate asks for a re-fetch, but
    # this URI had its fetch in this interval, at one node or the other: refused, no fetch.
    jwks.serve_json("/jwks", jwk_set(SELF_SIGNED_B))
    assert round_of(SELF_SIGNED_B, 4) == [401] * 4
    within(began, "the first interval's 14 requests")
    assert jwks.hits["/jwks"] == 1

    # The next interval: the first B request re-fetches, once for both nodes; A is refused
    # everywhere without another fetch.
    time.sleep(max(began + INTERVAL + 1 - time.monotonic(), 0))
    began = time.monotonic()
    assert round_of(SELF_SIGNED_B, 10) == [200] * 10
    assert round_of(SELF_SIGNED_A, 2) == [401] * 2
    assert jwks.hits["/jwks"] == 2
    # Another rotation within that interval: neither node may fetch again yet.
    jwks.serve_json("/jwks", jwk_set(SELF_SIGNED_C))
    assert round_of(SELF_SIGNED_C, 4) == [401] * 4
    within(began, "the second interval's 16 requests")
    print("jwks_uri fetches for 30 token requests at 2 nodes over 2 intervals:", jwks.hits["/jwks"])
    assert jwks.hits["/jwks"] == 2


def test_control_nodes_with_per_process_caches_fetch_once_each(deployment):
    """The same two nodes without EXAMPLE_REDIS_URL (Django's default, a cache per process):
    each node fetches the set itself. What the shared cache saves, and proof that the counter
    above sees every node's fetch."""
    env = {k: v for k, v in deployment.node_env.items() if k != "EXAMPLE_REDIS_URL"}
    jwks, client_id = deployment.jwks, deployment.clients["self_signed_control"]
    jwks.serve_json("/jwks-control", jwk_set(SELF_SIGNED_A))
    jwks.hits["/jwks-control"] = 0
    nodes = start_nodes(deployment.directory, "control", env)
    try:
        urls = [f"http://127.0.0.1:{node.port}" for node in nodes]
        statuses = [self_signed_token(urls[i % 2], client_id, SELF_SIGNED_A) for i in range(10)]
    finally:
        for node in nodes:
            node.stop()
    assert statuses == [200] * 10
    assert jwks.hits["/jwks-control"] == 2
