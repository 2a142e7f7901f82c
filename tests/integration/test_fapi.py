"""The FAPI 2.0 profile, ``OAUTH2_MTLS["PROFILE"] = "fapi2"`` (docs/fapi.md): one test per
system check (F001–F022, F101–F102) from the settings block docs/fapi.md tells users to paste,
and each runtime rule through DOT's real endpoints."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.common import Request
from oauthlib.oauth2.rfc6749.errors import InvalidRequestError

from django_oauth_mtls import jwt_keys, jwt_resource_keys, signals
from django_oauth_mtls.conf import mtls_settings as conf
from django_oauth_mtls.fapi import METHOD_REFUSED, check_profile, fapi2_active
from django_oauth_mtls.models import AccessTokenBinding
from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator, MTLSValidatorMixin
from tests.integration.conftest import (
    SECRET,
    authorization_code,
    basic,
    implicit_authorize,
    post_form,
    token_request,
)
from tests.jwt_forge import AUDIENCE, ISSUER, Signer

pytestmark = pytest.mark.django_db

FAPI_DOC = Path(__file__).resolve().parents[2] / "docs" / "fapi.md"
PAR = "oauth_mtls.F101"
MTLS_ANY = "/test/mtls-any/"  # our DRF authentication, any token unless a rule says otherwise
DOT_PLAIN = "/test/dot-plain/"  # DOT's own OAuth2Authentication
DECORATED = "/test/decorated/"  # mtls_protected_resource without require_bound


def documented_settings() -> dict[str, dict[str, Any]]:
    """``OAUTH2_PROVIDER`` and ``OAUTH2_MTLS`` from docs/fapi.md's "The settings to paste"."""
    section = FAPI_DOC.read_text().split("## The settings to paste", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "docs/fapi.md lost its settings block"
    namespace: dict[str, Any] = {}
    exec(match.group(1), namespace)  # our own documentation, nothing else
    return {name: namespace[name] for name in ("OAUTH2_PROVIDER", "OAUTH2_MTLS")}


def ids(provider: dict[str, Any] | None = None, mtls: dict[str, Any] | None = None) -> list[str]:
    """Check ids for the documented settings with these keys changed."""
    documented = documented_settings()
    with override_settings(
        OAUTH2_PROVIDER={**documented["OAUTH2_PROVIDER"], **(provider or {})},
        OAUTH2_MTLS={**documented["OAUTH2_MTLS"], **(mtls or {})},
    ):
        return [message.id for message in check_profile()]


# --- system checks ------------------------------------------------------------------------------


def test_the_documented_settings_leave_only_the_par_warning():
    assert ids() == [PAR]


def test_no_profile_no_messages(settings):
    assert ids(mtls={"PROFILE": None}) == []
    settings.OAUTH2_PROVIDER = {}  # DOT's defaults deviate everywhere: no profile, no message
    assert check_profile() == []
    assert not fapi2_active() and not conf.REQUIRE_BOUND_TOKENS


def test_unknown_profile_F001_and_the_strictest_rules_meanwhile(settings):
    assert ids(mtls={"PROFILE": "fapi-2"}) == ["oauth_mtls.F001"]
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, "PROFILE": "fapi-2"}
    assert fapi2_active() and conf.PROFILE == "fapi2" and conf.REQUIRE_BOUND_TOKENS


FAPI2 = {"PROFILE": "fapi2"}
DOT_VALIDATOR = "oauth2_provider.oauth2_validators.OAuth2Validator"

#: (expected id, OAUTH2_PROVIDER changes, OAUTH2_MTLS changes): one deviation at a time.
DEVIATIONS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    ("oauth_mtls.F002", {"OAUTH2_VALIDATOR_CLASS": DOT_VALIDATOR}, {}),
    ("oauth_mtls.F003", {}, {"CERTIFICATE_SOURCE": None}),
    ("oauth_mtls.F004", {}, {"REQUIRE_BOUND_TOKENS": False}),
    ("oauth_mtls.F005", {}, {"BOUND_TOKEN_WITHOUT_CERTIFICATE": "unbound"}),
    ("oauth_mtls.F006", {"COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": False}, {}),
    ("oauth_mtls.F007", {"COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": False}, {}),
    ("oauth_mtls.F008", {"OAUTH2_RESPONSE_TYPES_SUPPORTED": ["code", "code token"]}, {}),
    ("oauth_mtls.F009", {"PKCE_REQUIRED": False}, {}),
    ("oauth_mtls.F009", {"PKCE_REQUIRED": lambda client_id, request: True}, {}),
    ("oauth_mtls.F010", {"COMPLIANT_BCP_RFC9700_PKCE_METHOD": False}, {}),
    ("oauth_mtls.F011", {"COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": False}, {}),
    ("oauth_mtls.F012", {"OIDC_ISS_ENDPOINT": ""}, {}),
    ("oauth_mtls.F012", {"OIDC_ISS_ENDPOINT": "http://as.example.com/o"}, {}),
    ("oauth_mtls.F013", {"ALLOWED_REDIRECT_URI_SCHEMES": ["https", "http"]}, {}),
    ("oauth_mtls.F014", {"ALLOW_URI_WILDCARDS": True}, {}),
    ("oauth_mtls.F015", {"AUTHORIZATION_CODE_EXPIRE_SECONDS": 120}, {}),
    ("oauth_mtls.F016", {"ACCESS_TOKEN_EXPIRE_SECONDS": 36000}, {}),  # DOT's default
    ("oauth_mtls.F016", {"ACCESS_TOKEN_EXPIRE_SECONDS": 601}, {}),
    ("oauth_mtls.F016", {"EXTRA_SERVER_KWARGS": {"token_expires_in": 3600}}, {}),
    ("oauth_mtls.F017", {"ROTATE_REFRESH_TOKEN": True}, {}),  # DOT's default, grace period 0
    ("oauth_mtls.F018", {"COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": False}, {}),
    ("oauth_mtls.F019", {"OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["none"]}, {}),
    ("oauth_mtls.F020", {}, {"MIN_RSA_KEY_BITS": 1024}),
    ("oauth_mtls.F022", {}, {"RESOURCE_SERVER_TOKEN_VALIDATION": "jwt"}),  # default algorithms
]


@pytest.mark.parametrize(
    ("expected", "provider", "mtls"), DEVIATIONS, ids=[d[0] for d in DEVIATIONS]
)
def test_each_deviation_is_an_error(expected, provider, mtls):
    assert ids(provider, mtls) == [expected, PAR]


def test_oidc_adds_its_advertised_lists_and_the_id_token_warning_F102():
    assert ids({"OIDC_ENABLED": True}) == [PAR, "oauth_mtls.F102"]
    oidc = {"OIDC_ENABLED": True, "OIDC_RESPONSE_TYPES_SUPPORTED": ["code", "code id_token"]}
    assert ids(oidc) == ["oauth_mtls.F008", PAR, "oauth_mtls.F102"]
    oidc = {"OIDC_ENABLED": True, "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED": ["private_key_jwt"]}
    assert ids(oidc) == ["oauth_mtls.F019", PAR, "oauth_mtls.F102"]


class ProjectValidator(MTLSValidatorMixin, OAuth2Validator):
    """A project's own validator with the mixin in front (docs/getting-started.md)."""


def test_what_passes():
    assert ids({"OAUTH2_VALIDATOR_CLASS": f"{__name__}.ProjectValidator"}) == [PAR]
    assert ids({"ROTATE_REFRESH_TOKEN": True, "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 30}) == [PAR]
    assert ids({"ACCESS_TOKEN_EXPIRE_SECONDS": 600, "AUTHORIZATION_CODE_EXPIRE_SECONDS": 30}) == [
        PAR
    ]
    assert ids({"EXTRA_SERVER_KWARGS": {"token_expires_in": lambda request: 60}}) == [PAR]
    assert ids(mtls={"REQUIRE_BOUND_TOKENS": True, "BOUND_TOKEN_WITHOUT_CERTIFICATE": "error"}) == [PAR]  # fmt: skip
    jwt_resource = {"RESOURCE_SERVER_TOKEN_VALIDATION": "jwt_or_database",
                    "RESOURCE_SERVER_JWT_ALGORITHMS": ["PS256", "ES256", "EdDSA"]}  # fmt: skip
    assert ids(mtls=jwt_resource) == [PAR]


def _key_file(tmp_path: Path, curve: ec.EllipticCurve) -> str:
    path = tmp_path / f"{curve.name}.pem"
    key = ec.generate_private_key(curve)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(path)


def test_signing_key_algorithm_F021(tmp_path):
    p384, p256 = _key_file(tmp_path, ec.SECP384R1()), _key_file(tmp_path, ec.SECP256R1())
    assert ids(mtls={"JWT_SIGNING_KEYS": [p384, p256]}) == ["oauth_mtls.F021", PAR]  # ES384
    assert ids(mtls={"JWT_SIGNING_KEYS": [p256, p384]}) == [PAR]  # only the first key signs
    assert ids(mtls={"JWT_SIGNING_KEYS": [str(tmp_path / "missing.pem")]}) == [PAR]  # E011's


def test_manage_py_check_stops_on_profile_errors(settings):
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, "PROFILE": "fapi2"}  # with DOT's defaults
    with pytest.raises(SystemCheckError) as caught:
        call_command("check")
    for number in ("F006", "F007", "F012", "F016", "F017", "F101"):
        assert f"oauth_mtls.{number}" in str(caught.value)


# --- runtime: client authentication (FAPI 2.0 §5.3.2.1) -------------------------------------------


@pytest.fixture
def fapi2(mtls_settings):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, **FAPI2}
    return mtls_settings


@pytest.fixture
def mtls_app(make_app):
    return make_app(tls_client_auth_san_dns="client-one.example.com")  # not flagged for binding


def assert_method_refused(response, caplog):
    assert response.status_code == 401, response.content
    assert response.json() == {"error": "invalid_client", "error_description": METHOD_REFUSED}
    assert any("reason=method_conflict" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("method", [None, "client_secret_basic"])
def test_secret_client_refused_at_the_token_endpoint(
    client, make_app, fapi2, client_cert, caplog, method
):
    app = make_app(method)
    body = {"grant_type": "client_credentials"}
    failures: list[str] = []
    signals.client_authentication_failed.connect(
        lambda sender, **kw: failures.append(kw["reason"]), weak=False, dispatch_uid="test_fapi"
    )
    try:
        with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
            refused = post_form(
                client, "/o/token/", body, HTTP_AUTHORIZATION=basic(app.client_id, SECRET)
            )
            # A certificate alongside is a binding key elsewhere; it authenticates nothing.
            with_cert = post_form(client, "/o/token/", body, REMOTE_ADDR="127.0.0.1", HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(), HTTP_AUTHORIZATION=basic(app.client_id, SECRET))  # fmt: skip
    finally:
        signals.client_authentication_failed.disconnect(dispatch_uid="test_fapi")
    assert_method_refused(refused, caplog)
    assert_method_refused(with_cert, caplog)
    assert failures == ["method_conflict", "method_conflict"]
    assert not get_access_token_model().objects.exists()


def test_the_same_secret_client_without_the_profile(client, make_app, mtls_settings):
    app = make_app(None)
    ok = post_form(client, "/o/token/", {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(app.client_id, SECRET))  # fmt: skip
    assert ok.status_code == 200, ok.content


def test_public_client_refused(client, make_app, fapi2, user, caplog):
    app = make_app(None, client_type="public", grant_type="authorization-code")
    code, verifier = authorization_code(client, app, user)
    body = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "https://client.example/cb", "client_id": app.client_id}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = post_form(client, "/o/token/", body)
    assert_method_refused(response, caplog)
    assert not get_access_token_model().objects.exists()


def test_introspection_and_revocation(client, make_app, mtls_app, fapi2, client_cert, caplog):
    token = token_request(client, mtls_app, client_cert).json()["access_token"]
    by_cert = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}
    body = {"token": token, "client_id": mtls_app.client_id}
    introspected = post_form(client, "/o/introspect/", body, **by_cert)
    assert introspected.status_code == 200 and introspected.json()["active"] is True
    assert introspected.json()["cnf"] == {"x5t#S256": client_cert.x5t_s256}

    secret_app = make_app(None)
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert_method_refused(post_form(client, "/o/introspect/", {"token": token}, HTTP_AUTHORIZATION=basic(secret_app.client_id, SECRET)), caplog)  # fmt: skip
        assert_method_refused(post_form(client, "/o/revoke_token/", {"token": token}, HTTP_AUTHORIZATION=basic(secret_app.client_id, SECRET)), caplog)  # fmt: skip
        public_app = make_app(None, client_type="public", grant_type="authorization-code")
        assert_method_refused(post_form(client, "/o/revoke_token/", {"token": token, "client_id": public_app.client_id}), caplog)  # fmt: skip
    assert get_access_token_model().objects.count() == 1  # nothing was revoked
    revoked = post_form(client, "/o/revoke_token/", body, **by_cert)
    assert revoked.status_code == 200
    assert not get_access_token_model().objects.exists()


# --- runtime: every access token bound (FAPI 2.0 §5.3.2.1) ------------------------------------------


def test_every_access_token_is_bound_whatever_the_flag(client, mtls_app, fapi2, client_cert):
    token = token_request(client, mtls_app, client_cert).json()["access_token"]
    assert AccessTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1"}
    assert (
        client.get(MTLS_ANY, HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(), **extra).status_code == 200
    )
    assert client.get(MTLS_ANY, **extra).status_code == 401


def test_refreshed_access_tokens_are_bound_too(client, make_app, fapi2, client_cert, user):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com", grant_type="authorization-code"
    )
    code, verifier = authorization_code(client, app, user)
    data = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": "https://client.example/cb"}  # fmt: skip
    first = token_request(client, app, client_cert, data=data)
    assert first.status_code == 200, first.content
    refresh = {"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]}
    second = token_request(client, app, client_cert, data=refresh)
    assert second.status_code == 200, second.content
    checksum = hashlib.sha256(second.json()["access_token"].encode()).hexdigest()
    token = (
        get_access_token_model().objects.select_related("mtls_binding").get(token_checksum=checksum)
    )
    assert token.mtls_binding.x5t_s256 == client_cert.x5t_s256


def _token_request_without_certificate(app: Any) -> Any:
    request = Request("https://testserver/o/token/", http_method="POST", headers={"REMOTE_ADDR": "127.0.0.1"})  # fmt: skip
    request.client = app
    return request


@pytest.mark.parametrize("policy", ["error", "unbound"])
def test_no_certificate_no_token(make_app, fapi2, policy):
    """The rule behind the first one: were a client authenticated without a certificate (a
    validator class in front of the mixin, say), it still gets no unbound token."""
    fapi2.OAUTH2_MTLS = {**fapi2.OAUTH2_MTLS, "BOUND_TOKEN_WITHOUT_CERTIFICATE": policy}
    validator = MTLSOAuth2Validator()
    for grant_bound in (False, True):  # a token request, a refresh
        with pytest.raises(InvalidRequestError) as caught:
            validator._decide_binding(_token_request_without_certificate(make_app(None)), grant_bound=grant_bound)  # fmt: skip
        assert (
            caught.value.description == "client certificate required for certificate-bound tokens"
        )


def test_without_the_profile_an_unflagged_client_is_not_bound(make_app, mtls_settings):
    request = _token_request_without_certificate(make_app(None))
    MTLSOAuth2Validator()._decide_binding(request)  # no error: nothing asked for binding


# --- runtime: response_type code only (FAPI 2.0 §5.3.2.2) -------------------------------------------


def test_only_response_type_code(client, make_app, fapi2, user):
    app = make_app(None, grant_type="implicit")
    response = implicit_authorize(client, app, user)
    assert response.status_code == 302, response.content
    location = urlsplit(response["Location"])
    params = parse_qs(location.query) | parse_qs(location.fragment)
    assert params["error"] == ["unauthorized_client"] and "access_token" not in params
    assert not get_access_token_model().objects.exists()


# --- runtime: resources refuse unbound tokens (FAPI 2.0 §5.3.4) -----------------------------------


@pytest.fixture
def refusals():
    seen: list[str] = []
    signals.access_token_refused.connect(
        lambda sender, **kw: seen.append(kw["reason"]), weak=False, dispatch_uid="test_fapi"
    )
    yield seen
    signals.access_token_refused.disconnect(dispatch_uid="test_fapi")


def test_resources_refuse_unbound_tokens(client, mtls_app, mtls_settings, client_cert, refusals):
    # Issued before the profile is switched on, unbound.
    token = token_request(client, mtls_app, client_cert).json()["access_token"]
    assert not AccessTokenBinding.objects.exists()
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}  # fmt: skip
    assert client.get(DECORATED, **extra).status_code == 200
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, **FAPI2}
    for url in (DECORATED, MTLS_ANY):
        response = client.get(url, **extra)
        assert response.status_code == 401
        assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert client.get(DOT_PLAIN, **extra).status_code in (401, 403)  # DOT's own class: its 403
    assert refusals == ["unbound_refused"] * 3


def test_jwt_resources_refuse_unbound_tokens(client, settings, tmp_path, client_cert, refusals):
    signer = Signer("ec")
    settings.OAUTH2_MTLS = {
        "PROFILE": "fapi2",
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "RESOURCE_SERVER_TOKEN_VALIDATION": "jwt",
        "RESOURCE_SERVER_AUDIENCE": AUDIENCE,
        "RESOURCE_SERVER_JWT_ISSUER": ISSUER,
        "RESOURCE_SERVER_JWT_ALGORITHMS": ["PS256", "ES256", "EdDSA"],
        "JWT_SIGNING_KEYS": [signer.write(tmp_path)],
    }
    jwt_keys.reset()
    jwt_resource_keys.reset()
    try:
        extra = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}
        unbound = client.get(DECORATED, HTTP_AUTHORIZATION=f"Bearer {signer.token()}", **extra)
        assert unbound.status_code == 401 and refusals == ["unbound_refused"]
        bound = signer.token(x5t=client_cert.x5t_s256)
        assert (
            client.get(DECORATED, HTTP_AUTHORIZATION=f"Bearer {bound}", **extra).status_code == 200
        )
    finally:
        jwt_keys.reset()
        jwt_resource_keys.reset()
