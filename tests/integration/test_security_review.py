"""Issue #14 (security review), items 1 and 2, through DOT's real endpoints.

1. A client registered with an mTLS method is never authenticated without its matching
   certificate, whatever path authenticated the request (our code, DOT's secret check after a
   Basic header decoded with a body-chosen ``encoding``, ``authenticate_client_id``, a base
   validator's own method). One decoding of Basic credentials (RFC 6749 §2.3.1: UTF-8).
2. Request parameters never reach this package's per-request state, nor the attributes DOT
   and oauthlib read with a fallback; none of them gives a 500.
"""

from __future__ import annotations

import base64
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from oauth2_provider.models import get_access_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator

from django_oauth_mtls.models import AccessTokenBinding, RefreshTokenBinding
from django_oauth_mtls.oauth2_validators import MTLSValidatorMixin
from tests import pki
from tests.integration.conftest import SECRET, basic, implicit_authorize, post_form, token_request

pytestmark = pytest.mark.django_db

ENDPOINTS = ("/o/token/", "/o/introspect/", "/o/revoke_token/")


def utf7_first(client_id: str) -> str:
    """The client id with its first character written in UTF-7 (``A`` → ``+AEE-``)."""
    head = base64.b64encode(client_id[0].encode("utf-16-be")).decode().rstrip("=")
    return f"+{head}-{client_id[1:]}"


def basic_raw(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def body_for(url: str, **extra: str) -> dict[str, str]:
    if url == "/o/token/":
        return {"grant_type": "client_credentials", "scope": "read", **extra}
    return {"token": "some-token", **extra}


@pytest.fixture
def mtls_app(make_app: Any) -> Any:
    """A flagged tls_client_auth client that still holds a known secret (moved from secrets)."""
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    # The secret a client had before its move to mTLS (written past any model hook).
    type(app).objects.filter(pk=app.pk).update(client_secret=SECRET, hash_client_secret=False)
    app.refresh_from_db()
    return app


@pytest.fixture
def attacker_cert() -> pki.Issued:
    return pki.issue(pki.name(CN="attacker"))


# --- item 1: the downgrade ---------------------------------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("with_cert", [False, True], ids=["no-cert", "attacker-cert"])
def test_utf7_basic_downgrade_is_refused(
    client, mtls_app, mtls_settings, attacker_cert, url, with_cert, caplog
):
    extra: dict[str, str] = {
        "HTTP_AUTHORIZATION": basic_raw(utf7_first(mtls_app.client_id), SECRET),
        "REMOTE_ADDR": "127.0.0.1",
    }
    if with_cert:
        extra["HTTP_X_SSL_CLIENT_CERT"] = attacker_cert.nginx()
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = post_form(client, url, body_for(url, encoding="utf-7"), **extra)
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"
    assert not get_access_token_model().objects.exists()


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("encoding", ["no-such-codec", "rot13", "utf-16", "latin-1", "utf-7"])
def test_basic_credentials_are_utf8_whatever_the_body_says(
    client, make_app, mtls_settings, url, encoding
):
    """RFC 6749 §2.3.1: our lookup and DOT's decode the same way; an odd codec is no 500."""
    app = make_app("client_secret_basic")
    response = post_form(
        client,
        url,
        body_for(url, encoding=encoding),
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 200, (encoding, response.status_code, response.content)
    garbled = post_form(
        client,
        url,
        body_for(url, encoding=encoding),
        HTTP_AUTHORIZATION=basic_raw(utf7_first(app.client_id), SECRET),
    )
    assert garbled.status_code == 401, (encoding, garbled.status_code, garbled.content)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_plain_secret_of_an_mtls_client_is_refused(client, mtls_app, mtls_settings, url):
    for headers, data in (
        ({"HTTP_AUTHORIZATION": basic(mtls_app.client_id, SECRET)}, {}),
        ({}, {"client_id": mtls_app.client_id, "client_secret": SECRET}),
    ):
        response = post_form(client, url, body_for(url, **data), **headers)
        assert response.status_code == 401 and response.json()["error"] == "invalid_client"


# --- item 1: the choke point, with a base validator that authenticates on its own ----------------


class ApiKeyValidator(OAuth2Validator):
    """A project's validator with its own authentication paths: an ``X-Api-Key`` header names
    the client and authenticates it, and it never asks for client authentication."""

    def _app_from_header(self, request: Any) -> Any:
        from oauth2_provider.models import get_application_model

        client_id = request.headers.get("X-Api-Key") or request.headers.get("HTTP_X_API_KEY")
        if not client_id:
            return None
        request.client = get_application_model().objects.filter(client_id=client_id).first()
        request.client_id = client_id
        return request.client

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        return self._app_from_header(request) is not None or super().authenticate_client(request)

    def authenticate_client_id(
        self, client_id: str, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        return self._app_from_header(request) is not None

    def client_authentication_required(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        return request.headers.get("X-Client-Auth") != "skip"


class ComposedValidator(MTLSValidatorMixin, ApiKeyValidator):
    """The documented composition: the mixin in front of the project's validator."""


@pytest.fixture
def composed(use_validator: Any) -> None:
    use_validator("tests.integration.test_security_review.ComposedValidator")


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "skip", [False, True], ids=["authenticate_client", "authenticate_client_id"]
)
def test_invariant_holds_for_a_base_validators_own_path(
    client, composed, mtls_app, mtls_settings, attacker_cert, url, skip
):
    headers = {"HTTP_X_API_KEY": mtls_app.client_id, "REMOTE_ADDR": "127.0.0.1"}
    if skip:
        headers["HTTP_X_CLIENT_AUTH"] = "skip"
    for cert in (None, attacker_cert):
        extra = dict(headers)
        if cert is not None:
            extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
        response = post_form(client, url, body_for(url), **extra)
        assert response.status_code == 401, (url, skip, cert, response.content)
        assert response.json()["error"] == "invalid_client"
    assert not get_access_token_model().objects.exists()


def test_base_validators_own_path_still_serves_other_clients(
    client, composed, make_app, mtls_settings
):
    app = make_app("client_secret_basic")
    response = post_form(client, "/o/token/", body_for("/o/token/"), HTTP_X_API_KEY=app.client_id)
    assert response.status_code == 200, response.content


def test_composed_validator_still_authenticates_by_certificate(
    client, composed, mtls_app, mtls_settings, client_cert
):
    response = token_request(client, mtls_app, client_cert)
    assert response.status_code == 200, response.content
    assert AccessTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256


def test_save_time_check_refuses_a_token_for_an_unauthenticated_mtls_client(
    mtls_app, mtls_settings, rf
):
    """The second check: a token is never saved for an mTLS client that no certificate
    authenticated in this request, even when every earlier hook was bypassed."""
    from oauthlib.common import Request

    from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator, UnauthenticatedClientError

    request = Request("https://testserver/o/token/", "POST", "grant_type=client_credentials", {})
    request.client = mtls_app
    request.grant_type = "client_credentials"
    request.user = None
    request.scopes = ["read"]
    token = {"access_token": "a" * 30, "expires_in": 36000, "token_type": "Bearer", "scope": "read"}
    with pytest.raises(UnauthenticatedClientError) as raised:
        MTLSOAuth2Validator().save_bearer_token(token, request)
    assert raised.value.status_code == 401
    assert raised.value.headers["Content-Type"] == "application/json"
    assert raised.value.headers["Cache-Control"] == "no-store"
    assert not get_access_token_model().objects.exists()


# --- item 2: request parameters named like internal state ---------------------------------------


def test_client_certificate_parameter_is_not_a_certificate(client, make_app, mtls_settings):
    app = make_app("client_secret_basic", tls_client_certificate_bound_access_tokens=True)
    response = post_form(
        client,
        "/o/token/",
        body_for("/o/token/", client_certificate="junk", mtls_bind_to="x" * 43),
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_request"
    assert not get_access_token_model().objects.exists()


@pytest.mark.parametrize(
    "params",
    [
        {"mtls_bind_to": "forged-binding"},
        {"mtls_grant_bound": "1"},
        {"_django_oauth_mtls": "x"},
        {"refresh_token_instance": "x"},
        {"oauth2_error": "x"},
    ],
)
def test_token_endpoint_parameters_do_not_bind(client, make_app, mtls_settings, params):
    app = make_app("client_secret_basic")
    response = post_form(
        client,
        "/o/token/",
        body_for("/o/token/", **params),
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 200, response.content
    assert not AccessTokenBinding.objects.exists() and not RefreshTokenBinding.objects.exists()


def test_implicit_flow_binding_parameter_is_ignored(client, make_app, mtls_settings, user):
    app = make_app("none", client_type="public", grant_type="implicit")
    response = implicit_authorize(
        client, app, user, mtls_bind_to="forged-binding", mtls_grant_bound="1"
    )
    assert response.status_code == 302, response.content
    assert "access_token" in parse_qs(urlsplit(response["Location"]).fragment)
    assert get_access_token_model().objects.count() == 1
    assert not AccessTokenBinding.objects.exists()


def test_mtls_client_gets_no_front_channel_token(client, make_app, mtls_settings, user):
    """Implicit issues a token to a client nobody authenticated: never for an mTLS client."""
    app = make_app(tls_client_auth_san_dns="client-one.example.com", grant_type="implicit")
    response = implicit_authorize(client, app, user)
    assert response.status_code in (302, 400)
    assert "access_token=" not in response.get("Location", "")
    assert not get_access_token_model().objects.exists()


PROTECTED = (
    "/test/decorated/",
    "/test/mtls-any/",
    "/test/mixin/",
    "/test/dot-plain/",
    "/test/decorated-bound/",
)
SHADOWS = (
    "oauth2_error=x",
    "mtls_binding_refused=1&oauth2_error=x",
    "mtls_certificate_dependent=1",
    "oauth2_error=x&access_token=nope",
    "_django_oauth_mtls=1&mtls_binding_refused=1",
)


@pytest.fixture
def unbound_token(client, make_app, mtls_settings) -> str:
    app = make_app("client_secret_basic")
    response = post_form(
        client, "/o/token/", body_for("/o/token/"), HTTP_AUTHORIZATION=basic(app.client_id, SECRET)
    )
    return str(response.json()["access_token"])


@pytest.mark.parametrize("url", PROTECTED)
@pytest.mark.parametrize("query", SHADOWS)
def test_protected_views_ignore_shadowing_parameters(
    client, mtls_settings, unbound_token, url, query
):
    anonymous = client.get(f"{url}?{query}")
    assert anonymous.status_code in (401, 403), (url, query, anonymous.status_code)
    authorised = client.get(f"{url}?{query}", HTTP_AUTHORIZATION=f"Bearer {unbound_token}")
    expected = 401 if url in ("/test/decorated-bound/", "/test/mixin/") else 200
    assert authorised.status_code == expected, (
        url,
        query,
        authorised.status_code,
        authorised.content,
    )
    assert "no-store" not in authorised.get("Cache-Control", "") or expected == 401


# --- item 3: bearer introspection over mTLS ---------------------------------------------------------


@pytest.fixture
def introspection_bearer(make_app, user) -> str:
    from datetime import timedelta

    from django.utils import timezone

    rs = make_app("client_secret_basic")
    token = get_access_token_model().objects.create(
        user=user,
        application=rs,
        token="rs-introspection-token-0123456789",
        scope="introspection",
        expires=timezone.now() + timedelta(hours=1),
    )
    return str(token.token)


def test_bearer_introspection_with_a_certificate_presented(
    client, mtls_settings, introspection_bearer, client_cert, unbound_token
):
    response = post_form(
        client,
        "/o/introspect/",
        {"token": unbound_token},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        HTTP_AUTHORIZATION=f"Bearer {introspection_bearer}",
    )
    assert response.status_code == 200, response.content
    assert response.json()["active"] is True


def test_bearer_alongside_client_id_is_a_conflict(
    client, mtls_app, mtls_settings, introspection_bearer, client_cert, unbound_token
):
    response = post_form(
        client,
        "/o/introspect/",
        {"token": unbound_token, "client_id": mtls_app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        HTTP_AUTHORIZATION=f"Bearer {introspection_bearer}",
    )
    assert response.status_code == 401, response.content
    assert response.json()["error"] == "invalid_client"


# --- NUL characters (PostgreSQL refuses them in text: a DataError, once a 500) -------------------


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("where", ["value", "name", "query"])
def test_a_nul_parameter_is_invalid_request(client, mtls_app, mtls_settings, url, where):
    body = body_for(url, client_id=mtls_app.client_id)
    target = url
    if where == "value":
        body["client_id"] = mtls_app.client_id + "\x00"
    elif where == "name":
        body["x\x00"] = "1"
    else:
        target = url + "?client_id=%00"
    response = post_form(client, target, body)
    assert response.status_code == 400, response.content
    assert response.json() == {
        "error": "invalid_request",
        "error_description": "a request parameter contains a NUL character",
    }
    assert response["Cache-Control"] == "no-store"


def test_authorize_with_a_nul_parameter(client, mtls_settings, make_app, user):
    app = make_app("none", client_type="public", grant_type="authorization-code")
    client.force_login(user)
    response = client.get(
        "/o/authorize/", {"response_type": "code", "client_id": app.client_id, "state": "a\x00b"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize("url", ENDPOINTS)
def test_a_basic_client_id_decoding_to_nul_is_no_client(client, mtls_app, mtls_settings, url):
    """UTF-16 bytes of the client id in a Basic header decode (as UTF-8) to text with NULs."""
    raw = mtls_app.client_id.encode("utf-16-le") + b":" + SECRET.encode()
    header = "Basic " + base64.b64encode(raw).decode()
    response = post_form(client, url, body_for(url), HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.content
