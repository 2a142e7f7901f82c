"""Certificate-bound access tokens (RFC 8705 §3, §4, §6.3; rows R8705-3*, R8705-4*,
R8705-6.3-1, R8705-7.1-1; pitfalls P11, P12, P14–P18)."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oauth2_provider.models import get_access_token_model, get_refresh_token_model

from django_oauth_mtls.models import AccessTokenBinding, RefreshTokenBinding
from tests import pki
from tests.integration.conftest import (
    SECRET,
    authorization_code,
    basic,
    code_grant,
    implicit_authorize,
    introspect,
    post_form,
    secret_basic,
    token_request,
)

pytestmark = pytest.mark.django_db

WHOAMI = "/api/whoami/"


@pytest.fixture
def other_cert(root_ca):
    return pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-two"),
        issuer=root_ca,
        dns=("client-two.example.com",),
    )


@pytest.fixture
def bound_app(make_app):
    return make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )


def get(client, url, token, cert=None, remote="127.0.0.1"):
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}", "REMOTE_ADDR": remote}
    if cert is not None:
        extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
    return client.get(url, **extra)


def issue(client, app, cert, **kwargs):
    response = token_request(client, app, cert, **kwargs)
    assert response.status_code == 200, response.content
    return response.json()


def assert_invalid_token(response, fragment=""):
    assert response.status_code == 401, response.content
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer") and 'error="invalid_token"' in challenge
    assert fragment in challenge
    assert "no-store" in response["Cache-Control"]


# --- the protected resource (RFC 8705 §3) ------------------------------------------------------


def test_bound_token_with_its_certificate(client, bound_app, mtls_settings, client_cert):
    body = issue(client, bound_app, client_cert)
    assert body["token_type"] == "Bearer"  # P15: token_type stays Bearer
    response = get(client, WHOAMI, body["access_token"], client_cert)
    assert response.status_code == 200
    assert response.json() == {"client_id": bound_app.client_id, "x5t#S256": client_cert.x5t_s256}
    assert "no-store" in response["Cache-Control"]


def test_bound_token_without_certificate_R8705_3_1(
    client, bound_app, mtls_settings, client_cert, caplog
):
    token = issue(client, bound_app, client_cert)["access_token"]
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert_invalid_token(get(client, WHOAMI, token), "no client certificate")
    assert any("bound token refused" in r.getMessage() for r in caplog.records)
    assert token not in "\n".join(r.getMessage() for r in caplog.records)


def test_bound_token_with_another_certificate(
    client, bound_app, mtls_settings, client_cert, other_cert
):
    token = issue(client, bound_app, client_cert)["access_token"]
    assert_invalid_token(get(client, WHOAMI, token, other_cert), "another client certificate")


def test_bound_token_from_an_untrusted_peer(client, bound_app, mtls_settings, client_cert):
    token = issue(client, bound_app, client_cert)["access_token"]
    assert_invalid_token(get(client, WHOAMI, token, client_cert, remote="127.0.0.2"))


def test_unbound_token_on_token_is_certificate_bound(client, make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")  # not flagged
    token = issue(client, app, client_cert)["access_token"]
    assert not AccessTokenBinding.objects.exists()
    assert_invalid_token(
        get(client, WHOAMI, token, client_cert), "certificate-bound access token is required"
    )
    # The same unbound token is fine where binding is not required (P14).
    assert get(client, "/test/mtls-any/", token, client_cert).status_code == 200


def test_dot_views_refuse_a_bound_token_without_certificate(
    client, bound_app, mtls_settings, client_cert
):
    """Enforced in the validator: DOT's own DRF class refuses too (its usual 403)."""
    token = issue(client, bound_app, client_cert)["access_token"]
    assert get(client, "/test/dot-plain/", token, client_cert).status_code == 200
    assert get(client, "/test/dot-plain/", token).status_code in (401, 403)


def test_decorator_and_mixin(client, make_app, bound_app, mtls_settings, client_cert, other_cert):
    bound = issue(client, bound_app, client_cert)["access_token"]
    unbound = issue(
        client, make_app(tls_client_auth_san_dns="client-one.example.com"), client_cert
    )["access_token"]
    assert get(client, "/test/decorated/", bound, client_cert).status_code == 200
    assert_invalid_token(get(client, "/test/decorated/", bound, other_cert))
    assert get(client, "/test/decorated/", unbound).status_code == 200
    assert_invalid_token(get(client, "/test/decorated-bound/", unbound, client_cert), "required")
    assert get(client, "/test/mixin/", bound, client_cert).status_code == 200
    assert_invalid_token(get(client, "/test/mixin/", bound))
    assert_invalid_token(get(client, "/test/mixin/", unbound, client_cert))
    missing = client.get("/test/mixin/")
    assert missing.status_code == 401 and missing["WWW-Authenticate"].startswith("Bearer")


def test_require_bound_tokens_refuses_every_unbound_token(
    client, make_app, mtls_settings, client_cert
):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = issue(client, app, client_cert)["access_token"]
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "REQUIRE_BOUND_TOKENS": True}
    assert_invalid_token(get(client, "/test/decorated/", token, client_cert), "required")
    assert_invalid_token(get(client, "/test/mtls-any/", token, client_cert))


def test_query_count_equals_dot_plain_bearer(
    client, make_app, bound_app, mtls_settings, client_cert
):
    plain_app = make_app(None)
    plain = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials", "scope": "read"},
        HTTP_AUTHORIZATION=basic(plain_app.client_id, SECRET),
    ).json()["access_token"]
    bound = issue(client, bound_app, client_cert)["access_token"]
    with CaptureQueriesContext(connection) as dot:
        assert get(client, "/test/dot-plain/", plain).status_code == 200
    with CaptureQueriesContext(connection) as ours:
        assert get(client, "/test/mtls-any/", bound, client_cert).status_code == 200
    assert len(ours) == len(dot), [q["sql"] for q in ours]


# --- issuance (RFC 8705 §3, §4) ---------------------------------------------------------------


def test_flagged_client_without_certificate_R8705_3_4_2(client, make_app, mtls_settings):
    app = make_app("client_secret_basic", tls_client_certificate_bound_access_tokens=True)
    response = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "client certificate required for certificate-bound tokens",
    }
    assert not get_access_token_model().objects.exists()
    mtls_settings.OAUTH2_MTLS = {
        **mtls_settings.OAUTH2_MTLS,
        "BOUND_TOKEN_WITHOUT_CERTIFICATE": "unbound",
    }
    response = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 200
    assert not AccessTokenBinding.objects.exists()


def test_secret_client_gets_a_bound_token(client, make_app, mtls_settings, client_cert):
    app = make_app("client_secret_basic", tls_client_certificate_bound_access_tokens=True)
    self_signed = pki.issue(pki.name(CN="whatever"))  # binding needs possession, not a chain
    token = issue(
        client,
        app,
        self_signed,
        **secret_basic(app),
    )["access_token"]
    assert AccessTokenBinding.objects.get().x5t_s256 == self_signed.x5t_s256
    assert get(client, "/test/decorated/", token, self_signed).status_code == 200
    assert_invalid_token(get(client, "/test/decorated/", token, client_cert))


def test_self_signed_client_gets_a_bound_token(client, make_app, mtls_settings):
    from jwcrypto import jwk

    cert = pki.issue(pki.name(CN="self-signed-client"))
    key = jwk.JWK.from_pyca(cert.cert.public_key())
    member = {**key.export_public(as_dict=True), "x5c": [cert.b64()]}
    app = make_app(
        "self_signed_tls_client_auth",
        jwks={"keys": [member]},
        tls_client_certificate_bound_access_tokens=True,
    )
    token = issue(client, app, cert)["access_token"]
    response = get(client, WHOAMI, token, cert)
    assert response.status_code == 200 and response.json()["x5t#S256"] == cert.x5t_s256


def test_bind_all_tokens_is_opportunistic(client, make_app, mtls_settings, client_cert):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "BIND_ALL_TOKENS": True}
    app = make_app(None)
    issue(
        client,
        app,
        client_cert,
        **secret_basic(app),
    )
    assert AccessTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256
    # Without a certificate: unbound, never an error.
    ok = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert ok.status_code == 200 and AccessTokenBinding.objects.count() == 1


def test_flagged_clients_get_no_front_channel_tokens(client, make_app, mtls_settings, user):
    app = make_app(
        "none",
        client_type="public",
        grant_type="implicit",
        tls_client_certificate_bound_access_tokens=True,
    )
    response = implicit_authorize(client, app, user)
    assert response.status_code in (302, 400)
    assert "access_token=" not in response.get("Location", "")
    assert not get_access_token_model().objects.exists()


def test_revocation_deletes_the_binding(client, bound_app, mtls_settings, client_cert):
    token = issue(client, bound_app, client_cert)["access_token"]
    assert AccessTokenBinding.objects.count() == 1
    post_form(
        client,
        "/o/revoke_token/",
        {"token": token, "client_id": bound_app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert AccessTokenBinding.objects.count() == 0


# --- introspection (RFC 8705 §3.2) -------------------------------------------------------------


def test_introspection_cnf(client, make_app, bound_app, mtls_settings, client_cert):
    bound = issue(client, bound_app, client_cert)["access_token"]
    body = introspect(client, bound_app, client_cert, bound)
    assert body["active"] is True and body["cnf"] == {"x5t#S256": client_cert.x5t_s256}
    plain_app = make_app(tls_client_auth_san_dns="client-one.example.com")
    unbound = issue(client, plain_app, client_cert)["access_token"]
    assert "cnf" not in introspect(client, plain_app, client_cert, unbound)
    get_access_token_model().objects.filter(token_checksum__isnull=False).update(
        expires="2000-01-01T00:00:00Z"
    )
    assert introspect(client, bound_app, client_cert, bound) == {"active": False}


# --- refresh tokens (RFC 8705 §4, §6.3; P12, P16) ------------------------------------------------


def code_tokens(client, app, cert, user):
    code, verifier = authorization_code(client, app, user)
    data = code_grant(code, verifier)
    if app.client_type == "public":
        return issue(client, app, cert, data=data)
    return issue(client, app, cert, data=data)


def refresh(client, app, cert, refresh_token, **kwargs):
    return token_request(
        client,
        app,
        cert,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        **kwargs,
    )


def secret_bound_grant(client, make_app, cert, user):
    """A ``client_secret_basic`` code-grant client flagged for bound tokens: ``(app, its Basic
    keywords, the tokens of its code grant made with cert)``."""
    app = make_app(
        "client_secret_basic",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )
    code, verifier = authorization_code(client, app, user)
    auth = secret_basic(app)
    return app, auth, issue(client, app, cert, data=code_grant(code, verifier), **auth)


@pytest.fixture
def public_app(make_app):
    return make_app(
        "none",
        client_type="public",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )


@pytest.fixture
def confidential_app(make_app):
    return make_app(
        tls_client_auth_san_dns="client-one.example.com",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )


def test_public_client_refresh_token_is_bound_R8705_4(
    client, public_app, mtls_settings, client_cert, other_cert, user
):
    tokens = code_tokens(client, public_app, client_cert, user)
    assert RefreshTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256
    stolen = refresh(client, public_app, other_cert, tokens["refresh_token"])
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert (
        refresh(client, public_app, None, tokens["refresh_token"]).json()["error"]
        == "invalid_grant"
    )
    ok = refresh(client, public_app, client_cert, tokens["refresh_token"])
    assert ok.status_code == 200, ok.content
    assert (
        AccessTokenBinding.objects.get(
            access_token__token_checksum=_checksum(ok.json()["access_token"])
        ).x5t_s256
        == client_cert.x5t_s256
    )


def _checksum(token):
    import hashlib

    return hashlib.sha256(token.encode()).hexdigest()


def test_confidential_client_rotates_to_a_new_certificate_R8705_6_3(
    client, confidential_app, mtls_settings, client_cert, root_ca, user
):
    tokens = code_tokens(client, confidential_app, client_cert, user)
    assert RefreshTokenBinding.objects.get().x5t_s256 == ""  # bound to the client, not the key
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    response = refresh(client, confidential_app, renewed, tokens["refresh_token"])
    assert response.status_code == 200, response.content
    new_token = response.json()["access_token"]
    assert get(client, WHOAMI, new_token, renewed).json()["x5t#S256"] == renewed.x5t_s256
    assert_invalid_token(get(client, WHOAMI, new_token, client_cert))


def test_certificate_less_refresh_of_a_bound_grant_is_refused(
    client, make_app, mtls_settings, client_cert, user
):
    """FAPI 2: the grant remembers it was bound, though DOT deletes the old access token."""
    app, auth, tokens = secret_bound_grant(client, make_app, client_cert, user)
    first = refresh(client, app, client_cert, tokens["refresh_token"], **auth)
    assert first.status_code == 200
    # Rotation deleted the first access token; the new refresh token remembers the grant.
    new_rt = get_refresh_token_model().objects.get(
        token_checksum=_checksum(first.json()["refresh_token"])
    )
    assert new_rt.mtls_binding.grant_bound is True and new_rt.mtls_binding.x5t_s256 == ""
    response = refresh(client, app, None, first.json()["refresh_token"], **auth)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    assert "certificate-bound" in response.json()["error_description"]


def test_refresh_without_certificate_allowed_when_policy_unbound(
    client, make_app, mtls_settings, client_cert, user
):
    app, auth, tokens = secret_bound_grant(client, make_app, client_cert, user)
    mtls_settings.OAUTH2_MTLS = {
        **mtls_settings.OAUTH2_MTLS,
        "BOUND_TOKEN_WITHOUT_CERTIFICATE": "unbound",
    }
    response = refresh(client, app, None, tokens["refresh_token"], **auth)
    assert response.status_code == 200
    assert not AccessTokenBinding.objects.filter(
        access_token__token_checksum=_checksum(response.json()["access_token"])
    ).exists()


def test_in_place_refresh_rebinds_the_access_token(
    client, confidential_app, mtls_settings, client_cert, root_ca, user, settings
):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ROTATE_REFRESH_TOKEN": False}
    tokens = code_tokens(client, confidential_app, client_cert, user)
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    response = refresh(client, confidential_app, renewed, tokens["refresh_token"])
    assert response.status_code == 200, response.content
    assert response.json()["refresh_token"] == tokens["refresh_token"]  # not rotated
    assert get_access_token_model().objects.count() == 1  # updated in place
    assert AccessTokenBinding.objects.get().x5t_s256 == renewed.x5t_s256


def test_all_policy_binds_confidential_refresh_tokens(
    client, confidential_app, mtls_settings, client_cert, root_ca, user
):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "REFRESH_TOKEN_BINDING": "all"}
    tokens = code_tokens(client, confidential_app, client_cert, user)
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    assert (
        refresh(client, confidential_app, renewed, tokens["refresh_token"]).json()["error"]
        == "invalid_grant"
    )
    assert (
        refresh(client, confidential_app, client_cert, tokens["refresh_token"]).status_code == 200
    )


def test_grace_period_needs_the_same_certificate(
    client, public_app, mtls_settings, client_cert, other_cert, user, settings
):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 120,
    }
    tokens = code_tokens(client, public_app, client_cert, user)
    first = refresh(client, public_app, client_cert, tokens["refresh_token"])
    assert first.status_code == 200
    again = refresh(
        client, public_app, client_cert, tokens["refresh_token"]
    )  # a retry within grace
    assert again.status_code == 200 and again.json()["access_token"] == first.json()["access_token"]
    other = refresh(client, public_app, other_cert, tokens["refresh_token"])
    assert other.status_code == 400 and other.json()["error"] == "invalid_grant"


def test_confidential_grace_period_with_another_certificate(
    client, confidential_app, mtls_settings, client_cert, root_ca, user, settings
):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 120,
    }
    tokens = code_tokens(client, confidential_app, client_cert, user)
    assert (
        refresh(client, confidential_app, client_cert, tokens["refresh_token"]).status_code == 200
    )
    renewed = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        dns=("client-one.example.com",),
    )
    response = refresh(client, confidential_app, renewed, tokens["refresh_token"])
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


def test_refresh_binding_deleted_with_the_token(
    client, public_app, mtls_settings, client_cert, user
):
    code_tokens(client, public_app, client_cert, user)
    get_refresh_token_model().objects.all().delete()
    assert not RefreshTokenBinding.objects.exists()
