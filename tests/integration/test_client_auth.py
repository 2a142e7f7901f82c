"""RFC 8705 §2.1 ``tls_client_auth`` through DOT's real token, introspection and revocation
endpoints (rows R8705-2*, pitfalls P1–P8, P21–P23)."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_oauth_mtls import signals
from tests import pki
from tests.integration.conftest import (
    SECRET,
    basic,
    code_grant,
    post_form,
    secret_basic,
    token_request,
)

pytestmark = pytest.mark.django_db

DN = "CN=client-one,O=Example\\, Inc.,C=DE"
FIELDS = {
    "tls_client_auth_subject_dn": (DN, "CN=client-two,O=Example\\, Inc.,C=DE"),
    "tls_client_auth_san_dns": ("client-one.example.com", "client-two.example.com"),
    "tls_client_auth_san_uri": (
        "spiffe://example.org/client-one",
        "spiffe://example.org/client-two",
    ),
    "tls_client_auth_san_ip": ("192.0.2.10", "192.0.2.11"),
    "tls_client_auth_san_email": ("ops@example.com", "dev@example.com"),
}


def error_of(response) -> tuple[int, str, str]:
    body = response.json()
    return response.status_code, body.get("error"), body.get("error_description", "")


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_each_subject_field_authenticates_R8705_2_1_2(
    field, client, make_app, mtls_settings, client_cert
):
    app = make_app(**{field: FIELDS[field][0]})
    response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_each_subject_field_refuses_another_value(
    field, client, make_app, mtls_settings, client_cert, caplog
):
    app = make_app(**{field: FIELDS[field][1]})
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = token_request(client, app, client_cert)
    status, error, description = error_of(response)
    assert (status, error) == (401, "invalid_client")
    # The client gets the fixed phrase; which field failed goes to the log line (issue #14).
    assert field not in description and "subject registered" in description
    assert any(
        "reason=subject_mismatch" in r.getMessage() and field in r.getMessage()
        for r in caplog.records
    )


def test_lenient_dn_registration(client, make_app, mtls_settings, client_cert):
    """P1/P2: lower-case types, spaces, another RDN order still match (order ignored by default)."""
    app = make_app(tls_client_auth_subject_dn="c=DE, o=Example\\, Inc., cn=CLIENT-ONE")
    assert token_request(client, app, client_cert).status_code == 200


def test_dn_order_enforced_when_configured(client, make_app, mtls_settings, client_cert):
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "SUBJECT_DN_MATCH_ORDER": True}
    app = make_app(tls_client_auth_subject_dn="C=DE,O=Example\\, Inc.,CN=client-one")
    assert error_of(token_request(client, app, client_cert))[:2] == (401, "invalid_client")
    app2 = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app2, client_cert).status_code == 200


# --- the chain (P8: the app validates, because optional_no_ca validates nothing) ----------------


def refused(client, app, cert, code, caplog, **kwargs):
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = token_request(client, app, cert, **kwargs)
    status, error, description = error_of(response)
    assert (status, error) == (401, "invalid_client"), response.content
    assert description
    assert any(f"reason={code}" in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]
    return description


def test_untrusted_ca(client, make_app, mtls_settings, caplog):
    other_ca = pki.make_ca("Other CA")
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=other_ca,
        dns=("client-one.example.com",),
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "chain_invalid", caplog)


def test_ca_with_the_trusted_name_but_another_key_P8(client, make_app, mtls_settings, caplog):
    impostor_ca = pki.make_ca("Test Root CA")  # same DN as the trusted root, new key
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=impostor_ca)
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "chain_invalid", caplog)


def test_self_signed_with_the_right_dn_P8(client, make_app, mtls_settings, caplog):
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"))
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "chain_invalid", caplog)


def test_expired(client, make_app, mtls_settings, root_ca, caplog):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        not_before=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    assert "expired" in refused(client, app, cert, "expired", caplog)


def test_not_yet_valid(client, make_app, mtls_settings, root_ca, caplog):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        not_before=dt.datetime(2035, 1, 1, tzinfo=dt.UTC),
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "not_yet_valid", caplog)


def test_clock_skew_tolerated(client, make_app, mtls_settings, root_ca):
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=20)
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=root_ca, not_before=soon
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, cert).status_code == 200


def test_wrong_eku_R8705_7_5(client, make_app, mtls_settings, root_ca, caplog):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "wrong_eku", caplog)


def test_no_eku_is_accepted(client, make_app, mtls_settings, root_ca):
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=root_ca, eku=None)
    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, cert).status_code == 200


# --- keyUsage (RFC 5280 §4.2.1.3): TLS client authentication signs with the key ---------------

NO_SIGNATURE = {
    "keyEncipherment": pki.key_usage(key_encipherment=True),
    "keyAgreement": pki.key_usage(key_agreement=True),
    "contentCommitment": pki.key_usage(content_commitment=True),
    "dataEncipherment": pki.key_usage(data_encipherment=True),
}


@pytest.mark.parametrize("usage", sorted(NO_SIGNATURE))
def test_key_usage_without_digital_signature_is_refused(
    usage, client, make_app, mtls_settings, root_ca, caplog
):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        key_usage=NO_SIGNATURE[usage],
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "wrong_key_usage", caplog)


def test_key_usage_without_digital_signature_is_refused_with_proxy_verification(
    client, make_app, mtls_settings, caplog
):
    proxy_ca = pki.make_ca("Proxy-trusted CA")
    cert = pki.issue(
        pki.name(CN="x"),
        issuer=proxy_ca,
        dns=("client-one.example.com",),
        key_usage=pki.key_usage(key_encipherment=True),
    )
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "TRUST_PROXY_VERIFICATION": True}
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    refused(
        client,
        app,
        cert,
        "wrong_key_usage",
        caplog,
        headers={"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"},
    )


def test_wrong_eku_is_refused_with_proxy_verification(client, make_app, mtls_settings, caplog):
    """The proxy's verdict replaces chain validation, not the client-certificate checks."""
    proxy_ca = pki.make_ca("Proxy-trusted CA")
    cert = pki.issue(
        pki.name(CN="x"),
        issuer=proxy_ca,
        dns=("client-one.example.com",),
        eku=(ExtendedKeyUsageOID.SERVER_AUTH,),
    )
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "TRUST_PROXY_VERIFICATION": True}
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    refused(client, app, cert, "wrong_eku", caplog, headers={"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"})


@pytest.mark.parametrize(
    "usage",
    [
        None,  # no keyUsage extension: any use (RFC 5280 §4.2.1.3)
        pki.key_usage(digital_signature=True, key_encipherment=True),
        pki.key_usage(digital_signature=True, content_commitment=True),
    ],
    ids=["absent", "with-keyEncipherment", "with-contentCommitment"],
)
def test_key_usage_with_digital_signature_or_absent_is_accepted(
    usage, client, make_app, mtls_settings, root_ca
):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=root_ca, key_usage=usage
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, cert).status_code == 200


def test_dn_only_certificate_without_san(client, make_app, mtls_settings, root_ca):
    """Our extension policy: a SAN may be absent (Open Banking DN-only certificates)."""
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=root_ca)
    app = make_app(tls_client_auth_subject_dn=DN)
    assert token_request(client, app, cert).status_code == 200


def test_weak_rsa_key(client, make_app, mtls_settings, root_ca, caplog):
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=root_ca,
        key=pki.make_key("rsa", 1024),
    )
    app = make_app(tls_client_auth_subject_dn=DN)
    refused(client, app, cert, "weak_key", caplog)


def test_intermediate_from_settings(client, make_app, mtls_settings, root_ca, tmp_path):
    intermediate = pki.issue(pki.name(CN="Issuing CA", O="Test PKI"), issuer=root_ca, ca=True)
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=intermediate)
    app = make_app(tls_client_auth_subject_dn=DN)
    path = tmp_path / "intermediates.pem"
    path.write_text(intermediate.pem)
    assert error_of(token_request(client, app, cert))[0] == 401
    mtls_settings.OAUTH2_MTLS = {
        **mtls_settings.OAUTH2_MTLS,
        "INTERMEDIATE_CERTIFICATES": [str(path)],
    }
    assert token_request(client, app, cert).status_code == 200


def test_intermediate_from_the_chain_field(client, make_app, mtls_settings, root_ca):
    intermediate = pki.issue(pki.name(CN="Issuing CA", O="Test PKI"), issuer=root_ca, ca=True)
    cert = pki.issue(pki.name(C="DE", O="Example, Inc.", CN="client-one"), issuer=intermediate)
    app = make_app(tls_client_auth_subject_dn=DN)
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "CERTIFICATE_SOURCE": "rfc9440"}
    response = token_request(
        client,
        app,
        None,
        headers={
            "HTTP_CLIENT_CERT": cert.rfc9440(),
            "HTTP_CLIENT_CERT_CHAIN": intermediate.rfc9440(),
        },
    )
    assert response.status_code == 200, response.content


# --- the rules of the method -----------------------------------------------------------------


def test_missing_client_id_R8705_2(client, make_app, mtls_settings, client_cert, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    description = refused(
        client, app, client_cert, "client_id_missing", caplog, send_client_id=False
    )
    assert "client_id" in description


def test_secret_alongside_P23(client, make_app, mtls_settings, client_cert, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    refused(client, app, client_cert, "method_conflict", caplog, data={"client_secret": SECRET})


def test_basic_alongside_P23(client, make_app, mtls_settings, client_cert, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    refused(
        client,
        app,
        client_cert,
        "method_conflict",
        caplog,
        send_client_id=True,
        headers={"HTTP_AUTHORIZATION": basic(app.client_id, SECRET)},
    )


def test_client_assertion_alongside_P23(client, make_app, mtls_settings, client_cert, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    data = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": "x.y.z",
    }
    refused(client, app, client_cert, "method_conflict", caplog, data=data)


def test_mtls_client_trying_its_secret(client, make_app, mtls_settings, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    refused(
        client,
        app,
        None,
        "method_conflict",
        caplog,
        **secret_basic(app),
    )
    refused(client, app, None, "method_conflict", caplog, data={"client_secret": SECRET})


def test_no_certificate(client, make_app, mtls_settings, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    assert "no client certificate" in refused(client, app, None, "no_certificate", caplog)


def test_certificate_from_an_untrusted_peer_R9440_4_3(
    client, make_app, mtls_settings, client_cert, caplog
):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    description = refused(client, app, client_cert, "no_certificate", caplog, remote="127.0.0.2")
    assert "trusted proxy" in description


def test_application_without_mtls_row_is_dot(client, make_app, mtls_settings, client_cert):
    app = make_app(None)
    ok = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert ok.status_code == 200
    bad = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, "wrong"),
    )
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
    # A certificate does not authenticate a DOT client without an mTLS registration.
    assert token_request(client, app, client_cert).status_code == 401


def test_secret_client_with_certificate_is_dot(client, make_app, mtls_settings, client_cert):
    app = make_app("client_secret_basic")
    response = token_request(
        client,
        app,
        client_cert,
        **secret_basic(app),
    )
    assert response.status_code == 200


def test_signals(client, make_app, mtls_settings, client_cert):
    seen = []

    def on_fail(sender, **kwargs):
        seen.append(("fail", kwargs["reason"], kwargs["client_id"]))

    def on_ok(sender, **kwargs):
        seen.append(("ok", kwargs["method"], kwargs["x5t_s256"]))

    signals.client_authentication_failed.connect(on_fail)
    signals.client_authenticated.connect(on_ok)
    try:
        app = make_app(tls_client_auth_san_dns="client-one.example.com")
        token_request(client, app, client_cert)
        token_request(client, app, None)
    finally:
        signals.client_authentication_failed.disconnect(on_fail)
        signals.client_authenticated.disconnect(on_ok)
    assert seen == [
        ("ok", "tls_client_auth", client_cert.x5t_s256),
        ("fail", "no_certificate", app.client_id),
    ]


def test_logs_never_contain_a_pem_or_secret(client, make_app, mtls_settings, client_cert, caplog):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    with caplog.at_level(logging.DEBUG):
        token_request(client, app, client_cert, data={"client_secret": SECRET})
        token_request(client, app, client_cert)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in text
    assert "BEGIN" not in text and client_cert.b64()[:40] not in text


# --- trust pins ------------------------------------------------------------------------------


def test_trust_pin_by_key(client, make_app, mtls_settings, root_ca, client_cert, caplog):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com", trust_pin_spki_sha256=root_ca.pem
    )
    assert token_request(client, app, client_cert).status_code == 200
    other = pki.make_ca("Pinned elsewhere")
    app2 = make_app(
        tls_client_auth_san_dns="client-one.example.com", trust_pin_spki_sha256=other.pem
    )
    refused(client, app2, client_cert, "pin_mismatch", caplog)


def test_pinned_client_is_validated_in_the_app_even_with_proxy_verification(
    client, make_app, mtls_settings, caplog
):
    impostor_ca = pki.make_ca("Test Root CA")
    cert = pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        issuer=impostor_ca,
        dns=("client-one.example.com",),
    )
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "TRUST_PROXY_VERIFICATION": True}
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com", trust_pin_spki_sha256=impostor_ca.pem
    )
    # The proxy says SUCCESS, but the pinned client is validated in the app: the chain fails.
    refused(
        client, app, cert, "chain_invalid", caplog, headers={"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"}
    )


def test_proxy_verification(client, make_app, mtls_settings, caplog):
    other_ca = pki.make_ca("Proxy-trusted CA")
    cert = pki.issue(pki.name(CN="x"), issuer=other_ca, dns=("client-one.example.com",))
    mtls_settings.OAUTH2_MTLS = {**mtls_settings.OAUTH2_MTLS, "TRUST_PROXY_VERIFICATION": True}
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    ok = token_request(client, app, cert, headers={"HTTP_X_SSL_CLIENT_VERIFY": "SUCCESS"})
    assert ok.status_code == 200
    refused(
        client,
        app,
        cert,
        "chain_invalid",
        caplog,
        headers={"HTTP_X_SSL_CLIENT_VERIFY": "FAILED:self-signed"},
    )


# --- other grants and endpoints --------------------------------------------------------------


def test_authorization_code_and_refresh_grants(
    client, make_app, mtls_settings, client_cert, user, caplog
):
    from tests.integration.conftest import authorization_code

    app = make_app(
        tls_client_auth_san_dns="client-one.example.com", grant_type="authorization-code"
    )
    code, verifier = authorization_code(client, app, user)
    data = code_grant(code, verifier)
    response = token_request(client, app, client_cert, data=data)
    assert response.status_code == 200, response.content
    refresh = {"grant_type": "refresh_token", "refresh_token": response.json()["refresh_token"]}
    refused(client, app, None, "no_certificate", caplog, data=refresh)
    refreshed = token_request(client, app, client_cert, data=refresh)
    assert refreshed.status_code == 200, refreshed.content


def test_introspection_by_certificate(client, make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = token_request(client, app, client_cert).json()["access_token"]
    response = post_form(
        client,
        "/o/introspect/",
        {"token": token, "client_id": app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert response.status_code == 200
    assert response.json()["active"] is True and response.json()["client_id"] == app.client_id


def test_introspection_refusal_is_401_json_R7662_2_3(client, make_app, mtls_settings, client_cert):
    app = make_app(tls_client_auth_san_dns="client-two.example.com")
    response = post_form(
        client,
        "/o/introspect/",
        {"token": "x", "client_id": app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "subject registered" in response.json()["error_description"]
    anonymous = post_form(client, "/o/introspect/", {"token": "x"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"


def test_introspection_with_bad_bearer_is_401_challenge(client, db):
    response = post_form(client, "/o/introspect/", {"token": "x"}, HTTP_AUTHORIZATION="Bearer nope")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_revocation_by_certificate(client, make_app, mtls_settings, client_cert, caplog):
    from oauth2_provider.models import get_access_token_model

    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token = token_request(client, app, client_cert).json()["access_token"]
    body = {"token": token, "client_id": app.client_id}
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        denied = post_form(client, "/o/revoke_token/", body, REMOTE_ADDR="127.0.0.1")
    assert denied.status_code == 401 and denied.json()["error"] == "invalid_client"
    assert get_access_token_model().objects.filter(application=app).exists()
    ok = post_form(
        client,
        "/o/revoke_token/",
        body,
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=client_cert.nginx(),
    )
    assert ok.status_code == 200
    assert not get_access_token_model().objects.filter(application=app).exists()


def test_query_count_at_most_one_more_than_client_secret_basic(
    client, make_app, mtls_settings, client_cert
):
    secret_app = make_app(None)
    mtls_app = make_app(tls_client_auth_san_dns="client-one.example.com")
    token_request(client, mtls_app, client_cert)  # warm the validation cache and the trust store
    with CaptureQueriesContext(connection) as dot:
        response = post_form(
            client,
            "/o/token/",
            {"grant_type": "client_credentials"},
            HTTP_AUTHORIZATION=basic(secret_app.client_id, SECRET),
        )
    assert response.status_code == 200
    with CaptureQueriesContext(connection) as ours:
        assert token_request(client, mtls_app, client_cert).status_code == 200
    assert len(ours) <= len(dot) + 1, [q["sql"] for q in ours]


def test_device_code_grant_client_authentication(
    client, make_app, mtls_settings, client_cert, caplog
):
    """RFC 8628 polling authenticates the client like the other grants (oauthlib 4 calls
    validate_client_authentication first), checked here on the validator directly; the whole
    flow through the endpoints is in test_device_flow.py (DOT 3.4.1 alone cannot finish it with
    oauthlib 4.0.1: no validate_device_code, and its device-authorization view crashes on
    "scope")."""
    from oauthlib.common import Request
    from oauthlib.oauth2.rfc6749.errors import InvalidClientError

    from django_oauth_mtls.oauth2_validators import MTLSOAuth2Validator

    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        grant_type="urn:ietf:params:oauth:grant-type:device_code",
    )
    body = f"grant_type=urn:ietf:params:oauth:grant-type:device_code&device_code=x&client_id={app.client_id}"
    headers = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_SSL_CLIENT_CERT": client_cert.nginx()}
    request = Request("https://testserver/o/token/", "POST", body, headers)
    assert MTLSOAuth2Validator().authenticate_client(request) is True
    assert request.client.client_id == app.client_id
    bare = Request("https://testserver/o/token/", "POST", body, {"REMOTE_ADDR": "127.0.0.1"})
    with pytest.raises(InvalidClientError, match="requires a client certificate"):
        MTLSOAuth2Validator().authenticate_client(bare)
