"""Fuzzing through the real endpoints (issue #11 item 1): random and mutated bodies, certificate
fields, peers and ``Authorization`` headers posted to ``/o/token/``, ``/o/introspect/``,
``/o/revoke_token/`` and ``/api/whoami/`` with Django's test client → no response is a 500.

The source changes per example (nginx, rfc9440, envoy, apache, haproxy, traefik, ALB passthrough,
pem), certificate fields are real encodings of real certificates (PKI client, another client,
a self-signed client, a CA) or mutations of them (``fuzz.targets``), bodies mix valid and
invalid client ids, secrets, grant types, codes and tokens (bound and unbound, access and
refresh; opaque and RFC 9068 JWTs — valid, bound, expired, for another audience, signed with a
foreign key, ``alg: none`` — and their mutations). The resource's validation mode changes per
example too (``RESOURCE_SERVER_TOKEN_VALIDATION``: database, jwt, jwt_or_database).
``client.raise_request_exception = False``: a server error is a 500 response, counted.

Budget: the conftest profile's ``max_examples`` (2,000 when ``CI`` is set, 300 locally), all four
endpoints in one test; the counts per endpoint and status are printed (``pytest -s``) and, with
``FUZZ_ENDPOINTS_REPORT=path``, written as JSON.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import pytest
from django.core.signals import got_request_exception
from django.test import Client, override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz.targets import ENCODERS, mutate_bytes, mutate_text
from tests import pki
from tests.integration.conftest import SECRET, basic, code_grant, post_form, token_request
from tests.jwks_server import jwk_set, self_signed
from tests.jwt_forge import AUDIENCE, ISSUER, Signer, flip_signature_byte

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.filterwarnings("ignore:Parsed a serial number:UserWarning"),
]

ENDPOINTS = ("/o/token/", "/o/introspect/", "/o/revoke_token/", "/api/whoami/")
SOURCES = (
    "nginx",
    "rfc9440",
    "envoy",
    "apache",
    "haproxy",
    "traefik",
    "aws_alb_passthrough",
    "pem",
)
PEERS = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "::1", "10.9.8.7", "", "::ffff:127.0.0.1",
         "not an address", "127.0.0.1, 10.0.0.1", "fe80::1%eth0"]  # fmt: skip
PARAMETERS = ["grant_type", "client_id", "client_secret", "scope", "code", "redirect_uri",
              "code_verifier", "refresh_token", "token", "token_type_hint", "client_assertion",
              "client_assertion_type", "resource", "device_code", "username", "password",
              "audience", "x"]  # fmt: skip
GRANT_TYPES = ["client_credentials", "refresh_token", "authorization_code", "password",
               "urn:ietf:params:oauth:grant-type:device_code", "implicit", "", "CLIENT_CREDENTIALS"]  # fmt: skip
CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/json", "text/plain",
                 "multipart/form-data; boundary=xyz", "multipart/form-data",
                 "application/x-www-form-urlencoded; charset=latin-1",
                 "application/x-www-form-urlencoded; charset=bogus", ""]  # fmt: skip

#: Statuses per endpoint over the whole run.
STATUSES: Counter[tuple[str, int]] = Counter()


VALIDATION_MODES = ("database", "jwt", "jwt_or_database")


def _jwt_tokens(signer: Signer, bound_client_id: str, x5t: str, user_pk: str) -> list[str]:
    """JWT access tokens of every shape a resource meets: the first is valid and bound."""
    now = int(time.time())
    return [
        signer.token(x5t=x5t, client_id=bound_client_id, sub=bound_client_id),
        signer.token(client_id=bound_client_id, sub=user_pk),
        signer.token(x5t=x5t, exp=now - 3600),
        signer.token(x5t=x5t, aud=["https://other.example"]),
        signer.token(x5t=x5t, key=Signer("ec").key),
        signer.token(x5t=x5t, key="", alg="none"),
        signer.token(x5t=x5t, header={"typ": "JWT"}),
        signer.token(cnf={"jkt": x5t}),
        signer.hs256_with_public_jwk(x5t),
        flip_signature_byte(signer.token(x5t=x5t)),
    ]


@pytest.fixture
def world(client, make_app, mtls_settings, client_cert, root_ca, user, tmp_path):
    """Clients of every kind and live tokens for them: what a fuzzed request may name."""
    from tests.integration.conftest import authorization_code

    other = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-two"),
        issuer=root_ca,
        dns=("client-two.example.com",),
    )
    ss = self_signed("fuzz-self-signed")
    bound = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    unflagged = make_app(tls_client_auth_subject_dn="CN=client-two,O=Example\\, Inc.,C=DE")
    selfsigned = make_app("self_signed_tls_client_auth", jwks=jwk_set(ss))
    secret_app = make_app(None)
    code_app = make_app(
        grant_type="authorization-code",
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    public_app = make_app("none", client_type="public", grant_type="authorization-code")
    tokens: list[str] = []
    for app, cert in ((bound, client_cert), (unflagged, other), (selfsigned, ss)):
        response = token_request(client, app, cert)
        assert response.status_code == 200, response.content
        tokens.append(response.json()["access_token"])
    response = token_request(client, secret_app, None, data={"client_secret": SECRET})
    assert response.status_code == 200, response.content
    tokens.append(response.json()["access_token"])
    code, verifier = authorization_code(client, code_app, user)
    response = token_request(
        client,
        code_app,
        client_cert,
        data=code_grant(code, verifier),
    )
    assert response.status_code == 200, response.content
    tokens += [response.json()["access_token"], response.json()["refresh_token"]]
    apps = [bound, unflagged, selfsigned, secret_app, code_app, public_app]
    signer = Signer("ec")
    jwts = _jwt_tokens(signer, bound.client_id, client_cert.x5t_s256, str(user.pk))
    tokens += jwts
    return {
        "jwts": jwts,
        "jwt_key_file": signer.write(tmp_path),
        "apps": apps,
        "client_ids": [app.client_id for app in apps],
        "tokens": tokens,
        "ders": [client_cert.der, other.der, ss.der, root_ca.der],
        "chain": [root_ca.der],
        "ca_file": mtls_settings.OAUTH2_MTLS["TRUSTED_CA_CERTIFICATES"][0],
    }


def _value(rng: random.Random, world: dict[str, Any]) -> str:
    pick = rng.random()
    if pick < 0.25:
        return rng.choice(world["client_ids"])
    if pick < 0.45:
        return rng.choice(world["tokens"])
    if pick < 0.55:
        return rng.choice(GRANT_TYPES)
    if pick < 0.6:
        return SECRET
    seeds = world["client_ids"] + world["tokens"] + GRANT_TYPES + ["read", "read write", ""]
    return mutate_text(rng, rng.choice(seeds), seeds)


def _request(rng: random.Random, world: dict[str, Any]) -> dict[str, Any]:
    """One fuzzed request: endpoint, method, body, META additions, certificate source."""
    endpoint = rng.choice(ENDPOINTS)
    source = rng.choice(SOURCES)
    # One request in five is coherent (a trusted peer, client-one's certificate, its bound
    # token or client id), so the fuzz also reaches the success paths and mutates around them.
    coherent = rng.random() < 0.2
    meta: dict[str, Any] = {"REMOTE_ADDR": "127.0.0.1" if coherent else rng.choice(PEERS)}
    # --- the certificate field(s) ---
    cert_pick = 0.0 if coherent else rng.random()
    if cert_pick < 0.55:
        der = world["ders"][0] if coherent else rng.choice(world["ders"])
        if rng.random() < 0.3:
            der = mutate_bytes(rng, der, world["ders"])
        chain = tuple(world["chain"]) if rng.random() < 0.3 else ()
        value, chain_value = ENCODERS[source](der, chain)
        if rng.random() < 0.3:
            value = mutate_text(rng, value)
    elif cert_pick < 0.7:
        value, chain_value = mutate_text(rng, "x" * rng.randint(0, 40)), None
    else:
        value, chain_value = None, None
    from django_oauth_mtls.proxies import IntakeConfig

    keys = IntakeConfig.build(source)
    if value is not None:
        meta[keys.certificate_key] = value
    if chain_value is not None and keys.chain_key:
        meta[keys.chain_key] = chain_value
    if rng.random() < 0.1:
        meta["HTTP_X_FORWARDED_FOR"] = "127.0.0.1"
    # --- Authorization ---
    auth = rng.random()
    if auth < 0.15:
        meta["HTTP_AUTHORIZATION"] = basic(
            rng.choice(world["client_ids"]), rng.choice([SECRET, "x"])
        )
    elif coherent and endpoint == "/api/whoami/":
        meta["HTTP_AUTHORIZATION"] = "Bearer " + rng.choice((world["tokens"][0], world["jwts"][0]))
    elif auth < 0.4 or endpoint == "/api/whoami/" and auth < 0.8:
        meta["HTTP_AUTHORIZATION"] = "Bearer " + _value(rng, world)
    elif auth < 0.5:
        meta["HTTP_AUTHORIZATION"] = mutate_text(
            rng, rng.choice(["Basic ", "Bearer ", "basic Og==", "Basic " + "é" * 3])
        )
    # --- body ---
    params = {name: _value(rng, world) for name in rng.sample(PARAMETERS, rng.randint(0, 6))}
    if rng.random() < 0.6:
        params["grant_type"] = rng.choice(GRANT_TYPES)
    if rng.random() < 0.6:
        params["client_id"] = rng.choice(world["client_ids"])
    if coherent:
        params.update(client_id=world["client_ids"][0], scope="read")
        params.setdefault("token", world["tokens"][0])
    body_pick = rng.random()
    if body_pick < 0.7:
        content_type = CONTENT_TYPES[0]
        body: str | bytes = urlencode(params, errors="surrogatepass")
        if rng.random() < 0.2:
            body = mutate_text(rng, body).encode("utf-8", "surrogatepass")
    elif body_pick < 0.85:
        content_type = rng.choice(CONTENT_TYPES)
        body = (
            json.dumps(params)
            if "json" in content_type
            else urlencode(params, errors="surrogatepass")
        )
    else:
        content_type = rng.choice(CONTENT_TYPES)
        body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    method = (
        "get"
        if endpoint == "/api/whoami/" and rng.random() < 0.8
        else rng.choice(["post", "post", "post", "get", "put", "options", "delete"])
    )
    return {
        "endpoint": endpoint,
        "method": method,
        "body": body,
        "content_type": content_type,
        "meta": meta,
        "source": source,
        "trust_proxy_verification": rng.random() < 0.2,
        "validation": rng.choice(VALIDATION_MODES),
    }


def _send(client: Client, world: dict[str, Any], request: dict[str, Any]) -> int:
    config = {
        "CERTIFICATE_SOURCE": request["source"],
        "TRUSTED_PROXIES": ["127.0.0.1/32", "::1/128"],
        "TRUSTED_CA_CERTIFICATES": [world["ca_file"]],
        "TRUST_PROXY_VERIFICATION": request["trust_proxy_verification"],
        "RESOURCE_SERVER_TOKEN_VALIDATION": request["validation"],
        "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
        "RESOURCE_SERVER_JWT_ISSUER": ISSUER,
        "JWT_SIGNING_KEYS": [world["jwt_key_file"]],
    }
    body = request["body"]
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogatepass")
    # What a WSGI server hands Django: header values as latin-1 text of the bytes on the wire.
    meta = {
        key: value.encode("utf-8", "surrogatepass").decode("latin-1")
        for key, value in request["meta"].items()
    }
    with override_settings(OAUTH2_MTLS=config):
        response = client.generic(
            request["method"].upper(),
            request["endpoint"],
            body,
            content_type=request["content_type"],
            **meta,
        )
    return response.status_code


#: 500s that are already-reported bugs, by id (none open).
KNOWN_500: dict[str, str] = {}  # B1, B4, B5 were found here and fixed; see the tests below


def known_500(exc: BaseException) -> str | None:
    """Which already-reported bug a request's exception is, or ``None`` (a new finding)."""
    return None


@pytest.fixture
def request_exceptions():
    """Every exception a request raised, as Django reports it before answering 500."""
    caught: list[BaseException] = []

    def receiver(sender, request=None, **kwargs):
        caught.append(sys.exc_info()[1])

    got_request_exception.connect(receiver, dispatch_uid="test_fuzz_endpoints")
    yield caught
    got_request_exception.disconnect(dispatch_uid="test_fuzz_endpoints")


def test_no_500_from_fuzzed_requests(client, world, request_exceptions):
    client.raise_request_exception = False
    profile = settings()
    seen: list[int] = []
    known: Counter[str] = Counter()

    @settings(
        max_examples=profile.max_examples,
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )
    @given(st.randoms(use_true_random=False, note_method_calls=False))
    def check(rng):
        request_exceptions.clear()
        request = _request(rng, world)
        status = _send(client, world, request)
        STATUSES[(request["endpoint"], status)] += 1
        seen.append(status)
        if status == 500:
            bugs = {known_500(exc) for exc in request_exceptions}
            if len(bugs) == 1 and None not in bugs:
                known[bugs.pop()] += 1
                return
            raise AssertionError(f"500 for {request!r}: {request_exceptions!r}")

    check()
    report = {
        "cases": len(seen),
        "status_500": seen.count(500),
        "status_500_known": dict(known),
        "by_endpoint_and_status": {f"{e} {s}": n for (e, s), n in sorted(STATUSES.items())},
    }
    print(json.dumps(report, indent=2))
    if os.environ.get("FUZZ_ENDPOINTS_REPORT"):
        with open(os.environ["FUZZ_ENDPOINTS_REPORT"], "w") as handle:
            json.dump(report, handle, indent=2)
    assert seen.count(500) == sum(known.values())  # every 500 is an already-reported bug
    assert len(seen) >= profile.max_examples
    for endpoint in ENDPOINTS:
        assert sum(n for (e, _s), n in STATUSES.items() if e == endpoint) > 0


# --- the 500s found here (B4, B5: DOT 3.4.1), handled by the package: regressions --------------------------


@pytest.mark.parametrize("url", ["/o/token/", "/o/revoke_token/", "/o/introspect/"])
def test_B4_non_ascii_basic_credentials_are_invalid_client(client, make_app, mtls_settings, url):
    client.raise_request_exception = False
    app = make_app(None)
    body = {"grant_type": "client_credentials", "token": "x", "client_id": app.client_id}
    # "Basic é": the UTF-8 bytes of é on the wire, as a WSGI server decodes them (latin-1).
    response = post_form(client, url, body, HTTP_AUTHORIZATION="Basic \u00c3\u00a9")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_B5_device_code_grant_without_device_code_is_invalid_request(
    client, make_app, mtls_settings
):
    client.raise_request_exception = False
    app = make_app(None)
    response = post_form(
        client,
        "/o/token/",
        {"grant_type": "urn:ietf:params:oauth:grant-type:device_code", "client_id": app.client_id},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
