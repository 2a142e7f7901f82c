"""JWT access tokens issued at DOT's real token endpoint (RFC 9068 §2, RFC 8705 §3.1, RFC 8707).

Every issued token is verified with PyJWT (an independent JOSE library), against the JWK set
fetched from our ``jwks-info`` URL — never with the code that signs it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from django.test import override_settings
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from django_oauth_mtls import jwt_issue, jwt_keys
from django_oauth_mtls.models import AccessTokenBinding, MTLSClient
from tests import pki
from tests.integration.conftest import (
    authorization_code,
    code_grant,
    implicit_authorize,
    introspect,
    post_form,
    secret_basic,
    token_request,
)

pytestmark = pytest.mark.django_db

ISSUER = "https://as.example.com"
AUDIENCE = "https://api.example.com"
JWKS_URL = "/o/.well-known/jwks.json"
REGISTERED = {"iss", "sub", "aud", "client_id", "iat", "exp", "jti", "scope"}
AccessToken = get_access_token_model()


def write_key(path: Path, kind: str = "ec-p256") -> Path:
    """A fresh private key (PEM, PKCS#8) generated with cryptography at test time."""
    if kind == "ec-p256":
        key: Any = ec.generate_private_key(ec.SECP256R1())
    elif kind == "ec-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif kind == "rsa":
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


@pytest.fixture
def signing_pem(tmp_path: Path) -> Path:
    return write_key(tmp_path / "access-token-key.pem")


@pytest.fixture
def jwt_settings(mtls_settings: Any, signing_pem: Path) -> Any:
    mtls_settings.OAUTH2_PROVIDER = {**mtls_settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": ISSUER}
    mtls_settings.OAUTH2_MTLS = {
        **mtls_settings.OAUTH2_MTLS,
        "ACCESS_TOKEN_FORMAT": "jwt",
        "JWT_SIGNING_KEYS": [str(signing_pem)],
        "JWT_AUDIENCE": AUDIENCE,
    }
    jwt_keys.reset()
    yield mtls_settings
    jwt_keys.reset()


def jwk_set(client: Any) -> jwt.PyJWKSet:
    response = client.get(JWKS_URL)
    assert response.status_code == 200
    return jwt.PyJWKSet.from_dict(response.json())


def verify(
    client: Any, token: str, audience: str | list[str] = AUDIENCE
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(header, claims) of ``token``, verified by PyJWT against the served JWK set."""
    header = jwt.get_unverified_header(token)
    key = jwk_set(client)[header["kid"]]
    claims = jwt.decode(
        token,
        key=key,
        algorithms=[header["alg"]],
        audience=audience,
        issuer=ISSUER,
        options={"require": sorted(REGISTERED)},
    )
    assert header["typ"] == "at+jwt"
    return header, claims


def issue(client: Any, app: Any, cert: Any = None, **kwargs: Any) -> dict[str, Any]:
    response = token_request(client, app, cert, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def checksum(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@pytest.fixture
def bound_app(make_app: Any) -> Any:
    return make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )


# --- client_credentials ------------------------------------------------------------------------


def test_client_credentials_bound_token(client, bound_app, jwt_settings, client_cert):
    body = issue(client, bound_app, client_cert)
    assert body["token_type"] == "Bearer"
    header, claims = verify(client, body["access_token"])
    assert header["alg"] == "ES256" and header["kid"] == jwt_keys.published_keys()[0].kid
    assert claims["iss"] == ISSUER
    assert claims["sub"] == bound_app.client_id and claims["client_id"] == bound_app.client_id
    assert claims["aud"] == AUDIENCE
    assert claims["scope"] == "read"
    assert claims["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    stored = AccessToken.objects.get()
    # The checksum is of the JWS the client received; exp is the stored expiry, whole seconds.
    assert stored.token_checksum == checksum(body["access_token"])
    assert stored.token == body["access_token"]
    assert claims["exp"] == int(stored.expires.timestamp()) and stored.expires.microsecond == 0
    assert abs(claims["iat"] - time.time()) < 5 and claims["exp"] - claims["iat"] in range(
        35990, 36001
    )
    assert stored.resource == [AUDIENCE]  # JWT_AUDIENCE is stored as the resource too
    assert AccessTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256


def test_each_token_has_a_unique_jti(client, bound_app, jwt_settings, client_cert):
    ids = {
        verify(client, issue(client, bound_app, client_cert)["access_token"])[1]["jti"]
        for _ in range(3)
    }
    assert len(ids) == 3


def test_unflagged_secret_client_gets_no_cnf(client, make_app, jwt_settings, client_cert):
    app = make_app(None)
    token = issue(
        client,
        app,
        client_cert,
        **secret_basic(app),
    )["access_token"]
    assert "cnf" not in verify(client, token)[1]
    assert not AccessTokenBinding.objects.exists()


def test_flagged_secret_client_presenting_a_certificate_gets_cnf(client, make_app, jwt_settings):
    app = make_app("client_secret_basic", tls_client_certificate_bound_access_tokens=True)
    self_signed = pki.issue(pki.name(CN="whatever"))
    token = issue(
        client,
        app,
        self_signed,
        **secret_basic(app),
    )["access_token"]
    assert verify(client, token)[1]["cnf"] == {"x5t#S256": self_signed.x5t_s256}


def test_bind_all_tokens(client, make_app, jwt_settings, client_cert):
    jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "BIND_ALL_TOKENS": True}
    app = make_app(None)
    auth = secret_basic(app)
    with_cert = issue(client, app, client_cert, **auth)["access_token"]
    assert verify(client, with_cert)[1]["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    without = issue(client, app, None, **auth)["access_token"]
    assert "cnf" not in verify(client, without)[1]


def test_unbound_tls_client_auth_client(client, make_app, jwt_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert "cnf" not in verify(client, issue(client, app, client_cert)["access_token"])[1]


@pytest.mark.parametrize(
    ("kind", "alg"),
    [("ec-p256", "ES256"), ("ec-p384", "ES384"), ("rsa", "PS256"), ("ed25519", "EdDSA")],
)
def test_algorithm_follows_the_key(
    client, bound_app, jwt_settings, client_cert, tmp_path, kind, alg
):
    path = write_key(tmp_path / f"{kind}.pem", kind)
    jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "JWT_SIGNING_KEYS": [str(path)]}
    header, _claims = verify(client, issue(client, bound_app, client_cert)["access_token"])
    assert header["alg"] == alg


# --- aud: RFC 8707 resource or JWT_AUDIENCE -----------------------------------------------------


def test_resource_becomes_the_audience(client, bound_app, jwt_settings, client_cert):
    body = issue(client, bound_app, client_cert, data={"resource": "https://orders.example.com/"})
    _header, claims = verify(client, body["access_token"], audience="https://orders.example.com/")
    assert claims["aud"] == "https://orders.example.com/"
    assert AccessToken.objects.get().resource == ["https://orders.example.com/"]


def test_several_resources_are_an_audience_array(client, bound_app, jwt_settings, client_cert):
    response = client.post(
        "/o/token/",
        f"grant_type=client_credentials&client_id={bound_app.client_id}&scope=read"
        "&resource=https%3A%2F%2Fa.example.com%2F&resource=https%3A%2F%2Fb.example.com%2F",
        content_type="application/x-www-form-urlencoded",
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert response.status_code == 200, response.content
    _header, claims = verify(
        client, response.json()["access_token"], audience="https://b.example.com/"
    )
    assert claims["aud"] == ["https://a.example.com/", "https://b.example.com/"]


def test_jwt_resources_refuses_an_unlisted_resource(client, bound_app, jwt_settings, client_cert):
    jwt_settings.OAUTH2_MTLS = {
        **jwt_settings.OAUTH2_MTLS,
        "JWT_RESOURCES": [AUDIENCE, "https://orders.example.com/"],
    }
    response = token_request(
        client, bound_app, client_cert, data={"resource": "https://evil.example.com/"}
    )
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store" and response["Pragma"] == "no-cache"
    assert response.json()["error"] == "invalid_target"
    assert not AccessToken.objects.exists()
    assert issue(client, bound_app, client_cert, data={"resource": "https://orders.example.com/"})


def test_jwt_resources_applies_to_opaque_tokens_too(client, bound_app, mtls_settings, client_cert):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "JWT_RESOURCES": [AUDIENCE]}
    response = token_request(
        client, bound_app, client_cert, data={"resource": "https://evil.example.com/"}
    )
    assert response.status_code == 400 and response.json()["error"] == "invalid_target"
    token = issue(client, bound_app, client_cert, data={"resource": AUDIENCE})["access_token"]
    assert token.count(".") == 0


# --- extra claims ------------------------------------------------------------------------------


def extra_claims(request: Any, claims: dict[str, Any]) -> dict[str, Any]:
    """JWT_EXTRA_CLAIMS for the tests: tries to override registered claims, adds two."""
    return {
        "tenant": "acme",
        "client_name": request.client.name,
        "sub": "someone-else",
        "aud": "x",
        "cnf": {},
        "iss": "evil",
        "scope_seen": claims["scope"],
    }


def broken_extra_claims(request: Any, claims: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("boom")


def test_extra_claims_add_but_never_override(client, bound_app, jwt_settings, client_cert, caplog):
    jwt_settings.OAUTH2_MTLS = {
        **jwt_settings.OAUTH2_MTLS,
        "JWT_EXTRA_CLAIMS": f"{__name__}.extra_claims",
    }
    _header, claims = verify(client, issue(client, bound_app, client_cert)["access_token"])
    assert (
        claims["tenant"] == "acme"
        and claims["client_name"] == bound_app.name
        and claims["scope_seen"] == "read"
    )
    assert (
        claims["sub"] == bound_app.client_id
        and claims["aud"] == AUDIENCE
        and claims["iss"] == ISSUER
    )
    assert claims["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    assert "cannot set registered claims" in caplog.text


def test_a_failing_extra_claims_hook_issues_nothing(client, bound_app, jwt_settings, client_cert):
    jwt_settings.OAUTH2_MTLS = {
        **jwt_settings.OAUTH2_MTLS,
        "JWT_EXTRA_CLAIMS": f"{__name__}.broken_extra_claims",
    }
    response = token_request(client, bound_app, client_cert)
    assert response.status_code == 503 and response.json()["error"] == "temporarily_unavailable"
    assert not AccessToken.objects.exists()


# --- run-time failures are never a 500 -------------------------------------------------------------


@pytest.mark.parametrize("missing", ["keys", "issuer", "audience", "unreadable"])
def test_nothing_to_sign_with_is_a_503_not_a_500(
    client, bound_app, jwt_settings, client_cert, missing, caplog, tmp_path
):
    if missing == "keys":
        jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "JWT_SIGNING_KEYS": []}
    elif missing == "issuer":
        jwt_settings.OAUTH2_PROVIDER = {**jwt_settings.OAUTH2_PROVIDER, "OIDC_ISS_ENDPOINT": None}
    elif missing == "audience":
        jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "JWT_AUDIENCE": None}
    else:
        jwt_settings.OAUTH2_MTLS = {
            **jwt_settings.OAUTH2_MTLS,
            "JWT_SIGNING_KEYS": [str(tmp_path / "absent.pem")],
        }
    client.raise_request_exception = False
    response = token_request(client, bound_app, client_cert)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Cache-Control"] == "no-store"
    assert not AccessToken.objects.exists() and not AccessTokenBinding.objects.exists()
    assert "access token not issued" in caplog.text


# --- per-client format ------------------------------------------------------------------------


def test_per_client_format_overrides_the_setting(
    client, make_app, mtls_settings, jwt_settings, client_cert
):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    MTLSClient.objects.filter(application=app).update(access_token_format="opaque")
    opaque = issue(client, app, client_cert)["access_token"]
    assert opaque.count(".") == 0
    jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "ACCESS_TOKEN_FORMAT": "opaque"}
    MTLSClient.objects.filter(application=app).update(access_token_format="jwt")
    token = issue(client, app, client_cert)["access_token"]
    assert verify(client, token)[1]["client_id"] == app.client_id
    MTLSClient.objects.filter(application=app).update(access_token_format="")
    assert issue(client, app, client_cert)["access_token"].count(".") == 0


def test_opaque_format_is_unchanged(client, bound_app, mtls_settings, client_cert):
    body = issue(client, bound_app, client_cert)
    assert body["access_token"].count(".") == 0
    assert AccessToken.objects.get().resource == []


# --- authorization code, refresh (rotating and in place), OIDC ---------------------------------


@pytest.fixture
def code_app(make_app: Any) -> Any:
    return make_app(
        tls_client_auth_san_dns="client-one.example.com",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )


def code_tokens(client: Any, app: Any, cert: Any, user: Any, **extra: str) -> dict[str, Any]:
    code, verifier = authorization_code(client, app, user)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": "https://client.example/cb",
        **extra,
    }
    return issue(client, app, cert, data=data)


def refresh(client: Any, app: Any, cert: Any, refresh_token: str) -> dict[str, Any]:
    return issue(
        client, app, cert, data={"grant_type": "refresh_token", "refresh_token": refresh_token}
    )


def test_authorization_code_token_names_the_user(client, code_app, jwt_settings, client_cert, user):
    tokens = code_tokens(client, code_app, client_cert, user)
    _header, claims = verify(client, tokens["access_token"])
    assert claims["sub"] == str(user.pk) and claims["client_id"] == code_app.client_id
    assert claims["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    assert "." not in tokens["refresh_token"]  # refresh tokens stay DOT's


def test_rotating_refresh_issues_a_new_jwt_bound_to_the_new_certificate(
    client, code_app, jwt_settings, client_cert, root_ca, user
):
    tokens = code_tokens(client, code_app, client_cert, user)
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    body = refresh(client, code_app, renewed, tokens["refresh_token"])
    assert body["refresh_token"] != tokens["refresh_token"]
    _header, claims = verify(client, body["access_token"])
    first = verify(client, tokens["access_token"])[1]
    assert claims["jti"] != first["jti"] and claims["sub"] == str(user.pk)
    assert claims["cnf"] == {"x5t#S256": renewed.x5t_s256}
    assert AccessToken.objects.get().token_checksum == checksum(body["access_token"])


def test_in_place_refresh_issues_a_new_jwt(
    client, code_app, jwt_settings, client_cert, root_ca, user
):
    jwt_settings.OAUTH2_PROVIDER = {**jwt_settings.OAUTH2_PROVIDER, "ROTATE_REFRESH_TOKEN": False}
    tokens = code_tokens(client, code_app, client_cert, user)
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    body = refresh(client, code_app, renewed, tokens["refresh_token"])
    assert body["refresh_token"] == tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]
    _header, claims = verify(client, body["access_token"])
    assert claims["cnf"] == {"x5t#S256": renewed.x5t_s256} and claims["sub"] == str(user.pk)
    stored = AccessToken.objects.get()  # updated in place
    assert stored.token_checksum == checksum(body["access_token"])
    assert claims["exp"] == int(stored.expires.timestamp()) and stored.resource == [AUDIENCE]
    assert AccessTokenBinding.objects.get().x5t_s256 == renewed.x5t_s256


def test_refresh_keeps_the_resource_audience(client, code_app, jwt_settings, client_cert, user):
    tokens = code_tokens(
        client, code_app, client_cert, user, resource="https://orders.example.com/"
    )
    assert (
        verify(client, tokens["access_token"], audience="https://orders.example.com/")[1]["aud"]
        == "https://orders.example.com/"
    )
    body = refresh(client, code_app, client_cert, tokens["refresh_token"])
    assert (
        verify(client, body["access_token"], audience="https://orders.example.com/")[1]["aud"]
        == "https://orders.example.com/"
    )
    # The refresh token keeps DOT's resource (the request's), never JWT_AUDIENCE.
    assert get_refresh_token_model().objects.get(revoked__isnull=True).resource == [
        "https://orders.example.com/"
    ]


def test_hashed_token_storage_stores_the_checksum_of_the_jws(
    client, bound_app, jwt_settings, client_cert
):
    jwt_settings.OAUTH2_PROVIDER = {
        **jwt_settings.OAUTH2_PROVIDER,
        "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,
    }
    token = issue(client, bound_app, client_cert)["access_token"]
    stored = AccessToken.objects.get()
    assert stored.token == "" and stored.token_checksum == checksum(token)
    verify(client, token)


@pytest.mark.parametrize(
    "shadow",
    [{}, {"token_endpoint": "1"}, {"_django_oauth_mtls_token_endpoint": "1"}],
    ids=["plain", "token_endpoint", "old-key-name"],
)
def test_implicit_front_channel_tokens_stay_opaque(
    client, make_app, jwt_settings, user, settings, shadow
):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "ALLOWED_REDIRECT_URI_SCHEMES": ["https"],
    }
    app = make_app("none", client_type="public", grant_type="implicit")
    response = implicit_authorize(client, app, user, grant_type="authorization_code", **shadow)
    assert response.status_code == 302, response.content
    fragment = response["Location"].split("#", 1)[1]
    token = dict(part.split("=", 1) for part in fragment.split("&"))["access_token"]
    assert "." not in token


# --- introspection and revocation -----------------------------------------------------------------


def test_introspection_of_a_jwt(client, bound_app, jwt_settings, client_cert):
    token = issue(client, bound_app, client_cert)["access_token"]
    body = introspect(client, bound_app, client_cert, token)
    assert body["active"] is True and body["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    assert body["client_id"] == bound_app.client_id


def test_revocation_of_a_jwt(client, bound_app, jwt_settings, client_cert):
    token = issue(client, bound_app, client_cert)["access_token"]
    response = post_form(
        client,
        "/o/revoke_token/",
        {"token": token, "client_id": bound_app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert response.status_code == 200
    assert not AccessToken.objects.exists()
    assert introspect(client, bound_app, client_cert, token) == {"active": False}


def test_the_jws_never_reaches_the_log(client, bound_app, jwt_settings, client_cert, caplog):
    # Our loggers only: oauthlib's own DEBUG log prints every token it issues, opaque or not.
    with caplog.at_level("DEBUG", logger="django_oauth_mtls"):
        token = issue(client, bound_app, client_cert)["access_token"]
    ours = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("django_oauth_mtls")
    )
    assert "access-token key loaded" in ours
    assert token.split(".")[1] not in ours and token.split(".")[2] not in ours


def test_claims_are_plain_json(client, bound_app, jwt_settings, client_cert):
    token = issue(client, bound_app, client_cert)["access_token"]
    payload = json.loads(jwt.utils.base64url_decode(token.split(".")[1]))
    assert set(payload) == REGISTERED | {"cnf"}
    assert all(isinstance(payload[name], int) for name in ("iat", "exp"))


def test_jwt_issue_module_exports_its_names():
    assert jwt_issue.TOKEN_TYPE == "at+jwt"
    assert {"iss", "sub", "aud", "cnf"} <= jwt_issue.REGISTERED_CLAIMS


def test_override_settings_resets_the_keys(signing_pem):
    with override_settings(OAUTH2_MTLS={"JWT_SIGNING_KEYS": [str(signing_pem)]}):
        assert len(jwt_keys.published_keys()) == 1
    assert jwt_keys.published_keys() == ()


def test_grace_period_retry_returns_the_same_jwt(client, code_app, jwt_settings, client_cert, user):
    jwt_settings.OAUTH2_PROVIDER = {
        **jwt_settings.OAUTH2_PROVIDER,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 120,
    }
    tokens = code_tokens(client, code_app, client_cert, user)
    first = refresh(client, code_app, client_cert, tokens["refresh_token"])
    again = refresh(client, code_app, client_cert, tokens["refresh_token"])
    assert again["access_token"] == first["access_token"]
    verify(client, again["access_token"])


def test_jwt_resources_refuses_a_resource_inherited_from_the_grant(
    client, code_app, jwt_settings, client_cert, user
):
    code, verifier = authorization_code(client, code_app, user)
    from oauth2_provider.models import get_grant_model

    get_grant_model().objects.update(resource=["https://legacy.example.com/"])
    jwt_settings.OAUTH2_MTLS = {**jwt_settings.OAUTH2_MTLS, "JWT_RESOURCES": [AUDIENCE]}
    response = token_request(
        client,
        code_app,
        client_cert,
        data=code_grant(code, verifier),
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_target"
    assert (
        response["Content-Type"] == "application/json" and response["Cache-Control"] == "no-store"
    )
    assert not AccessToken.objects.exists()
