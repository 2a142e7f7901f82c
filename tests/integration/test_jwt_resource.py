"""JWT access tokens at a resource (RFC 9068 §4, RFC 8705 §3.1): the jwt validation modes.

Tokens are forged with PyJWT (``tests/jwt_forge.py``), signed with the key this server publishes
(``JWT_SIGNING_KEYS``, a PEM in ``tmp_path``), one thing wrong at a time; each refusal is a 401
with a Bearer ``invalid_token`` challenge, a fixed description and the ``access_token_refused``
signal's reason code. ``FORGED`` is the table the closing note reports (``pytest -s`` prints it).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import pytest
from django.test import RequestFactory
from oauth2_provider.models import get_access_token_model

from django_oauth_mtls import jwt_keys, jwt_resource_keys, signals
from django_oauth_mtls.bearer import at_authorization_server_endpoint
from django_oauth_mtls.binding import x5t_s256_of
from django_oauth_mtls.descriptions import ACCESS_TOKEN_PHRASES
from django_oauth_mtls.exceptions import ACCESS_TOKEN_REASONS
from django_oauth_mtls.jwt_tokens import JWTAccessToken
from tests import pki
from tests.integration.conftest import SECRET, post_form, token_request
from tests.jwt_forge import AUDIENCE, ISSUER, Signer, flip_signature_byte

pytestmark = pytest.mark.django_db

WHOAMI = "/api/whoami/"
ANY = "/test/mtls-any/"  # our DRF authentication, TokenHasScope(read)
DOT_PLAIN = "/test/dot-plain/"  # DOT's own OAuth2Authentication, TokenHasScope(read)
DECORATED = "/test/decorated/"
MIXIN = "/test/mixin/"  # require_bound_token


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer("ec")


@pytest.fixture(scope="module")
def other_cert(root_ca: pki.Issued) -> pki.Issued:
    return pki.issue(pki.name(CN="client-two"), issuer=root_ca, dns=("client-two.example.com",))


def configure(settings: Any, signer_path: str, **overrides: Any) -> None:
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "RESOURCE_SERVER_TOKEN_VALIDATION": "jwt",
        "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
        "RESOURCE_SERVER_JWT_ISSUER": ISSUER,
        "JWT_SIGNING_KEYS": [signer_path],
        **overrides,
    }
    jwt_keys.reset()
    jwt_resource_keys.reset()


@pytest.fixture
def jwt_mode(settings: Any, tmp_path: Any, signer: Signer) -> Any:
    path = signer.write(tmp_path)
    configure(settings, path)
    settings.jwt_signing_path = path
    yield settings
    jwt_keys.reset()
    jwt_resource_keys.reset()


@pytest.fixture
def refusals() -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    signals.access_token_refused.connect(receiver, dispatch_uid="test_jwt_resource")
    yield seen
    signals.access_token_refused.disconnect(dispatch_uid="test_jwt_resource")


def get(client: Any, url: str, token: str, cert: pki.Issued | None = None) -> Any:
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1"}
    if cert is not None:
        extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
    return client.get(url, **extra)


def assert_refused(response: Any, refusals: list[dict[str, Any]], reason: str) -> None:
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge, challenge
    assert ACCESS_TOKEN_PHRASES[reason] in challenge, challenge
    assert [r["reason"] for r in refusals] == [reason]


# --- the forged-token table ---------------------------------------------------------------------

#: case → (how to make the token, whether a certificate is sent, expected status, reason).
FORGED: list[tuple[str, Any, str, int, str | None]] = [
    ("valid, bound, its certificate", lambda s, c: s.token(x5t=c.x5t_s256), "own", 200, None),
    ("valid, bound, no certificate", lambda s, c: s.token(x5t=c.x5t_s256), "none", 401, "certificate_missing"),
    ("valid, bound, another certificate", lambda s, c: s.token(x5t=c.x5t_s256), "other", 401, "certificate_mismatch"),
    ("valid, unbound (TokenIsCertificateBound)", lambda s, c: s.token(), "own", 401, "unbound_refused"),
    ("iss wrong", lambda s, c: s.token(x5t=c.x5t_s256, iss="https://evil.example"), "own", 401, "jwt_issuer"),
    ("aud wrong", lambda s, c: s.token(x5t=c.x5t_s256, aud=["https://other.example"]), "own", 401, "jwt_audience"),
    ("exp passed", lambda s, c: s.token(x5t=c.x5t_s256, exp=int(time.time()) - 60), "own", 401, "jwt_expired"),
    ("nbf in the future", lambda s, c: s.token(x5t=c.x5t_s256, nbf=int(time.time()) + 600), "own", 401, "jwt_not_yet_valid"),
    ("typ missing", lambda s, c: s.token(x5t=c.x5t_s256, header={"typ": ...}), "own", 401, "jwt_type"),
    ('typ "JWT"', lambda s, c: s.token(x5t=c.x5t_s256, header={"typ": "JWT"}), "own", 401, "jwt_type"),
    ("alg none", lambda s, c: s.token(x5t=c.x5t_s256, key="", alg="none"), "own", 401, "jwt_algorithm"),
    ("HS256 keyed with the public JWK", lambda s, c: s.hs256_with_public_jwk(c.x5t_s256), "own", 401, "jwt_algorithm"),
    ("a foreign key under the known kid", lambda s, c: s.token(x5t=c.x5t_s256, key=Signer("ec").key), "own", 401, "jwt_signature"),
    ("an unknown kid", lambda s, c: s.token(x5t=c.x5t_s256, header={"kid": "unknown-kid"}), "own", 401, "jwt_unknown_key"),
    ("a flipped signature byte", lambda s, c: flip_signature_byte(s.token(x5t=c.x5t_s256)), "own", 401, "jwt_signature"),
    ("junk with two dots", lambda s, c: "junk.junk.junk", "own", 401, "jwt_malformed"),
    ("junk without dots", lambda s, c: "not-a-token-at-all", "own", 401, "jwt_malformed"),
    ("eight KiB and more", lambda s, c: "eyJ" + "A" * 9000 + ".e.e", "own", 401, "jwt_malformed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "make", "cert", "status", "reason"), FORGED, ids=[row[0] for row in FORGED]
)
def test_forged_tokens(
    client, jwt_mode, signer, client_cert, other_cert, refusals, case, make, cert, status, reason
):
    token = make(signer, client_cert)
    presented = {"own": client_cert, "other": other_cert, "none": None}[cert]
    response = get(client, WHOAMI, token, presented)
    if reason is None:
        assert response.status_code == status == 200, response.content
        assert response.json() == {"client_id": "client-1", "x5t#S256": client_cert.x5t_s256}
        assert refusals == []
    else:
        assert_refused(response, refusals, reason)
        assert refusals[0]["x5t_s256"] == (presented.x5t_s256 if presented else None)
    print(f"| {case} | {response.status_code} | {reason or '-'} |")  # the table, with pytest -s


def test_an_opaque_token_at_a_jwt_mode_resource(
    client, make_app, mtls_settings, settings, tmp_path, signer, client_cert, refusals
):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    opaque = token_request(client, app, client_cert).json()["access_token"]
    configure(settings, signer.write(tmp_path))
    assert_refused(get(client, WHOAMI, opaque, client_cert), refusals, "jwt_malformed")


def test_refusal_logs_one_line_without_the_token(client, jwt_mode, signer, client_cert, caplog):
    token = signer.token(x5t=client_cert.x5t_s256, aud=["https://other.example"])
    with caplog.at_level(logging.INFO, logger="django_oauth_mtls"):
        get(client, WHOAMI, token, client_cert)
    lines = [r.getMessage() for r in caplog.records if "access token refused" in r.getMessage()]
    assert len(lines) == 1 and "reason=jwt_audience" in lines[0]
    assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_the_bound_refusals_carry_no_store(client, jwt_mode, signer, client_cert, other_cert):
    response = get(client, WHOAMI, signer.token(x5t=client_cert.x5t_s256), other_cert)
    assert response.status_code == 401 and "no-store" in response["Cache-Control"]


# --- no database query on the request path ---------------------------------------------------------


@pytest.mark.parametrize("url", [WHOAMI, ANY, DOT_PLAIN, DECORATED, MIXIN])
def test_no_query_for_a_client_token(
    client, jwt_mode, signer, client_cert, url, django_assert_num_queries
):
    token = signer.token(x5t=client_cert.x5t_s256)
    with django_assert_num_queries(0):
        response = get(client, url, token, client_cert)
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("url", [ANY, DOT_PLAIN, DECORATED, MIXIN])
def test_the_binding_is_enforced_through_every_class(
    client, jwt_mode, signer, client_cert, other_cert, url, refusals
):
    token = signer.token(x5t=client_cert.x5t_s256)
    assert get(client, url, token, other_cert).status_code in (401, 403)  # DOT's plain view: 403
    assert [r["reason"] for r in refusals] == ["certificate_mismatch"]


def test_scope_is_checked_from_the_claim(client, jwt_mode, signer, client_cert, refusals):
    token = signer.token(x5t=client_cert.x5t_s256, scope="write")
    assert get(client, DECORATED, token, client_cert).status_code == 403  # insufficient_scope
    assert get(client, ANY, token, client_cert).status_code == 403
    assert refusals == []  # a scope refusal is not a refused token


def test_require_bound_tokens_refuses_unbound_jwts(client, jwt_mode, signer, client_cert, refusals):
    jwt_mode.OAUTH2_MTLS = {**jwt_mode.OAUTH2_MTLS, "REQUIRE_BOUND_TOKENS": True}
    assert_refused(get(client, DECORATED, signer.token(), client_cert), refusals, "unbound_refused")


def test_decorator_and_mixin_require_bound(client, jwt_mode, signer, client_cert, refusals):
    assert get(client, DECORATED, signer.token(), client_cert).status_code == 200
    assert_refused(get(client, MIXIN, signer.token(), client_cert), refusals, "unbound_refused")


# --- request.user, request.auth --------------------------------------------------------------------


def test_user_token_loads_the_local_user_lazily(
    client, jwt_mode, signer, client_cert, user, django_assert_num_queries
):
    token = signer.token(x5t=client_cert.x5t_s256, sub=str(user.pk))
    with django_assert_num_queries(1):  # only because the view reads request.user
        response = get(client, WHOAMI, token, client_cert)
    assert response.json() == {
        "client_id": "client-1",
        "x5t#S256": client_cert.x5t_s256,
        "username": "alice",
    }
    with django_assert_num_queries(0):
        assert get(client, ANY, token, client_cert).status_code == 200


def test_user_policy_none_and_callable(
    client, jwt_mode, signer, client_cert, user, django_assert_num_queries
):
    token = signer.token(x5t=client_cert.x5t_s256, sub=str(user.pk))
    jwt_mode.OAUTH2_MTLS = {**jwt_mode.OAUTH2_MTLS, "RESOURCE_SERVER_JWT_USER": None}
    with django_assert_num_queries(0):
        assert "username" not in get(client, WHOAMI, token, client_cert).json()
    jwt_mode.OAUTH2_MTLS = {
        **jwt_mode.OAUTH2_MTLS,
        "RESOURCE_SERVER_JWT_USER": f"{__name__}.user_from_claims",
    }
    assert get(client, WHOAMI, token, client_cert).json()["username"] == "alice"


def user_from_claims(claims: dict[str, Any]) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(pk=int(claims["sub"]))


def test_a_user_unknown_here_is_anonymous(client, jwt_mode, signer, client_cert):
    response = get(
        client, WHOAMI, signer.token(x5t=client_cert.x5t_s256, sub="999999"), client_cert
    )
    assert response.status_code == 200 and "username" not in response.json()


def test_the_jwt_access_token(jwt_mode, signer, client_cert, make_app, django_assert_num_queries):
    from oauth2_provider.oauth2_backends import get_oauthlib_core

    app = make_app(None)
    token = signer.token(
        x5t=client_cert.x5t_s256, client_id=app.client_id, sub=app.client_id, scope="read write"
    )
    request = RequestFactory().get(
        "/test/",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    with django_assert_num_queries(0):
        valid, oauthlib_request = get_oauthlib_core().verify_request(request, scopes=["read"])
        access_token = oauthlib_request.access_token
        assert valid and isinstance(access_token, JWTAccessToken)
        assert access_token.token == token and access_token.scope == "read write"
        assert access_token.is_valid(["read"]) and not access_token.is_valid(["admin"])
        assert access_token.allow_scopes(["read", "write"]) and not access_token.is_expired()
        assert access_token.claims["client_id"] == app.client_id
        assert access_token.x5t_s256 == client_cert.x5t_s256 == x5t_s256_of(access_token)
        assert access_token.expires > dt.datetime.now(dt.UTC)
        assert oauthlib_request.user is None  # a client's own token, as in DOT
        assert token not in repr(access_token)
    with django_assert_num_queries(1):
        assert access_token.application == app
        assert oauthlib_request.client.client_id == app.client_id


# --- the other modes ------------------------------------------------------------------------------


def test_jwt_or_database_takes_both(
    client, make_app, mtls_settings, settings, tmp_path, signer, client_cert
):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    opaque = token_request(client, app, client_cert).json()["access_token"]
    configure(settings, signer.write(tmp_path), RESOURCE_SERVER_TOKEN_VALIDATION="jwt_or_database")
    assert get(client, WHOAMI, opaque, client_cert).status_code == 200
    assert (
        get(client, WHOAMI, signer.token(x5t=client_cert.x5t_s256), client_cert).status_code == 200
    )


def test_database_mode_does_not_read_jwts(client, jwt_mode, signer, client_cert, refusals):
    jwt_mode.OAUTH2_MTLS = {**jwt_mode.OAUTH2_MTLS, "RESOURCE_SERVER_TOKEN_VALIDATION": "database"}
    response = get(client, WHOAMI, signer.token(x5t=client_cert.x5t_s256), client_cert)
    assert response.status_code == 401 and [r["reason"] for r in refusals] == ["token_invalid"]


def test_opaque_refusals_are_signalled_too(
    client, make_app, mtls_settings, client_cert, other_cert, refusals
):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    opaque = token_request(client, app, client_cert).json()["access_token"]
    get(client, WHOAMI, "unknown-token", client_cert)
    get(client, WHOAMI, opaque)
    get(client, WHOAMI, opaque, other_cert)
    assert [(r["reason"], r["client_id"]) for r in refusals] == [
        ("token_invalid", None),
        ("certificate_missing", app.client_id),
        ("certificate_mismatch", app.client_id),
    ]
    assert refusals[2]["x5t_s256"] == other_cert.x5t_s256
    assert {r["reason"] for r in refusals} <= ACCESS_TOKEN_REASONS


def test_missing_audience_or_issuer_fails_closed(client, jwt_mode, signer, client_cert, refusals):
    jwt_mode.OAUTH2_MTLS = {**jwt_mode.OAUTH2_MTLS, "RESOURCE_SERVER_AUDIENCE": None}
    assert_refused(
        get(client, WHOAMI, signer.token(x5t=client_cert.x5t_s256), client_cert),
        refusals,
        "jwt_audience",
    )


def test_no_keys_is_unknown_key(client, jwt_mode, signer, client_cert, refusals):
    jwt_mode.OAUTH2_MTLS = {**jwt_mode.OAUTH2_MTLS, "JWT_SIGNING_KEYS": []}
    jwt_keys.reset()
    assert_refused(
        get(client, WHOAMI, signer.token(x5t=client_cert.x5t_s256), client_cert),
        refusals,
        "jwt_unknown_key",
    )


def test_a_published_next_key_verifies(client, jwt_mode, tmp_path, client_cert):
    """Rotation at this server: a key in JWT_PUBLISHED_KEYS verifies before it signs."""
    following = Signer("rsa")
    jwt_mode.OAUTH2_MTLS = {
        **jwt_mode.OAUTH2_MTLS,
        "JWT_PUBLISHED_KEYS": [following.write(tmp_path, "next.pem")],
    }
    jwt_keys.reset()
    assert (
        get(client, WHOAMI, following.token(x5t=client_cert.x5t_s256), client_cert).status_code
        == 200
    )
    # Our keys are pinned to the alg they sign with: RS256 with the PS256 key is refused.
    assert (
        get(
            client, WHOAMI, following.token(x5t=client_cert.x5t_s256, alg="RS256"), client_cert
        ).status_code
        == 401
    )


# --- DOT's endpoints on the AS validate against the database in every mode ---------------------------


def test_bearer_introspection_of_our_own_jwt_in_jwt_mode(
    client, make_app, mtls_settings, settings, tmp_path, signer, client_cert
):
    caller = make_app(None)
    bearer = token_request(
        client, caller, None, data={"client_secret": SECRET, "scope": "introspection"}
    ).json()["access_token"]
    app = make_app(None)
    jws = signer.token(x5t=client_cert.x5t_s256, client_id=app.client_id)
    get_access_token_model().objects.create(
        token=jws,
        application=app,
        scope="read",
        expires=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5),
    )
    configure(
        settings, signer.write(tmp_path)
    )  # "jwt": an opaque bearer would be refused at a resource
    response = post_form(
        client, "/o/introspect/", {"token": jws}, HTTP_AUTHORIZATION=f"Bearer {bearer}"
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is True and response.json()["client_id"] == app.client_id
    assert get(client, WHOAMI, bearer).status_code == 401  # the same opaque token at a resource


def test_as_endpoints_are_recognised_by_path():
    class Request:
        def __init__(self, uri: str) -> None:
            self.uri = uri

    assert at_authorization_server_endpoint(Request("http://testserver/o/userinfo/"))
    assert at_authorization_server_endpoint(Request("https://as.example/o/introspect/?token=x"))
    assert not at_authorization_server_endpoint(Request("http://testserver/api/whoami/"))
    assert not at_authorization_server_endpoint(Request("http://testserver/api/o/introspect/"))


# --- the AS's own tokens at this resource -------------------------------------------------------


def test_a_token_this_server_issued_round_trip(
    client,
    make_app,
    settings,
    tmp_path,
    signer,
    client_cert,
    other_cert,
    root_ca,
    refusals,
    django_assert_num_queries,
):
    """Issued at the token endpoint (jwt format, bound by tls_client_auth), accepted at a
    jwt-mode resource with its certificate and no query, refused without or with another."""
    ca = tmp_path / "ca.pem"
    ca.write_text(root_ca.pem)
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": ISSUER}
    configure(
        settings,
        signer.write(tmp_path),
        TRUSTED_CA_CERTIFICATES=[str(ca)],
        ACCESS_TOKEN_FORMAT="jwt",
        JWT_AUDIENCE=AUDIENCE,
        RESOURCE_SERVER_JWT_ISSUER=None,  # the default: OIDC_ISS_ENDPOINT
    )
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    assert token.count(".") == 2
    with django_assert_num_queries(0):
        answer = get(client, WHOAMI, token, client_cert)
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"client_id": app.client_id, "x5t#S256": client_cert.x5t_s256}
    assert_refused(get(client, WHOAMI, token), refusals, "certificate_missing")
    assert refusals[0]["client_id"] == app.client_id
