"""The device grant (RFC 8628) through the real endpoints: device authorization, DOT's user-code
and confirmation views as a logged-in user, then polling the token endpoint.

DOT 3.4.1 cannot run it under oauthlib 4 (its device-authorization view crashes on ``scope``,
its validator has no ``validate_device_code``); ``MTLSDeviceAuthorizationView``,
``MTLSTokenView`` and ``DeviceCodeMixin`` make it work, with RFC 8705 client authentication and
binding, and with the device_code tied to the client it was issued to (RFC 8628 §3.4).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_device_grant_model

from django_oauth_mtls import validator_device, views
from django_oauth_mtls.models import AccessTokenBinding
from tests import pki
from tests.integration.conftest import SECRET, _forget_cached_cores, basic, post_form
from tests.jwks_server import self_signed

pytestmark = pytest.mark.django_db

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
SAN = "client-one.example.com"
DEVICE_URL = "/o/device-authorization/"
TOKEN_URL = "/o/token/"


@pytest.fixture
def device_flow(settings: Any, mtls_settings: Any, client: Client) -> Any:
    _forget_cached_cores()
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "OAUTH_DEVICE_VERIFICATION_URI": "https://as.example/device",
    }
    client.raise_request_exception = False  # a server error is a 500 response, asserted
    yield settings
    _forget_cached_cores()


@pytest.fixture
def public_app(make_app: Any) -> Any:
    return make_app("none", client_type="public", grant_type=DEVICE_GRANT)


@pytest.fixture
def mtls_app(make_app: Any) -> Any:
    return make_app(
        grant_type=DEVICE_GRANT,
        tls_client_auth_san_dns=SAN,
        tls_client_certificate_bound_access_tokens=True,
    )


def cert_headers(cert: pki.Issued | None) -> dict[str, str]:
    headers = {"REMOTE_ADDR": "127.0.0.1"}
    if cert is not None:
        headers["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
    return headers


def authorize_device(
    client: Client, app: Any, cert: pki.Issued | None = None, **extra: str
) -> dict[str, Any]:
    response = post_form(
        client, DEVICE_URL, {"client_id": app.client_id, **extra}, **cert_headers(cert)
    )
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def poll(client: Client, app: Any, device_code: str, cert: pki.Issued | None = None) -> Any:
    response = post_form(
        client,
        TOKEN_URL,
        {"grant_type": DEVICE_GRANT, "device_code": device_code, "client_id": app.client_id},
        **cert_headers(cert),
    )
    assert response.status_code != 500, response.content
    return response


def decide(client: Client, user: Any, user_code: str, action: str) -> None:
    """The user enters the code and accepts or denies, through DOT's views."""
    client.force_login(user)
    assert client.get(reverse("oauth2_provider:device")).status_code == 200
    response = client.post(reverse("oauth2_provider:device"), {"user_code": user_code})
    assert response.status_code == 302, response.content
    grant = get_device_grant_model().objects.get(user_code=user_code)
    confirm = reverse(
        "oauth2_provider:device-confirm",
        kwargs={"client_id": grant.client_id, "user_code": user_code},
    )
    assert response["Location"] == confirm
    assert client.get(confirm).status_code == 200
    response = client.post(confirm, {"action": action})
    assert response.status_code == 302, response.content
    assert client.get(response["Location"]).status_code == 200  # DOT's grant status page
    client.logout()


def error_of(response: Any) -> str:
    assert response["Content-Type"] == "application/json"
    return response.json()["error"]  # type: ignore[no-any-return]


# --- the whole flow ---------------------------------------------------------------------------


def test_public_client_whole_flow(client, device_flow, public_app, user):
    data = authorize_device(client, public_app, scope="read")
    assert set(data) == {"device_code", "user_code", "verification_uri", "expires_in", "interval"}
    assert data["verification_uri"] == "https://as.example/device"
    grant = get_device_grant_model().objects.get(device_code=data["device_code"])
    assert (grant.client_id, grant.scope, grant.status) == (
        public_app.client_id,
        "read",
        grant.AUTHORIZATION_PENDING,
    )

    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 400 and error_of(response) == "authorization_pending"

    decide(client, user, data["user_code"], "accept")
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["scope"] == "read" and body["refresh_token"]
    token = get_access_token_model().objects.get(application=public_app)
    assert token.user == user and token.scope == "read"
    assert not AccessTokenBinding.objects.filter(access_token=token).exists()

    # One token response per device_code: the session concluded (RFC 8628 §3.5).
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 400 and error_of(response) == "expired_token"
    assert get_access_token_model().objects.filter(application=public_app).count() == 1


def test_default_scopes_when_the_device_asks_for_none(client, device_flow, public_app, user):
    data = authorize_device(client, public_app)
    grant = get_device_grant_model().objects.get(device_code=data["device_code"])
    assert set(grant.scope.split()) == {"read", "write", "introspection"}  # DOT's DEFAULT_SCOPES
    decide(client, user, data["user_code"], "accept")
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 200
    assert set(response.json()["scope"].split()) == set(grant.scope.split())


def test_tls_client_auth_whole_flow_gives_a_bound_token(
    client, device_flow, mtls_app, user, client_cert
):
    data = authorize_device(client, mtls_app, client_cert, scope="read")
    response = poll(client, mtls_app, data["device_code"], client_cert)
    assert response.status_code == 400 and error_of(response) == "authorization_pending"
    decide(client, user, data["user_code"], "accept")
    response = poll(client, mtls_app, data["device_code"], client_cert)
    assert response.status_code == 200, response.content
    token = get_access_token_model().objects.get(application=mtls_app)
    assert token.user == user
    assert AccessTokenBinding.objects.get(access_token=token).x5t_s256 == client_cert.x5t_s256
    # The bound token is accepted with its certificate only (RFC 8705 §3).
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access_token']}"}
    assert client.get("/test/mtls-any/", **bearer, **cert_headers(client_cert)).status_code == 200
    assert client.get("/test/mtls-any/", **bearer, **cert_headers(None)).status_code == 401


def test_tls_client_auth_needs_its_certificate_at_both_endpoints(
    client, device_flow, mtls_app, user, client_cert
):
    attacker = self_signed("device-attacker")
    for cert in (None, attacker):
        response = post_form(
            client, DEVICE_URL, {"client_id": mtls_app.client_id}, **cert_headers(cert)
        )
        assert response.status_code == 401 and error_of(response) == "invalid_client"
    assert not get_device_grant_model().objects.exists()

    data = authorize_device(client, mtls_app, client_cert)
    decide(client, user, data["user_code"], "accept")
    for cert in (None, attacker):
        response = poll(client, mtls_app, data["device_code"], cert)
        assert response.status_code == 401 and error_of(response) == "invalid_client"
    # Nor with the secret it was created with (the invariant: its registration decides).
    response = post_form(
        client,
        TOKEN_URL,
        {"grant_type": DEVICE_GRANT, "device_code": data["device_code"]},
        HTTP_AUTHORIZATION=basic(mtls_app.client_id, SECRET),
        **cert_headers(None),
    )
    assert response.status_code == 401 and error_of(response) == "invalid_client"
    assert not get_access_token_model().objects.exists()
    # The grant was not consumed by the refusals.
    assert poll(client, mtls_app, data["device_code"], client_cert).status_code == 200


# --- RFC 8628 §3.5 polling answers ------------------------------------------------------------


def test_denied(client, device_flow, public_app, user):
    data = authorize_device(client, public_app)
    decide(client, user, data["user_code"], "deny")
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 400 and error_of(response) == "access_denied"
    assert not get_access_token_model().objects.exists()


@pytest.mark.parametrize("status", ["authorization-pending", "authorized"])
def test_expired(client, device_flow, public_app, user, status):
    data = authorize_device(client, public_app)
    get_device_grant_model().objects.filter(device_code=data["device_code"]).update(
        expires=timezone.now() - timedelta(seconds=1), status=status, user=user
    )
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 400 and error_of(response) == "expired_token"
    assert get_device_grant_model().objects.get().status == "expired"
    assert not get_access_token_model().objects.exists()


def test_fast_polling_stays_authorization_pending(client, device_flow, public_app):
    """DOT 3.4.1 records no poll time to compare (``last_checked`` moves on every save, and its
    own token view leaves ``slow_down`` as a TODO): no ``slow_down``, never a 500."""
    data = authorize_device(client, public_app)
    for _ in range(3):
        response = poll(client, public_app, data["device_code"])
        assert response.status_code == 400 and error_of(response) == "authorization_pending"


@pytest.mark.parametrize("status", ["authorization-pending", "authorized", "denied"])
def test_another_clients_device_code_is_invalid_grant(
    client, device_flow, public_app, make_app, user, client_cert, status
):
    """RFC 8628 §3.4: whatever the grant's status, another client learns nothing from it (DOT
    3.4.1's token view answered the status before authenticating anyone)."""
    data = authorize_device(client, public_app)
    get_device_grant_model().objects.filter(device_code=data["device_code"]).update(
        status=status, user=user
    )
    other_public = make_app("none", client_type="public", grant_type=DEVICE_GRANT)
    other_mtls = make_app(grant_type=DEVICE_GRANT, tls_client_auth_san_dns=SAN)
    for other, cert in ((other_public, None), (other_mtls, client_cert)):
        response = poll(client, other, data["device_code"], cert)
        assert response.status_code == 400 and error_of(response) == "invalid_grant"
    assert not get_access_token_model().objects.exists()
    # The owner's grant is untouched.
    assert get_device_grant_model().objects.get().status == status


def test_unknown_device_code_is_invalid_grant(client, device_flow, public_app):
    response = poll(client, public_app, "no-such-device-code")
    assert response.status_code == 400 and error_of(response) == "invalid_grant"


def test_wrong_secret_is_invalid_client_whatever_the_device_code(client, device_flow, make_app):
    app = make_app("client_secret_basic", grant_type=DEVICE_GRANT)
    data = authorize_device_basic(client, app)
    response = post_form(
        client,
        TOKEN_URL,
        {"grant_type": DEVICE_GRANT, "device_code": data["device_code"]},
        HTTP_AUTHORIZATION=basic(app.client_id, "wrong-secret"),
    )
    assert response.status_code == 401 and error_of(response) == "invalid_client"


def authorize_device_basic(client: Client, app: Any) -> dict[str, Any]:
    response = post_form(
        client,
        DEVICE_URL,
        {"client_id": app.client_id},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 200, response.content
    return response.json()  # type: ignore[no-any-return]


def test_client_secret_basic_whole_flow(client, device_flow, make_app, user):
    app = make_app("client_secret_basic", grant_type=DEVICE_GRANT)
    data = authorize_device_basic(client, app)
    decide(client, user, data["user_code"], "accept")
    response = post_form(
        client,
        TOKEN_URL,
        {"grant_type": DEVICE_GRANT, "device_code": data["device_code"]},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert response.status_code == 200, response.content
    assert get_access_token_model().objects.get(application=app).user == user


def test_concurrent_redemption_gives_one_token(client, device_flow, public_app, user, monkeypatch):
    """Two polls validated the same authorized device_code; the second to save gets
    ``invalid_grant`` (the grant is consumed in the token's transaction)."""
    data = authorize_device(client, public_app)
    decide(client, user, data["user_code"], "accept")
    original = validator_device.DeviceCodeMixin.validate_device_code

    def validated_then_redeemed_elsewhere(self, *args, **kwargs):
        status = original(self, *args, **kwargs)
        model = get_device_grant_model()
        model.objects.filter(device_code=data["device_code"]).update(status=model.EXPIRED)
        return status

    monkeypatch.setattr(
        validator_device.DeviceCodeMixin, "validate_device_code", validated_then_redeemed_elsewhere
    )
    response = poll(client, public_app, data["device_code"])
    assert response.status_code == 400 and error_of(response) == "invalid_grant"
    assert response["Cache-Control"] == "no-store"
    assert not get_access_token_model().objects.exists()


# --- the device authorization view ------------------------------------------------------------


def test_dot_url_name_serves_our_view():
    from django.urls import resolve

    match = resolve(reverse("oauth2_provider:device-authorization"))
    assert match.func.view_class is views.MTLSDeviceAuthorizationView
    assert resolve(reverse("oauth2_provider:token")).func.view_class is views.MTLSTokenView


def test_without_oauthlib_scope_member_the_grant_takes_dots_scope(
    client, device_flow, public_app, monkeypatch
):
    """oauthlib 3.3 returns no ``scope``: the grant gets DOT's scope (requested, else the
    client's default scopes), as DOT 3.4.1's view computes it."""
    original = views.MTLSDeviceAuthorizationView.create_device_authorization_response

    def without_scope(self, request):
        headers, data, status = original(self, request)
        if status == 200:
            data.pop("scope", None)
        return headers, data, status

    monkeypatch.setattr(
        views.MTLSDeviceAuthorizationView, "create_device_authorization_response", without_scope
    )
    first = authorize_device(client, public_app, scope="write")
    second = authorize_device(client, public_app)
    grants = get_device_grant_model().objects
    assert grants.get(device_code=first["device_code"]).scope == "write"
    assert set(grants.get(device_code=second["device_code"]).scope.split()) == {
        "read",
        "write",
        "introspection",
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"client_id": "no-such-client"},
        {"client_id": "PUBLIC", "scope": "nonexistent"},
        {"client_id": "PUBLIC", "scope": "read", "extra": "\u00e9\u0000"},
        {"client_id": "PUBLIC\u00e9"},
    ],
)
def test_device_authorization_bad_input_is_never_500(client, device_flow, public_app, body):
    body = {k: v.replace("PUBLIC", public_app.client_id) for k, v in body.items()}
    response = post_form(client, DEVICE_URL, body)
    assert response.status_code in (200, 400, 401), (response.status_code, response.content)
    assert ("error" in response.json()) is (response.status_code != 200)
    response = client.post(DEVICE_URL, body, content_type="application/json")
    assert response.status_code in (400, 401), (response.status_code, response.content)
    assert client.get(DEVICE_URL).status_code == 405


@pytest.mark.parametrize("device_code", ["x" * 5000, "\u00e9\u0000", "' OR 1=1 --", " ", "%00"])
def test_token_endpoint_bad_device_codes_are_never_500(
    client, device_flow, public_app, device_code
):
    response = poll(client, public_app, device_code)
    assert response.status_code == 400
    assert error_of(response) in ("invalid_grant", "invalid_request")
