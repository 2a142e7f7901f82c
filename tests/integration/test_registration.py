"""RFC 7591/7592 registration over HTTP with RFC 8705 metadata (rows R8705-2.1.1-1,
R8705-2.1.2-1/-7, R8705-9.5-1, R7591*; pitfall P6), then authentication at DOT's real token
endpoint. Every client here is registered through ``/o/register/`` only."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.urls import resolve, reverse
from oauth2_provider.models import get_access_token_model, get_application_model

from django_oauth_mtls.models import MTLSClient
from django_oauth_mtls.registration import (
    MTLSDynamicClientRegistrationManagementView,
    MTLSDynamicClientRegistrationView,
)
from tests import pki
from tests.integration.conftest import basic, token_request
from tests.jwks_server import jwk_of, jwk_set, self_signed

pytestmark = pytest.mark.django_db

Application = get_application_model()
AccessToken = get_access_token_model()
REGISTER_URL = "/o/register/"

DN = "CN=client-one,O=Example\\, Inc.,C=DE"
#: One value per RFC 8705 §2.1.2 field that the ``client_cert`` fixture carries.
SUBJECTS = {
    "tls_client_auth_subject_dn": DN,
    "tls_client_auth_san_dns": "client-one.example.com",
    "tls_client_auth_san_uri": "spiffe://example.org/client-one",
    "tls_client_auth_san_ip": "2001:db8::1",
    "tls_client_auth_san_email": "ops@example.com",
}


@pytest.fixture
def dcr(settings, mtls_settings, client, user):
    """DCR on, DOT's default permission (a logged-in user; the test client skips CSRF)."""
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client.force_login(user)
    return client


def register(client, **metadata: Any):
    body = {"client_name": "mtls client", "grant_types": ["client_credentials"], **metadata}
    return client.post(REGISTER_URL, json.dumps(body), content_type="application/json")


def registered(client, **metadata: Any) -> tuple[dict[str, Any], Any]:
    response = register(client, **metadata)
    assert response.status_code == 201, response.content
    body = response.json()
    return body, Application.objects.get(client_id=body["client_id"])


def management(client, body: dict[str, Any], method: str = "get", payload: Any = None, token=None):
    path = urlsplit(body["registration_client_uri"]).path
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token or body['registration_access_token']}"}
    if payload is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(
        path, json.dumps(payload), content_type="application/json", **headers
    )


def counts() -> tuple[int, int, int]:
    return Application.objects.count(), MTLSClient.objects.count(), AccessToken.objects.count()


def refused_reason(client, app, cert, caplog, **kwargs) -> str:
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = token_request(client, app, cert, **kwargs)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")
    reasons = [r.getMessage() for r in caplog.records if "reason=" in r.getMessage()]
    return reasons[-1].split("reason=")[1].split()[0]


# --- wiring --------------------------------------------------------------------------------------


def test_dot_url_names_serve_our_views():
    assert resolve(reverse("oauth2_provider:dcr-register")).func.view_class is (
        MTLSDynamicClientRegistrationView
    )
    path = reverse("oauth2_provider:dcr-register-management", kwargs={"client_id": "abc"})
    assert resolve(path).func.view_class is MTLSDynamicClientRegistrationManagementView


def test_dcr_disabled_is_dot_404(mtls_settings, client, user):
    client.force_login(user)
    response = register(
        client,
        token_endpoint_auth_method="tls_client_auth",
        **{"tls_client_auth_san_dns": "client-one.example.com"},
    )
    assert response.status_code == 404
    assert counts() == (0, 0, 0)


def test_dot_permission_is_kept(settings, mtls_settings, client):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    response = register(
        client,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    assert response.status_code == 401
    assert response.json()["error"] == "access_denied"
    assert counts() == (0, 0, 0)


def test_dot_permission_setting_is_honoured(settings, mtls_settings, client):
    settings.OAUTH2_PROVIDER = {
        **settings.OAUTH2_PROVIDER,
        "DCR_ENABLED": True,
        "DCR_REGISTRATION_PERMISSION_CLASSES": ("oauth2_provider.dcr.AllowAllDCRPermission",),
    }
    body, app = registered(
        client,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    assert app.user is None
    assert body["token_endpoint_auth_method"] == "tls_client_auth"


# --- tls_client_auth -----------------------------------------------------------------------------


@pytest.mark.parametrize("field", sorted(SUBJECTS))
def test_tls_client_auth_each_subject_field_registers_and_authenticates(
    field, dcr, client_cert, caplog
):
    body, app = registered(
        dcr, token_endpoint_auth_method="tls_client_auth", **{field: SUBJECTS[field]}
    )
    assert body["token_endpoint_auth_method"] == "tls_client_auth"
    assert body[field] == SUBJECTS[field]
    assert body["tls_client_certificate_bound_access_tokens"] is False
    assert not {f for f in SUBJECTS if f != field} & set(body)
    assert "client_secret" not in body  # RFC 8705 §2: the certificate is the credential
    assert body["registration_access_token"]
    assert app.client_type == "confidential"
    row = MTLSClient.objects.get(application=app)
    assert (row.token_endpoint_auth_method, getattr(row, field)) == (
        "tls_client_auth",
        SUBJECTS[field],
    )

    response = token_request(dcr, app, client_cert)
    assert response.status_code == 200, response.content
    other = pki.issue(pki.name(CN="client-two"), issuer=pki.make_ca("Test Root CA"))
    assert refused_reason(dcr, app, other, caplog) == "chain_invalid"


def test_tls_client_auth_refuses_a_trusted_certificate_with_another_subject(dcr, root_ca, caplog):
    _body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    other = pki.issue(pki.name(CN="client-two"), issuer=root_ca, dns=("client-two.example.com",))
    assert refused_reason(dcr, app, other, caplog) == "subject_mismatch"


def test_registered_value_is_stored_stripped(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="  client-one.example.com ",
    )
    assert body["tls_client_auth_san_dns"] == "client-one.example.com"
    assert app.mtls.tls_client_auth_san_dns == "client-one.example.com"


def test_mtls_client_secret_is_withheld_and_refused(dcr, client_cert, caplog):
    """The confidential application has a secret nobody received; sending one is refused."""
    _body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_subject_dn=DN,
    )
    assert app.hash_client_secret
    identify_hasher(app.client_secret)  # stored hashed: nobody, the AS included, can read it
    assert (
        refused_reason(dcr, app, client_cert, caplog, data={"client_secret": "guess"})
        == "method_conflict"
    )


def test_bound_tokens_flag_is_stored_and_echoed(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    assert body["tls_client_certificate_bound_access_tokens"] is True
    assert app.mtls.tls_client_certificate_bound_access_tokens is True


# --- the other methods ---------------------------------------------------------------------------


def test_client_secret_basic_stays_a_dot_client(dcr):
    body, app = registered(dcr)
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["tls_client_certificate_bound_access_tokens"] is False
    assert body["client_secret"]
    assert app.client_type == "confidential"
    assert not MTLSClient.objects.filter(application=app).exists()
    response = token_request(
        dcr, app, headers={"HTTP_AUTHORIZATION": basic(app.client_id, body["client_secret"])}
    )
    assert response.status_code == 200, response.content


def test_none_is_a_public_client_without_secret(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="none",
        grant_types=["authorization_code"],
        redirect_uris=["https://client.example/cb"],
    )
    assert body["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in body
    assert app.client_type == "public"
    assert not MTLSClient.objects.filter(application=app).exists()


def test_public_client_with_bound_tokens_gets_a_row(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="none",
        grant_types=["authorization_code"],
        redirect_uris=["https://client.example/cb"],
        tls_client_certificate_bound_access_tokens=True,
    )
    assert body["tls_client_certificate_bound_access_tokens"] is True
    assert (app.client_type, app.mtls.token_endpoint_auth_method) == ("public", "none")


def test_client_secret_post_is_stored_and_echoed(dcr):
    body, app = registered(dcr, token_endpoint_auth_method="client_secret_post")
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert body["client_secret"]
    assert app.mtls.token_endpoint_auth_method == "client_secret_post"
    response = token_request(dcr, app, data={"client_secret": body["client_secret"]})
    assert response.status_code == 200, response.content


def test_self_signed_with_jwks_is_stored_and_echoed(dcr):
    document = jwk_set(self_signed())
    body, app = registered(
        dcr, token_endpoint_auth_method="self_signed_tls_client_auth", jwks=document
    )
    assert body["token_endpoint_auth_method"] == "self_signed_tls_client_auth"
    assert body["jwks"] == document
    assert "jwks_uri" not in body and "client_secret" not in body
    assert app.client_type == "confidential"
    assert app.mtls.jwks == document


def test_self_signed_with_jwks_uri_is_stored_and_echoed(dcr):
    uri = "https://client.example.com/.well-known/jwks.json"
    body, app = registered(
        dcr, token_endpoint_auth_method="self_signed_tls_client_auth", jwks_uri=uri
    )
    assert (body["jwks_uri"], app.mtls.jwks_uri) == (uri, uri)
    assert "jwks" not in body and "client_secret" not in body


# --- refusals: 400 invalid_client_metadata, nothing written -------------------------------------

CLIENT = self_signed("registration-client")
OTHER = self_signed("registration-other")
WEAK = self_signed("weak", key=pki.make_key("rsa", bits=1024))
MISMATCHED = {"keys": [jwk_of(CLIENT, x5c=jwk_of(OTHER)["x5c"])]}
TLS = {"token_endpoint_auth_method": "tls_client_auth"}
SELF = {"token_endpoint_auth_method": "self_signed_tls_client_auth"}

REFUSALS = {
    "no_subject_field": (TLS, "requires exactly one of"),
    "two_subject_fields": (
        {
            **TLS,
            "tls_client_auth_san_dns": "client-one.example.com",
            "tls_client_auth_san_email": "ops@example.com",
        },
        "found 2: tls_client_auth_san_dns, tls_client_auth_san_email",
    ),
    "subject_list": (
        {**TLS, "tls_client_auth_san_dns": ["a.example.com", "b.example.com"]},
        "tls_client_auth_san_dns must be a single string (RFC 8705 §2.1.2), not an array",
    ),
    "subject_number": ({**TLS, "tls_client_auth_san_ip": 3232235777}, "not a number"),
    "subject_null": ({**TLS, "tls_client_auth_subject_dn": None}, "not null"),
    "subject_empty": ({**TLS, "tls_client_auth_san_uri": ""}, "must not be empty"),
    "bad_ip_text": ({**TLS, "tls_client_auth_san_ip": "192.0.2.300"}, "not an IPv4 or IPv6"),
    "ip_leading_zero": ({**TLS, "tls_client_auth_san_ip": "010.0.0.1"}, "leading zero"),
    "ip_network": ({**TLS, "tls_client_auth_san_ip": "10.0.0.0/8"}, "not a network"),
    "bad_dn": ({**TLS, "tls_client_auth_subject_dn": "client-one"}, "not a distinguished name"),
    "flag_string": (
        {
            **TLS,
            "tls_client_auth_san_dns": "a.example.com",
            "tls_client_certificate_bound_access_tokens": "true",
        },
        "tls_client_certificate_bound_access_tokens must be a boolean (RFC 8705 §3.4), not a string",
    ),
    "flag_number": (
        {"tls_client_certificate_bound_access_tokens": 1},
        "must be a boolean",
    ),
    "jwks_with_jwks_uri": (
        {**SELF, "jwks": jwk_set(CLIENT), "jwks_uri": "https://client.example.com/jwks"},
        "jwks and jwks_uri must not both be present",
    ),
    "self_signed_without_a_set": (SELF, "requires jwks or jwks_uri"),
    "x5c_mismatch": (MISMATCHED, "jwks: keys[0].x5c[0] does not match the JWK's key"),
    "jwks_without_x5c": (
        {**SELF, "jwks": {"keys": [{k: v for k, v in jwk_of(CLIENT).items() if k != "x5c"}]}},
        "jwks holds no certificate",
    ),
    "jwks_not_an_object": ({**SELF, "jwks": "[]"}, "jwks must be an object"),
    "jwks_private_key": (
        {**SELF, "jwks": {"keys": [{**jwk_of(CLIENT), "d": "AAAA"}]}},
        "private or symmetric key material",
    ),
    "jwks_weak_key": ({**SELF, "jwks": jwk_set(WEAK)}, "RSA key of 1024 bits"),
    "jwks_uri_http": ({**SELF, "jwks_uri": "http://client.example.com/jwks"}, "https"),
    "jwks_uri_number": ({**SELF, "jwks_uri": 42}, "jwks_uri must be a string"),
    "jwks_uri_private_literal": ({**SELF, "jwks_uri": "https://10.0.0.8/jwks"}, "private address"),
    "unknown_method": (
        {"token_endpoint_auth_method": "private_key_jwt"},
        "Unsupported token_endpoint_auth_method: 'private_key_jwt'. Supported values: "
        "client_secret_basic, client_secret_post, none, tls_client_auth, "
        "self_signed_tls_client_auth",
    ),
    "method_not_a_string": (
        {"token_endpoint_auth_method": ["tls_client_auth"]},
        "must be a string",
    ),
    "subject_with_another_method": (
        {
            "token_endpoint_auth_method": "client_secret_basic",
            "tls_client_auth_san_dns": "a.example.com",
        },
        "only used with token_endpoint_auth_method tls_client_auth",
    ),
    "subject_with_none": (
        {
            "token_endpoint_auth_method": "none",
            "tls_client_auth_san_dns": "a.example.com",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["https://client.example/cb"],
        },
        "only used with",
    ),
}
MISMATCHED_REQUEST = {**SELF, "jwks": MISMATCHED}
REFUSALS["x5c_mismatch"] = (MISMATCHED_REQUEST, REFUSALS["x5c_mismatch"][1])


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refused_with_invalid_client_metadata_and_nothing_written(case, dcr):
    metadata, message = REFUSALS[case]
    before = counts()
    response = register(dcr, **metadata)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"] == "invalid_client_metadata"
    assert message in body["error_description"]
    assert counts() == before


def test_dot_refusals_are_kept(dcr):
    response = dcr.post(REGISTER_URL, "{not json", content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata")
    response = register(
        dcr,
        grant_types=["implicit"],
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="a.example.com",
    )
    assert response.status_code == 400
    assert "redirect_uris is required" in response.json()["error_description"]
    assert counts() == (0, 0, 0)


# --- RFC 7592: read, update, delete ---------------------------------------------------------------


def test_read_carries_the_metadata(dcr):
    body, _app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_email="ops@example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    response = management(dcr, body)
    assert response.status_code == 200, response.content
    read = response.json()
    assert read["client_id"] == body["client_id"]
    assert read["token_endpoint_auth_method"] == "tls_client_auth"
    assert read["tls_client_auth_san_email"] == "ops@example.com"
    assert read["tls_client_certificate_bound_access_tokens"] is True
    assert "client_secret" not in read
    assert response["Cache-Control"] == "no-store"


def test_read_of_a_plain_dot_client(dcr):
    body, _app = registered(dcr)
    read = management(dcr, body).json()
    assert read["token_endpoint_auth_method"] == "client_secret_basic"
    assert read["tls_client_certificate_bound_access_tokens"] is False


def test_read_without_the_registration_token_is_dot_401(dcr):
    body, _app = registered(
        dcr, token_endpoint_auth_method="tls_client_auth", tls_client_auth_san_dns="a.example.com"
    )
    response = management(dcr, body, token="wrong")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


def test_update_replaces_the_subject_and_authenticates(dcr, client_cert, caplog):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-two.example.com",
    )
    assert refused_reason(dcr, app, client_cert, caplog) == "subject_mismatch"
    update = {
        "client_id": body["client_id"],
        "client_name": "renamed",
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_san_uri": "spiffe://example.org/client-one",
    }
    response = management(dcr, body, "put", update)
    assert response.status_code == 200, response.content
    updated = response.json()
    assert updated["tls_client_auth_san_uri"] == "spiffe://example.org/client-one"
    assert "tls_client_auth_san_dns" not in updated
    assert "client_secret" not in updated
    assert updated["registration_access_token"] != body["registration_access_token"]
    row = MTLSClient.objects.get(application=app)
    assert (row.tls_client_auth_san_dns, row.tls_client_auth_san_uri) == (
        "",
        "spiffe://example.org/client-one",
    )
    assert token_request(dcr, app, client_cert).status_code == 200
    assert management(dcr, updated).json()["tls_client_auth_san_uri"] == (
        "spiffe://example.org/client-one"
    )


@pytest.mark.parametrize(
    ("update", "message"),
    [
        (
            {
                "token_endpoint_auth_method": "tls_client_auth",
                "tls_client_auth_san_dns": "a.example.com",
                "tls_client_auth_san_uri": "spiffe://example.org/a",
            },
            "found 2",
        ),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "found 0"),
        (
            {"token_endpoint_auth_method": "self_signed_tls_client_auth", "jwks": MISMATCHED},
            "does not match",
        ),
        ({"token_endpoint_auth_method": "private_key_jwt"}, "Unsupported"),
    ],
)
def test_refused_update_changes_nothing(dcr, update, message):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    payload = {"client_name": "renamed", "grant_types": ["client_credentials"], **update}
    response = management(dcr, body, "put", payload)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_client_metadata")
    assert message in response.json()["error_description"]
    app.refresh_from_db()
    assert app.name == "mtls client"
    row = MTLSClient.objects.get(application=app)
    assert (row.token_endpoint_auth_method, row.tls_client_auth_san_dns) == (
        "tls_client_auth",
        "client-one.example.com",
    )
    # DOT's token rotation was rolled back with the rest: the old token still works.
    assert management(dcr, body).status_code == 200


def test_update_from_mtls_to_a_secret_issues_one(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    payload = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    }
    response = management(dcr, body, "put", payload)
    assert response.status_code == 200, response.content
    updated = response.json()
    assert updated["token_endpoint_auth_method"] == "client_secret_basic"
    assert "tls_client_auth_san_dns" not in updated
    secret = updated["client_secret"]
    app.refresh_from_db()
    assert app.mtls.token_endpoint_auth_method == "client_secret_basic"
    assert app.mtls.tls_client_auth_san_dns == ""
    response = token_request(dcr, app, headers={"HTTP_AUTHORIZATION": basic(app.client_id, secret)})
    assert response.status_code == 200, response.content


def test_update_from_a_secret_to_tls_client_auth(dcr, client_cert, caplog):
    body, app = registered(dcr)
    secret = body["client_secret"]
    payload = {
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": DN,
    }
    response = management(dcr, body, "put", payload)
    assert response.status_code == 200, response.content
    assert "client_secret" not in response.json()
    app.refresh_from_db()
    assert token_request(dcr, app, client_cert).status_code == 200
    # The old secret no longer authenticates this client.
    assert (
        refused_reason(
            dcr, app, None, caplog, headers={"HTTP_AUTHORIZATION": basic(app.client_id, secret)}
        )
        == "method_conflict"
    )


def test_update_without_the_method_resets_it_to_the_default(dcr):
    """RFC 7592 §2.2: an update replaces the metadata; omitted members take their defaults."""
    body, app = registered(
        dcr,
        token_endpoint_auth_method="client_secret_post",
        tls_client_certificate_bound_access_tokens=True,
    )
    response = management(dcr, body, "put", {"grant_types": ["client_credentials"]})
    updated = response.json()
    assert updated["token_endpoint_auth_method"] == "client_secret_basic"
    assert updated["tls_client_certificate_bound_access_tokens"] is False
    app.refresh_from_db()
    assert app.mtls.token_endpoint_auth_method == "client_secret_basic"


def test_delete_removes_the_metadata(dcr):
    body, app = registered(
        dcr,
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="client-one.example.com",
    )
    response = management(dcr, body, "delete")
    assert response.status_code == 204
    assert not Application.objects.filter(pk=app.pk).exists()
    assert not MTLSClient.objects.filter(application_id=app.pk).exists()
