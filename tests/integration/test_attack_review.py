"""An attacker's re-read of the fixes for issue #14, through the public endpoints.

Each test is one attack. ``test_HOLE_*`` tests show a real defect and fail until it is fixed;
every other test confirms that a defence holds. Properties checked:

* the invariant: a client registered with an mTLS method is never authenticated without its
  matching certificate from a trusted peer;
* the binding: a bound token is never accepted without its certificate;
* no request answers 500;
* request parameters never reach internal state.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from django.utils import timezone
from oauth2_provider.models import get_access_token_model

from django_oauth_mtls.models import AccessTokenBinding
from tests import pki
from tests.integration.conftest import (
    SECRET,
    _forget_cached_cores,
    authorization_code,
    basic,
    code_grant,
    post_form,
    token_request,
)
from tests.jwks_server import self_signed

pytestmark = pytest.mark.django_db

ENDPOINTS = ("/o/token/", "/o/introspect/", "/o/revoke_token/")
PROTECTED = (
    "/api/whoami/",
    "/test/decorated/",
    "/test/decorated-bound/",
    "/test/mtls-any/",
    "/test/mixin/",
    "/test/dot-plain/",
)
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SAN = "client-one.example.com"


def body_for(url: str, **extra: str) -> dict[str, str]:
    if url == "/o/token/":
        return {"grant_type": "client_credentials", "scope": "read", **extra}
    return {"token": "some-token", **extra}


def basic_raw(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def utf7_first(client_id: str) -> str:
    head = base64.b64encode(client_id[0].encode("utf-16-be")).decode().rstrip("=")
    return f"+{head}-{client_id[1:]}"


def no_tokens_for(app: Any) -> bool:
    return not get_access_token_model().objects.filter(application=app).exists()


@pytest.fixture
def victim(make_app: Any) -> Any:
    """A flagged tls_client_auth client whose old secret the attacker knows (written past
    ``MTLSClient.save``, as a row migrated by SQL would be)."""
    app = make_app(tls_client_auth_san_dns=SAN, tls_client_certificate_bound_access_tokens=True)
    type(app).objects.filter(pk=app.pk).update(client_secret=SECRET, hash_client_secret=False)
    app.refresh_from_db()
    return app


@pytest.fixture
def attacker_cert() -> pki.Issued:
    return self_signed("attacker")


@pytest.fixture
def bound_token(client: Any, victim: Any, mtls_settings: Any, client_cert: pki.Issued) -> str:
    response = token_request(client, victim, client_cert)
    assert response.status_code == 200, response.content
    assert AccessTokenBinding.objects.get().x5t_s256 == client_cert.x5t_s256
    return str(response.json()["access_token"])


# --- the invariant: which credential names the client -------------------------------------------


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize("with_cert", [False, True], ids=["no-cert", "attacker-cert"])
def test_body_names_a_secret_client_basic_names_the_mtls_client(
    client, make_app, victim, mtls_settings, attacker_cert, url, with_cert
):
    """Body ``client_id`` of a plain client sends our code down DOT's path; DOT then
    authenticates the Basic client (the victim, by its old secret). The choke point refuses."""
    decoy = make_app("client_secret_basic")
    extra = {"HTTP_AUTHORIZATION": basic(victim.client_id, SECRET), "REMOTE_ADDR": "127.0.0.1"}
    if with_cert:
        extra["HTTP_X_SSL_CLIENT_CERT"] = attacker_cert.nginx()
    for encoding in ("", "utf-7", "latin-1"):
        data = {"client_id": decoy.client_id}
        if encoding:
            data["encoding"] = encoding
        response = post_form(client, url, body_for(url, **data), **extra)
        assert response.status_code in (400, 401), (
            encoding,
            response.status_code,
            response.content,
        )
        assert response.status_code != 200
    assert no_tokens_for(victim)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_body_names_the_mtls_client_with_its_certificate_basic_names_another(
    client, make_app, victim, mtls_settings, client_cert, url
):
    """The victim's own certificate beside Basic credentials of another client: one method."""
    other = make_app("client_secret_basic")
    response = post_form(
        client,
        url,
        body_for(url, client_id=victim.client_id),
        HTTP_AUTHORIZATION=basic(other.client_id, SECRET),
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        REMOTE_ADDR="127.0.0.1",
    )
    assert response.status_code == 401, response.content
    assert no_tokens_for(other) and no_tokens_for(victim)


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "header",
    [
        lambda cid: basic(cid, SECRET).replace("Basic", "basic"),
        lambda cid: basic(cid, SECRET).replace("Basic", "BASIC"),
        lambda cid: basic(cid, SECRET).replace("Basic ", "Basic  "),
        lambda cid: basic(cid, SECRET).replace("Basic ", "Basic\t"),
        lambda cid: basic_raw(quote(cid[0], safe="") + cid[1:], SECRET),
        lambda cid: basic_raw("%" + format(ord(cid[0]), "02X") + cid[1:], SECRET),
        lambda cid: basic_raw(cid, quote(SECRET)),
        lambda cid: basic_raw(utf7_first(cid), SECRET) + "!!!",
        lambda cid: "Basic " + base64.b64encode(f"{cid}:{SECRET}".encode()).decode().rstrip("="),
        lambda cid: "Basic " + base64.urlsafe_b64encode(f"{cid}:{SECRET}".encode()).decode(),
        lambda cid: basic_raw(cid + " ", SECRET),
        lambda cid: basic_raw(cid.upper(), SECRET),
    ],
    ids=[
        "lower-basic",
        "upper-basic",
        "two-spaces",
        "tab",
        "pct-first",
        "pct-upper",
        "pct-secret",
        "utf7-junk-suffix",
        "no-padding",
        "urlsafe",
        "trailing-space",
        "upper-id",
    ],
)
@pytest.mark.parametrize("encoding", ["", "utf-7", "utf-16", "latin-1"])
def test_basic_header_variants_never_authenticate_the_mtls_client(
    client, victim, mtls_settings, attacker_cert, url, header, encoding
):
    data = {"encoding": encoding} if encoding else {}
    for with_client_id in (False, True):
        if with_client_id:
            data = {**data, "client_id": victim.client_id}
        response = post_form(
            client,
            url,
            body_for(url, **data),
            HTTP_AUTHORIZATION=header(victim.client_id),
            HTTP_X_SSL_CLIENT_CERT=attacker_cert.nginx(),
            REMOTE_ADDR="127.0.0.1",
        )
        assert response.status_code in (400, 401), (response.status_code, response.content)
    assert no_tokens_for(victim)


@pytest.mark.parametrize("url", ENDPOINTS)
def test_client_id_in_the_query_string(
    client, victim, mtls_settings, attacker_cert, client_cert, url
):
    """``?client_id=`` (not the body) with Basic credentials or an attacker's certificate."""
    for cert, auth in (
        (attacker_cert, None),
        (None, basic(victim.client_id, SECRET)),
        (client_cert, basic(victim.client_id, SECRET)),
    ):
        extra: dict[str, str] = {"REMOTE_ADDR": "127.0.0.1"}
        if cert is not None:
            extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
        if auth is not None:
            extra["HTTP_AUTHORIZATION"] = auth
        response = client.post(
            f"{url}?client_id={victim.client_id}&encoding=utf-7",
            "&".join(f"{k}={v}" for k, v in body_for(url).items()),
            content_type="application/x-www-form-urlencoded",
            **extra,
        )
        assert response.status_code in (400, 401), (cert, auth, response.content)
    assert no_tokens_for(victim)


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "params",
    [
        {"client": "1"},
        {"client_id": ""},
        {"client_secret": ""},
        {"client_secret": SECRET},
        {"client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"},
        {"_django_oauth_mtls_state": "x"},
        {"authenticated_client_pk": "1"},
        {"headers": "x"},
        {"encoding": "utf-7", "client_secret": SECRET},
    ],
)
def test_shadowing_parameters_do_not_authenticate_the_mtls_client(
    client, victim, mtls_settings, attacker_cert, url, params
):
    data = {"client_id": victim.client_id, **params}
    if params.get("client_id") == "":
        data["client_id"] = ""
    for cert in (None, attacker_cert):
        extra: dict[str, str] = {
            "HTTP_AUTHORIZATION": basic_raw(utf7_first(victim.client_id), SECRET),
            "REMOTE_ADDR": "127.0.0.1",
        }
        if cert is not None:
            extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
        response = post_form(client, url, body_for(url, **data), **extra)
        assert response.status_code in (400, 401), (params, response.status_code, response.content)
    assert no_tokens_for(victim)


@pytest.mark.parametrize(
    "params",
    [
        {"user": "1"},
        {"scopes": "write"},
        {"claims": "{}"},
        {"resource": "https://rs.example/"},
        {"refresh_token_instance": "x"},
        {"access_token": "x"},
        {"client": "1"},
        {"encoding": "no-such-codec"},
    ],
)
def test_parameters_named_like_request_state_on_a_good_mtls_request(
    client, victim, mtls_settings, client_cert, user, params
):
    """The victim's own, valid request with extra parameters: a token bound to its certificate,
    no user planted on it, no 500."""
    response = token_request(client, victim, client_cert, data=params)
    assert response.status_code in (200, 400), (params, response.status_code, response.content)
    if response.status_code == 200:
        token = get_access_token_model().objects.get()
        assert token.user is None
        assert token.application == victim
        assert token.mtls_binding.x5t_s256 == client_cert.x5t_s256


def test_body_and_basic_name_two_plain_clients_is_no_500(client, make_app, mtls_settings):
    """oauthlib's "Discrepency found between client identifier" is a ServerError: here 400."""
    first, second = make_app("client_secret_basic"), make_app("client_secret_basic")
    response = post_form(
        client,
        "/o/token/",
        body_for("/o/token/", client_id=first.client_id),
        HTTP_AUTHORIZATION=basic(second.client_id, SECRET),
    )
    assert response.status_code == 400, response.content
    assert not get_access_token_model().objects.exists()


@pytest.mark.parametrize(
    "response_type",
    [
        "token",
        "token ",
        " token",
        "code token",
        "token code",
        "id_token token",
        "code id_token token",
        "TOKEN",
        "token+code",
    ],
)
def test_authorize_never_gives_an_mtls_client_a_front_channel_token(
    client, make_app, mtls_settings, user, response_type
):
    client.raise_request_exception = False
    app = make_app(tls_client_auth_san_dns=SAN, grant_type="implicit")
    app.skip_authorization = True
    app.save()
    client.force_login(user)
    response = client.get(
        "/o/authorize/",
        {
            "response_type": response_type,
            "client_id": app.client_id,
            "redirect_uri": "https://client.example/cb",
            "scope": "read",
            "client": "1",
            "mtls_bind_to": "x",
        },
    )
    assert response.status_code != 500, response.content
    assert "access_token" not in response.get("Location", ""), response.get("Location")
    assert not get_access_token_model().objects.exists()


# --- JSON bodies (DOT's deprecated JSONOAuthLibCore) ----------------------------------------------


@pytest.fixture
def json_backend(settings: Any) -> Any:
    _forget_cached_cores()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH2_BACKEND_CLASS": "oauth2_provider.oauth2_backends.JSONOAuthLibCore",
    }
    yield
    _forget_cached_cores()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    "extra",
    [
        {"encoding": "utf-7"},
        {"encoding": "utf-7", "client_id": None},
        {"client_id": ["a", "b"]},
        {"client_id": {"x": 1}},
        {"client_id": 1},
        {"client_secret": SECRET},
        {"client": {"client_id": "x"}},
    ],
    ids=["utf7", "null-client-id", "list", "object", "number", "secret", "client-object"],
)
def test_json_bodies(client, victim, mtls_settings, json_backend, attacker_cert, url, extra):
    body: dict[str, Any] = {**body_for(url), **extra}
    response = client.post(
        url,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_raw(utf7_first(victim.client_id), SECRET),
        HTTP_X_SSL_CLIENT_CERT=attacker_cert.nginx(),
        REMOTE_ADDR="127.0.0.1",
    )
    assert response.status_code != 500, response.content
    assert response.status_code in (400, 401), response.content
    assert no_tokens_for(victim)


# --- grants across clients --------------------------------------------------------------------------


def test_authorization_code_of_one_client_redeemed_by_another(
    client, make_app, victim, mtls_settings, client_cert, user
):
    """A code issued to a plain client, redeemed by the mTLS client with its own certificate."""
    issuer = make_app("client_secret_basic", grant_type="authorization-code")
    code, verifier = authorization_code(client, issuer, user)
    type(victim).objects.filter(pk=victim.pk).update(authorization_grant_type="authorization-code")
    victim.refresh_from_db()
    response = token_request(
        client,
        victim,
        client_cert,
        data=code_grant(code, verifier),
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "invalid_grant"
    assert not get_access_token_model().objects.exists()
    # and the code's own client, by its secret, still can (the code was not consumed)
    own = post_form(
        client,
        "/o/token/",
        code_grant(code, verifier),
        HTTP_AUTHORIZATION=basic(issuer.client_id, SECRET),
    )
    assert own.status_code == 200, own.content


def test_bound_refresh_token_of_one_public_client_used_by_another(
    client, make_app, mtls_settings, user
):
    holder = self_signed("holder")
    first = make_app(
        "none",
        client_type="public",
        grant_type="authorization-code",
        tls_client_certificate_bound_access_tokens=True,
    )
    second = make_app("none", client_type="public", grant_type="authorization-code")
    code, verifier = authorization_code(client, first, user)
    issued = token_request(
        client,
        first,
        holder,
        data=code_grant(code, verifier),
    )
    assert issued.status_code == 200, issued.content
    refresh = {"grant_type": "refresh_token", "refresh_token": issued.json()["refresh_token"]}
    for cert in (holder, None):
        response = token_request(client, second, cert, data=refresh)
        assert response.status_code in (400, 401), response.content
    assert no_tokens_for(second)
    assert token_request(client, first, holder, data=refresh).status_code == 200


def test_mtls_client_refresh_token_without_its_certificate(
    client, victim, mtls_settings, client_cert, attacker_cert, user
):
    """A confidential mTLS client's refresh token (bound to the client, not the certificate,
    under ``REFRESH_TOKEN_BINDING="public"``) is useless without the client's certificate."""
    type(victim).objects.filter(pk=victim.pk).update(authorization_grant_type="authorization-code")
    victim.refresh_from_db()
    code, verifier = authorization_code(client, victim, user)
    issued = token_request(
        client,
        victim,
        client_cert,
        data=code_grant(code, verifier),
    )
    assert issued.status_code == 200, issued.content
    refresh = {"grant_type": "refresh_token", "refresh_token": issued.json()["refresh_token"]}
    before = get_access_token_model().objects.count()
    attempts = [
        ({"HTTP_X_SSL_CLIENT_CERT": attacker_cert.nginx()}, True),
        ({}, True),
        ({"HTTP_AUTHORIZATION": basic(victim.client_id, SECRET)}, False),
        ({"HTTP_AUTHORIZATION": basic_raw(utf7_first(victim.client_id), SECRET)}, False),
    ]
    for headers, send_client_id in attempts:
        response = token_request(
            client,
            victim,
            None,
            send_client_id=send_client_id,
            data={**refresh, "encoding": "utf-7"},
            headers=headers,
        )
        assert response.status_code in (400, 401), (headers, response.content)
    assert get_access_token_model().objects.count() == before


def test_revocation_of_another_clients_token(client, make_app, victim, mtls_settings, bound_token):
    other = make_app("client_secret_basic")
    response = post_form(
        client,
        "/o/revoke_token/",
        {"token": bound_token},
        HTTP_AUTHORIZATION=basic(other.client_id, SECRET),
    )
    assert response.status_code == 200  # RFC 7009 §2.2: says nothing about the token
    assert get_access_token_model().objects.filter(application=victim).count() == 1


def test_introspection_by_another_client_shows_cnf_but_grants_nothing(
    client, make_app, victim, mtls_settings, bound_token
):
    other = make_app("client_secret_basic")
    response = post_form(
        client,
        "/o/introspect/",
        {"token": bound_token},
        HTTP_AUTHORIZATION=basic(other.client_id, SECRET),
    )
    assert response.status_code == 200
    assert response.json()["cnf"] == {"x5t#S256": AccessTokenBinding.objects.get().x5t_s256}


# --- introspection: bearer mode and its precedence --------------------------------------------------


@pytest.fixture
def introspection_bearer(make_app: Any, user: Any) -> str:
    rs = make_app("client_secret_basic")
    token = get_access_token_model().objects.create(
        user=user,
        application=rs,
        token="rs-introspection-token-0123456789",
        scope="introspection",
        expires=timezone.now() + timedelta(hours=1),
    )
    return str(token.token)


@pytest.mark.parametrize(
    "scheme",
    ["Bearer ", "bearer ", "BEARER ", "Bearer  "],
    ids=["Bearer", "bearer", "BEARER", "two-spaces"],
)
def test_bearer_mode_with_conflicting_client_credentials(
    client, victim, mtls_settings, client_cert, introspection_bearer, bound_token, scheme
):
    auth = f"{scheme}{introspection_bearer}"
    cases = [
        ("post", {"token": bound_token, "client_id": victim.client_id}, ""),
        ("post", {"token": bound_token}, f"?client_id={victim.client_id}"),
        ("get", {"token": bound_token, "client_id": victim.client_id}, ""),
    ]
    for method, data, query in cases:
        if method == "post":
            response = post_form(
                client,
                f"/o/introspect/{query}",
                data,
                HTTP_AUTHORIZATION=auth,
                HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
                REMOTE_ADDR="127.0.0.1",
            )
        else:
            response = client.get(
                "/o/introspect/",
                data,
                HTTP_AUTHORIZATION=auth,
                HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
                REMOTE_ADDR="127.0.0.1",
            )
        assert response.status_code == 401, (scheme, method, query, response.content)
        assert response.json()["error"] == "invalid_client"
    # bearer mode alone works, whatever the scheme's case
    alone = post_form(client, "/o/introspect/", {"token": bound_token}, HTTP_AUTHORIZATION=auth)
    assert alone.status_code == 200, alone.content
    assert alone.json()["active"] is True


@pytest.mark.parametrize(
    "auth",
    ["Bearer\t{t}", "Bearer", "Bearer ", "Bearer {t} extra", "Bearer {t}\x00", "Bearer,{t}"],
    ids=["tab", "bare", "empty", "three-parts", "nul", "comma"],
)
def test_malformed_bearer_headers_at_introspection(
    client, mtls_settings, introspection_bearer, auth
):
    response = post_form(
        client,
        "/o/introspect/",
        {"token": "x"},
        HTTP_AUTHORIZATION=auth.format(t=introspection_bearer),
    )
    assert response.status_code in (400, 401, 403), (auth, response.status_code, response.content)


def test_bound_bearer_token_at_introspection_needs_its_certificate(
    client, victim, mtls_settings, client_cert, attacker_cert, user
):
    """A bound token of scope ``introspection`` used in bearer mode without its certificate."""
    response = token_request(client, victim, client_cert, data={"scope": "introspection"})
    assert response.status_code == 200, response.content
    bearer = response.json()["access_token"]
    for cert in (None, attacker_cert):
        extra = {"HTTP_AUTHORIZATION": f"Bearer {bearer}", "REMOTE_ADDR": "127.0.0.1"}
        if cert is not None:
            extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
        refused = post_form(client, "/o/introspect/", {"token": bearer}, **extra)
        assert refused.status_code == 401, refused.content
        assert "invalid_token" in refused["WWW-Authenticate"]


# --- the binding at protected resources ------------------------------------------------------------


@pytest.mark.parametrize("url", PROTECTED)
def test_bound_token_presentations_without_its_certificate(
    client, mtls_settings, bound_token, client_cert, attacker_cert, url
):
    presentations: list[tuple[str, dict[str, Any], dict[str, str]]] = [
        ("get", {}, {"HTTP_AUTHORIZATION": f"Bearer {bound_token}"}),
        ("get", {}, {"HTTP_AUTHORIZATION": f"bearer {bound_token}"}),
        ("get", {}, {"HTTP_AUTHORIZATION": f"BEARER  {bound_token}"}),
        ("get", {}, {"HTTP_AUTHORIZATION": f"Bearer\t{bound_token}"}),
        ("get", {"access_token": bound_token}, {}),
        ("post", {"access_token": bound_token}, {}),
        ("get", {"access_token": bound_token, "oauth2_error": "", "access_token_binding": "x"}, {}),
    ]
    for cert in (None, attacker_cert):
        for method, params, headers in presentations:
            extra = {**headers, "REMOTE_ADDR": "127.0.0.1"}
            if cert is not None:
                extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
            if method == "get":
                response = client.get(url, params, **extra)
            else:
                response = post_form(client, url, params, **extra)
            assert response.status_code in (401, 403, 405), (
                url,
                method,
                params,
                headers,
                response.status_code,
            )
    ok = client.get(
        url,
        HTTP_AUTHORIZATION=f"Bearer {bound_token}",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        REMOTE_ADDR="127.0.0.1",
    )
    assert ok.status_code == 200, (url, ok.content)


@pytest.mark.parametrize("url", PROTECTED)
def test_bound_token_with_its_certificate_from_an_untrusted_peer(
    client, mtls_settings, bound_token, client_cert, url
):
    response = client.get(
        url,
        HTTP_AUTHORIZATION=f"Bearer {bound_token}",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
        REMOTE_ADDR="198.51.100.7",
    )
    assert response.status_code in (401, 403), (url, response.status_code)


@pytest.mark.parametrize("url", PROTECTED)
def test_registration_access_token_is_no_resource_token(client, mtls_settings, settings, user, url):
    """The RFC 7592 registration access token (unbound, issued by DOT outside the validator)
    of an mTLS client does not open protected resources."""
    from tests.integration.test_registration import registered

    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client.force_login(user)
    body, _app = registered(
        client, token_endpoint_auth_method="tls_client_auth", tls_client_auth_san_dns=SAN
    )
    client.logout()
    response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}")
    assert response.status_code in (401, 403), (url, response.status_code)


# --- registration management (RFC 7592) and the admin ----------------------------------------------


def test_registration_management_of_another_client(client, mtls_settings, settings, user):
    from tests.integration.test_registration import management, registered

    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client.force_login(user)
    mine, _ = registered(client, client_name="attacker")
    theirs, victim_app = registered(
        client, token_endpoint_auth_method="tls_client_auth", tls_client_auth_san_dns=SAN
    )
    client.logout()
    token = mine["registration_access_token"]
    switch = {
        "client_name": "stolen",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    for method, payload in (("get", None), ("put", switch), ("delete", None)):
        response = management(client, theirs, method, payload, token=token)
        assert response.status_code == 401, (method, response.content)
    victim_app.refresh_from_db()
    assert victim_app.mtls.token_endpoint_auth_method == "tls_client_auth"
    # an access token of the mTLS client itself is no registration access token either
    issued = token_request(client, victim_app, None)
    assert issued.status_code == 401


def test_admin_certificate_check_needs_staff(client, make_app, user):
    app = make_app(tls_client_auth_san_dns=SAN)
    url = f"/admin/oauth2_provider/application/{app.pk}/check-certificate/"
    assert client.get(url).status_code == 302
    client.force_login(user)  # a user, not staff
    response = client.get(url)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    response = client.post(url, {"certificate": "x"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_dot_management_views_do_not_reach_another_users_application(client, make_app, user):
    from django.contrib.auth import get_user_model

    app = make_app(tls_client_auth_san_dns=SAN)
    owner = get_user_model().objects.create_user("owner")
    type(app).objects.filter(pk=app.pk).update(user=owner)
    client.force_login(user)
    for suffix in ("", "update/", "delete/"):
        response = client.get(f"/o/applications/{app.pk}/{suffix}")
        assert response.status_code == 404, (suffix, response.status_code)
    response = client.post(f"/o/applications/{app.pk}/update/", {"client_secret": "known"})
    assert response.status_code == 404


# --- the device grant (DOT's views, mounted by django_oauth_mtls.urls) ------------------------------


@pytest.fixture
def device_flow(settings: Any) -> Any:
    _forget_cached_cores()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH_DEVICE_VERIFICATION_URI": "https://as.example/device",
    }
    yield
    _forget_cached_cores()


def test_device_authorization_refuses_the_mtls_client_without_its_certificate(
    client, make_app, mtls_settings, device_flow, attacker_cert
):
    app = make_app(grant_type=DEVICE_GRANT, tls_client_auth_san_dns=SAN)
    type(app).objects.filter(pk=app.pk).update(client_secret=SECRET, hash_client_secret=False)
    for headers in (
        {},
        {"HTTP_AUTHORIZATION": basic(app.client_id, SECRET)},
        {"HTTP_X_SSL_CLIENT_CERT": attacker_cert.nginx(), "REMOTE_ADDR": "127.0.0.1"},
        {"HTTP_AUTHORIZATION": basic_raw(utf7_first(app.client_id), SECRET)},
    ):
        data = {"client_id": app.client_id, "encoding": "utf-7"}
        if "HTTP_AUTHORIZATION" in headers:
            data.pop("client_id")
        response = post_form(client, "/o/device-authorization/", data, **headers)
        # 400 when oauthlib wants client_id in the body (Basic alone), else 401
        assert response.status_code in (400, 401), (headers, response.content)


def test_device_authorization_answers_json(client, make_app, mtls_settings, device_flow):
    """Any client registered for the device grant: a valid device authorization request was a
    500 (DOT 3.4.1's view passes oauthlib 4's ``scope`` to its ``DeviceCodeResponse``); fixed by
    ``MTLSDeviceAuthorizationView``."""
    client.raise_request_exception = False
    app = make_app("client_secret_basic", grant_type=DEVICE_GRANT)
    response = post_form(
        client,
        "/o/device-authorization/",
        {"client_id": app.client_id},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code != 500, response.content
    assert response.status_code == 200


@pytest.mark.parametrize("redeemer", ["own", "other"])
def test_device_code_grant_answers_its_own_client_only(
    client, make_app, mtls_settings, device_flow, user, redeemer
):
    """An authorized device_code at the token endpoint was a 500 (oauthlib 4 calls
    ``validate_device_code``, which DOT 3.4.1 does not implement; ``DeviceCodeMixin`` does). A
    device_code issued to one client never gives a token to another (DOT's pre-token hook loads
    the grant by device_code alone)."""
    from oauth2_provider.models import get_device_grant_model

    client.raise_request_exception = False
    owner = make_app("client_secret_basic", grant_type=DEVICE_GRANT)
    other = make_app("client_secret_basic", grant_type=DEVICE_GRANT)
    get_device_grant_model().objects.create(
        client_id=owner.client_id,
        device_code="device-code-1",
        user_code="USERCODE1",
        scope="read",
        expires=timezone.now() + timedelta(minutes=5),
        status="authorized",
        user=user,
        interval=5,
    )
    app = owner if redeemer == "own" else other
    response = post_form(
        client,
        "/o/token/",
        {"grant_type": DEVICE_GRANT, "device_code": "device-code-1", "client_id": app.client_id},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code != 500, response.content
    if redeemer == "other":
        assert response.status_code == 400 and no_tokens_for(other)
    else:
        assert response.status_code == 200
