"""A remote resource server in its own process validates the AS's JWTs (RFC 9068 §4, RFC 8705
§3.1) through ``RESOURCE_SERVER_JWKS_URI``, across a key rotation and an AS outage.

Four processes besides the clients, each on its own loopback port::

    client ──mTLS──▶ nginx(AS) ──▶ gunicorn(AS: example + tests/e2e/settings_as.py, SQLite A)
    client ──mTLS──▶ nginx(RS) ──▶ gunicorn(RS: example + tests/e2e/settings_rs.py, SQLite B)
                                        └──https (test CA)──▶ nginx(AS) /o/.well-known/jwks.json

The RS has its own empty database (no client, no token: asserted at the end) and no key file;
it knows the AS only by its JWK set URL, fetched through the AS's nginx and verified with
``RESOURCE_SERVER_CA_BUNDLE`` = the test CA. Fetches are counted twice: the AS side (the JWK set
URL carries ``?probe=rs-jwks``, which the gunicorn probe records per request) and the RS's own
log (``AS JWK set fetched``).

1. A token signed with K1 (EC P-256, ES256): 200 at the RS with the certificate, 401 without or
   with another client's; one fetch.
2. Rotation mid-run: the AS signs with K2 (RSA, PS256) and keeps K1 published (files replaced,
   no restart). The RS has not seen K2; the first K2 token makes it re-fetch on the unknown
   ``kid`` (a second fetch, no more), and both tokens pass.
3. Outage: the AS's gunicorn is stopped (nginx answers 502), then its nginx (connection
   refused). A token under an unknown ``kid`` forces a re-fetch, which fails: 401 for that
   token, while K1 and K2 tokens keep passing; once the set's fresh period
   (``JWKS_CACHE_SECONDS``) is over the RS re-fetches for a known ``kid``, fails again, and the
   last good set keeps serving. Binding is still enforced throughout.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from tests.conftest import require_tool
from tests.e2e import servers
from tests.e2e.clients import Credentials
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
from tests.e2e.test_binding_nginx import call

pytestmark = pytest.mark.e2e

#: The RS's JWKS_CACHE_SECONDS: its set is fresh this long after a fetch. Long enough that the
#: rotation (step 2, bounded by the AS's 5 s key-file re-read) happens inside it; short enough
#: that the outage (step 3) outlives it within the test.
FRESH_SECONDS = 20
#: The RS's JWKS_REFETCH_INTERVAL_SECONDS (default 30): one re-fetch per second at most.
REFETCH_INTERVAL = 1
#: How long the AS may take to notice replaced key files (jwt_keys.RELOAD_CHECK_SECONDS = 5).
RELOAD_TIMEOUT = 15.0
PROBE = "rs-jwks"


@dataclass
class Remote:
    as_url: str
    rs_url: str
    client_id: str
    as_app: servers.Managed
    as_proxy: servers.Managed
    rs_app: servers.Managed
    rs_db: Path
    keys: Path
    kids: dict[str, str]  # "k1"/"k2" → kid

    def as_fetches(self) -> int:
        """JWK set requests from the RS that reached the AS's gunicorn."""
        probe = self.as_app.extra["probe"]
        assert isinstance(probe, Path)
        if not probe.exists():
            return 0
        return probe.read_text().count(f'"probe": "{PROBE}"')

    def rs_log(self) -> str:
        return self.rs_app.log.read_text(errors="replace")

    def rs_fetches(self) -> int:
        return self.rs_log().count("AS JWK set fetched")


def _replace(source: Path, target: Path, mode: int) -> None:
    """Put a copy of ``source`` at ``target`` atomically (docs/keys.md: write, then rename)."""
    staging = target.with_name(f".{target.name}.{uuid.uuid4().hex}")
    shutil.copyfile(source, staging)
    staging.chmod(mode)
    os.replace(staging, target)


@pytest.fixture(scope="module")
def remote(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[Remote]:
    nginx = require_tool("nginx")
    top = _subdir(e2e_dir, "jwt-remote")
    started: list[servers.Managed] = []
    try:
        # --- the authorization server -------------------------------------------------------
        as_dir = _subdir(top, "as")
        as_db = as_dir / "as.sqlite3"
        servers.migrate(as_db, as_dir / "migrate.log")
        client_id = create_bound_client(as_db)
        keys = as_dir / "keys"
        keys.mkdir(mode=0o700)
        made = keys / "made"
        made.mkdir(mode=0o700)
        kids = {
            "k1": generate_key(as_db, made / "k1.pem", "ec-p256")[0],
            "k2": generate_key(as_db, made / "k2.pem", "rsa")[0],
        }
        # K1 signs; the published slot holds K1's public key too (deduplicated by kid) until
        # the rotation puts K2 in the signing slot and K1 in the published one.
        _replace(made / "k1.pem", keys / "signing.pem", 0o600)
        _replace(made / "k1.pem.pub", keys / "published.pem", 0o644)
        as_app = servers.start_gunicorn(
            "nginx", _subdir(as_dir, "gunicorn"), as_db,
            extra_env={
                "DJANGO_SETTINGS_MODULE": "tests.e2e.settings_as",
                "OAUTH2_MTLS_TRUSTED_CA": str(e2e_pki.tls.ca),
                "OAUTH2_MTLS_ACCESS_TOKEN_FORMAT": "jwt",
                "OAUTH2_MTLS_JWT_SIGNING_KEY": str(keys / "signing.pem"),
                "OAUTH2_MTLS_JWT_PUBLISHED_KEYS": str(keys / "published.pem"),
                "OAUTH2_MTLS_JWT_AUDIENCE": AUDIENCE,
                "OAUTH2_ISSUER": ISSUER,
            },
        )  # fmt: skip
        started.append(as_app)
        as_proxy = servers.start_nginx(nginx, _subdir(as_dir, "nginx"), e2e_pki.tls, as_app.port)
        started.append(as_proxy)
        as_url = f"https://127.0.0.1:{as_proxy.port}"

        # --- the resource server: its own database, no key file, the AS's JWK set URL -------
        rs_dir = _subdir(top, "rs")
        rs_db = rs_dir / "rs.sqlite3"
        servers.migrate(rs_db, rs_dir / "migrate.log")
        rs_app = servers.start_gunicorn(
            "nginx", _subdir(rs_dir, "gunicorn"), rs_db,
            extra_env={
                "DJANGO_SETTINGS_MODULE": "tests.e2e.settings_rs",
                "OAUTH2_MTLS_TOKEN_VALIDATION": "jwt",
                "OAUTH2_MTLS_RESOURCE_AUDIENCE": AUDIENCE,
                "OAUTH2_MTLS_JWT_ISSUER": ISSUER,
                "OAUTH2_MTLS_JWKS_URI": f"{as_url}/o/.well-known/jwks.json?probe={PROBE}",
                "OAUTH2_MTLS_RS_CA_BUNDLE": str(e2e_pki.tls.ca),
                "OAUTH2_MTLS_JWKS_CACHE_SECONDS": str(FRESH_SECONDS),
                "OAUTH2_MTLS_JWKS_REFETCH_INTERVAL_SECONDS": str(REFETCH_INTERVAL),
            },
        )  # fmt: skip
        started.append(rs_app)
        rs_proxy = servers.start_nginx(nginx, _subdir(rs_dir, "nginx"), e2e_pki.tls, rs_app.port)
        started.append(rs_proxy)
        yield Remote(
            as_url=as_url,
            rs_url=f"https://127.0.0.1:{rs_proxy.port}",
            client_id=client_id,
            as_app=as_app,
            as_proxy=as_proxy,
            rs_app=rs_app,
            rs_db=rs_db,
            keys=keys,
            kids=kids,
        )
    finally:
        for server in reversed(started):
            server.stop()


def _token(remote: Remote, cert: Credentials, ca: Path) -> str:
    form = {"grant_type": "client_credentials", "client_id": remote.client_id, "scope": "read"}
    status, body, _ = call("httpx", "POST", f"{remote.as_url}/o/token/", ca, cert, form=form)
    assert status == 200, body
    return str(body["access_token"])


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _whoami(remote: Remote, token: str, cert: Credentials | None, ca: Path) -> int:
    status, body, head = call("httpx", "GET", f"{remote.rs_url}/api/whoami/", ca, cert, token=token)
    if status == 200:
        assert body == {"client_id": remote.client_id, "x5t#S256": cert.x5t_s256 if cert else None}
    else:
        assert status == 401 and 'error="invalid_token"' in head, (status, body, head)
    return status


def _forged(remote: Remote, own: Credentials) -> str:
    """A token of the right shape under a key the AS never published (kid unknown to all)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER, "aud": AUDIENCE, "sub": remote.client_id, "client_id": remote.client_id,
        "iat": now, "exp": now + 600, "jti": uuid.uuid4().hex, "scope": "read",
        "cnf": {"x5t#S256": own.x5t_s256},
    }  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "k3-never-published",
                                                               "typ": "at+jwt"})  # fmt: skip


def test_remote_resource_server_rotation_and_outage(remote, e2e_pki):
    ca = e2e_pki.tls.ca
    own, stranger = e2e_pki.clients["pki"], e2e_pki.clients["self_signed"]
    jwks_url = f"{remote.as_url}/o/.well-known/jwks.json"
    timeline: list[str] = []

    def note(event: str) -> None:
        line = f"as_fetches={remote.as_fetches()} rs_fetches={remote.rs_fetches()}  {event}"
        timeline.append(line)
        print(line)

    # --- 1. K1 ----------------------------------------------------------------------------
    first = _token(remote, own, ca)
    assert _kid(first) == remote.kids["k1"]
    verify(first, jwk_set(jwks_url, ca))
    assert remote.as_fetches() == 0
    fresh_from = time.monotonic()
    assert _whoami(remote, first, own, ca) == 200
    note("K1 token, with its certificate: 200")
    assert _whoami(remote, first, None, ca) == 401
    assert _whoami(remote, first, stranger, ca) == 401
    assert _whoami(remote, "not-a-jwt", own, ca) == 401  # "jwt" mode: only a JWS
    note("K1 token without / with another certificate, and an opaque string: 401")
    assert (remote.as_fetches(), remote.rs_fetches()) == (1, 1)

    # --- 2. rotation: K2 signs, K1 stays published ------------------------------------------
    _replace(remote.keys / "made" / "k2.pem", remote.keys / "signing.pem", 0o600)
    _replace(remote.keys / "made" / "k1.pem.pub", remote.keys / "published.pem", 0o644)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    second = _token(remote, own, ca)
    while _kid(second) != remote.kids["k2"]:
        assert time.monotonic() < deadline, "the AS did not pick up the replaced key files"
        time.sleep(0.5)
        second = _token(remote, own, ca)
    document = jwk_set(jwks_url, ca)
    assert {key["kid"]: key["alg"] for key in document["keys"]} == {
        remote.kids["k1"]: "ES256",
        remote.kids["k2"]: "PS256",
    }
    header, claims = verify(second, document)
    assert header["alg"] == "PS256" and claims["cnf"] == {"x5t#S256": own.x5t_s256}
    show("JWK set after the rotation", document)
    # The premise of this step: the RS's set is still fresh, so only the unknown kid can make
    # it fetch again.
    assert time.monotonic() - fresh_from < FRESH_SECONDS - 2, "too slow to test the kid path"
    assert (remote.as_fetches(), remote.rs_fetches()) == (1, 1)
    note("AS rotated (K2 signs, K1 published); RS not told")
    refetch_at = time.monotonic()
    assert _whoami(remote, second, own, ca) == 200
    note("K2 token (unknown kid at the RS → one re-fetch): 200")
    assert _whoami(remote, first, own, ca) == 200
    assert _whoami(remote, second, stranger, ca) == 401
    note("K1 token still 200; K2 token with another certificate 401")
    assert (remote.as_fetches(), remote.rs_fetches()) == (2, 2)

    # --- 3. outage ------------------------------------------------------------------------
    remote.as_app.stop()
    status, _, _ = call("httpx", "GET", jwks_url, ca, None)
    assert status == 502  # nginx, with nothing behind it
    note("AS gunicorn stopped (its nginx answers 502)")
    time.sleep(REFETCH_INTERVAL + 0.2)
    assert _whoami(remote, _forged(remote, own), own, ca) == 401
    note("token under an unknown kid: re-fetch fails, 401")
    assert _whoami(remote, first, own, ca) == 200
    assert _whoami(remote, second, own, ca) == 200
    assert _whoami(remote, second, None, ca) == 401
    note("K1 and K2 tokens: 200 from the last good set; without the certificate: 401")

    remote.as_proxy.stop()
    note("AS nginx stopped too (connection refused)")
    time.sleep(max(0.0, refetch_at + FRESH_SECONDS + 1.5 - time.monotonic()))
    assert _whoami(remote, second, own, ca) == 200
    note(f"{FRESH_SECONDS} s after the last fetch (set stale, re-fetch fails): K2 token 200")
    assert _whoami(remote, first, own, ca) == 200
    assert _whoami(remote, first, stranger, ca) == 401
    note("K1 token 200; with another certificate 401")

    log = remote.rs_log()
    failures = [line for line in log.splitlines() if "AS JWK set fetch failed" in line]
    print("\n".join(failures))
    assert len(failures) == 2, log[-3000:]
    assert "reason=HTTP 502" in failures[0] and "keeps serving" in failures[0]
    assert "reason=connection failed" in failures[1] and "keeps serving" in failures[1]
    # One refusal line per reason code met above, each a 401 (docs/resource-server.md).
    expected = {"jwt_unknown_key", "certificate_missing", "certificate_mismatch", "jwt_malformed"}
    refused = {reason for reason in expected if f"access token refused: reason={reason}" in log}
    assert refused == expected
    assert " 500 " not in log and "Traceback" not in log

    # The RS never had a client, a token or a user of its own: everything came from the JWT.
    with sqlite3.connect(remote.rs_db) as db:
        for table in ("oauth2_provider_application", "oauth2_provider_accesstoken", "auth_user"):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() == (0,), table  # noqa: S608
    note("RS database: no application, no access token, no user")
    print("\n".join(["--- timeline", *timeline]))
