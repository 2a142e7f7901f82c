"""The downgrade class of issue #14 as a property, fuzzed through the real endpoints.

A generator of token, introspection and revocation requests mixes ``encoding`` values, Basic
encodings of the client id (UTF-8, UTF-7 of one or every character, percent- and plus-encoded,
Latin-1 and UTF-16 bytes), a body ``client_id``, secrets, bearer headers, parameters named like
internal attributes (``mtls_bind_to``, ``client_certificate``, ``client``, ``oauth2_error``,
``refresh_token_instance``, the state key, …) and certificates (the matching one, another
client's, an attacker's self-signed one, from a trusted or an untrusted peer). The clients
registered with an mTLS method still hold the secret they had before their move.

Property: **a client registered with an mTLS method is never authenticated without its matching
certificate from a trusted peer, and nothing answers 500.** Who was authenticated is observed by
a recording validator placed in front of ``MTLSOAuth2Validator`` (it only watches).

Budget: 10,000 requests when ``CI`` is set (``FUZZ_DOWNGRADE_CASES`` overrides), 1,000 locally;
the seed is fixed (``FUZZ_DOWNGRADE_SEED``) so a finding replays; counts are printed (``-s``).
"""

from __future__ import annotations

import base64
import os
import random
from collections import Counter
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

import pytest
from django.core.signals import got_request_exception

from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator
from tests import pki
from tests.conftest import ON_CI
from tests.integration.conftest import SECRET
from tests.jwks_server import jwk_set, self_signed

pytestmark = [pytest.mark.django_db]

CASES = int(os.environ.get("FUZZ_DOWNGRADE_CASES") or (10_000 if ON_CI else 1_000))
SEED = int(os.environ.get("FUZZ_DOWNGRADE_SEED") or 8705)
ENDPOINTS = ("/o/token/", "/o/introspect/", "/o/revoke_token/")
ENCODINGS = (None, "utf-7", "UTF-7", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp500",
             "rot13", "no-such-codec", "idna", "utf-8", "", "punycode", "hex")  # fmt: skip
SHADOWS = ("mtls_bind_to", "client_certificate", "client", "oauth2_error",
           "refresh_token_instance", "_django_oauth_mtls_state", "mtls_grant_bound",
           "access_token", "mtls_binding_refused", "request_state", "user")  # fmt: skip

#: Client ids the recording validator saw authenticated, with whether the request carried the
#: matching certificate (set by the test before each request).
AUTHENTICATED: list[str] = []


class RecordingValidator(MTLSOAuth2Validator):
    """Observes which client each request ended up authenticated as."""

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        result = super().authenticate_client(request, *args, **kwargs)
        if result and vars(request).get("client") is not None:
            AUTHENTICATED.append(request.client.client_id)
        return result

    def authenticate_client_id(
        self, client_id: str, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        result = super().authenticate_client_id(client_id, request, *args, **kwargs)
        if result and vars(request).get("client") is not None:
            AUTHENTICATED.append(request.client.client_id)
        return result


def utf7(text: str, *, first_only: bool) -> str:
    def one(char: str) -> str:
        return "+" + base64.b64encode(char.encode("utf-16-be")).decode().rstrip("=") + "-"

    if first_only:
        return one(text[0]) + text[1:]
    return "".join(one(char) for char in text)


def encoded_id(rng: random.Random, client_id: str) -> bytes:
    choice = rng.randrange(9)
    if choice == 0:
        return client_id.encode()
    if choice == 1:
        return utf7(client_id, first_only=True).encode()
    if choice == 2:
        return utf7(client_id, first_only=False).encode()
    if choice == 3:
        return quote(client_id, safe="").encode()
    if choice == 4:
        return "".join(f"%{ord(c):02X}" for c in client_id).encode()
    if choice == 5:
        return client_id.encode("utf-16-le")
    if choice == 6:
        return client_id.encode("latin-1")
    if choice == 7:
        return quote_plus(client_id + " ").encode()
    return client_id.upper().encode()


@pytest.fixture
def recording(use_validator: Any) -> None:
    use_validator("tests.integration.test_fuzz_downgrade.RecordingValidator")


def test_mtls_clients_are_never_authenticated_without_their_certificate(
    client, make_app, mtls_settings, recording, client_cert, root_ca
):
    ss = self_signed("fuzz-self-signed")
    attacker = self_signed("attacker")
    other = pki.issue(pki.name(CN="client-two"), issuer=root_ca, dns=("client-two.example.com",))
    pki_app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    ss_app = make_app("self_signed_tls_client_auth", jwks=jwk_set(ss))
    secret_app = make_app("client_secret_basic")
    for app in (pki_app, ss_app):  # the secret each held before its move to mTLS
        type(app).objects.filter(pk=app.pk).update(client_secret=SECRET, hash_client_secret=False)
    matching = {pki_app.client_id: client_cert, ss_app.client_id: ss}
    ids = [pki_app.client_id, ss_app.client_id, secret_app.client_id]
    certificates = [None, client_cert, ss, attacker, other]

    errors: list[BaseException] = []

    def on_exception(sender: Any, request: Any = None, **kwargs: Any) -> None:
        import sys

        errors.append(sys.exc_info()[1] or RuntimeError("exception"))

    got_request_exception.connect(on_exception)
    client.raise_request_exception = False
    rng = random.Random(SEED)
    statuses: Counter[tuple[str, int]] = Counter()
    authenticated_mtls = 0
    try:
        for case in range(CASES):
            url = rng.choice(ENDPOINTS)
            body: list[tuple[str, str]] = []
            if url == "/o/token/":
                body.append(("grant_type", "client_credentials"))
            else:
                body.append(("token", rng.choice(["x", SECRET, "a" * 30])))
            encoding = rng.choice(ENCODINGS)
            if encoding is not None:
                body.append(("encoding", encoding))
            target = rng.choice(ids)
            if rng.random() < 0.5:
                body.append(("client_id", rng.choice([target, *ids, target.lower(), ""])))
            if rng.random() < 0.3:
                body.append(("client_secret", rng.choice([SECRET, "", "wrong"])))
            for name in rng.sample(SHADOWS, rng.randrange(3)):
                body.append((name, rng.choice(["1", "x", "", "forged-" + "A" * 36, target])))
            extra: dict[str, str] = {}
            kind = rng.random()
            if kind < 0.6:
                user = encoded_id(rng, target)
                password = rng.choice([SECRET, "", "wrong", quote(SECRET)]).encode()
                scheme = rng.choice(["Basic", "Basic", "Basic", "basic", "BASIC"])
                extra["HTTP_AUTHORIZATION"] = (
                    f"{scheme} " + base64.b64encode(user + b":" + password).decode()
                )
            elif kind < 0.7:
                extra["HTTP_AUTHORIZATION"] = "Bearer " + rng.choice(["x", SECRET])
            certificate = rng.choice(certificates)
            peer = rng.choice(["127.0.0.1", "127.0.0.1", "127.0.0.1", "10.9.8.7"])
            extra["REMOTE_ADDR"] = peer
            if certificate is not None:
                extra["HTTP_X_SSL_CLIENT_CERT"] = certificate.nginx()
            rng.shuffle(body)
            AUTHENTICATED.clear()
            response = client.post(
                url, urlencode(body), content_type="application/x-www-form-urlencoded", **extra
            )
            statuses[(url, response.status_code)] += 1
            assert response.status_code != 500, (case, url, body, extra, errors[-1:])
            for client_id in AUTHENTICATED:
                if client_id not in matching:
                    continue
                authenticated_mtls += 1
                # The property: only with its own certificate, from a trusted peer.
                assert certificate is matching[client_id] and peer == "127.0.0.1", (
                    case,
                    url,
                    body,
                    extra,
                )
    finally:
        got_request_exception.disconnect(on_exception)
    print(
        f"\ndowngrade fuzz: {CASES} requests, seed {SEED}, {authenticated_mtls} mTLS authentications"
    )
    for (url, status), count in sorted(statuses.items()):
        print(f"  {url:18} {status}: {count}")
    assert not errors
    # The generator reaches both sides of the property.
    assert authenticated_mtls > 0
    assert sum(count for (url, status), count in statuses.items() if status == 200) > 0
