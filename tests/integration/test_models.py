"""MTLSClient validation: the exactly-one rule, stale fields, method/client-type rules (P6)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from oauth2_provider.models import get_application_model

from django_oauth_mtls.models import MTLSClient, normalise_spki_pin
from django_oauth_mtls.validation import spki_sha256
from tests import pki

pytestmark = pytest.mark.django_db


def app(client_type="confidential"):
    return get_application_model().objects.create(
        name="a", client_type=client_type, authorization_grant_type="client-credentials"
    )


def errors_of(row: MTLSClient) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as info:
        row.full_clean()
    return info.value.message_dict


def test_tls_client_auth_needs_exactly_one_subject_field():
    none = MTLSClient(application=app(), token_endpoint_auth_method="tls_client_auth")
    assert "exactly one" in errors_of(none)["__all__"][0]
    two = MTLSClient(
        application=app(),
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="a.example",
        tls_client_auth_san_email="a@example.com",
    )
    assert "found 2" in errors_of(two)["__all__"][0]


def test_bad_registered_values_are_refused():
    bad_ip = MTLSClient(
        application=app(),
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_ip="010.0.0.1",
    )
    assert "tls_client_auth_san_ip" in errors_of(bad_ip)
    bad_dn = MTLSClient(
        application=app(),
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_subject_dn="no-equals",
    )
    assert "tls_client_auth_subject_dn" in errors_of(bad_dn)


def test_stale_fields_cleared_when_the_method_changes():
    row = MTLSClient(
        application=app(),
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="a.example",
    )
    row.full_clean()
    row.save()
    row.token_endpoint_auth_method = "client_secret_basic"
    row.save()
    row.refresh_from_db()
    assert row.tls_client_auth_san_dns == ""


def test_mtls_methods_require_confidential_clients():
    row = MTLSClient(
        application=app("public"),
        token_endpoint_auth_method="tls_client_auth",
        tls_client_auth_san_dns="a.example",
    )
    assert "confidential" in errors_of(row)["token_endpoint_auth_method"][0]


def test_none_requires_a_public_client():
    row = MTLSClient(application=app("confidential"), token_endpoint_auth_method="none")
    assert "public" in errors_of(row)["token_endpoint_auth_method"][0]
    MTLSClient(application=app("public"), token_endpoint_auth_method="none").full_clean()


def test_self_signed_needs_one_jwk_set_source():
    row = MTLSClient(application=app(), token_endpoint_auth_method="self_signed_tls_client_auth")
    assert "jwks" in errors_of(row)
    both = MTLSClient(
        application=app(),
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks={"keys": []},
        jwks_uri="https://client.example/jwks",
    )
    assert "jwks_uri" in errors_of(both)
    http = MTLSClient(
        application=app(),
        token_endpoint_auth_method="self_signed_tls_client_auth",
        jwks_uri="http://x.example/j",
    )
    assert "https" in errors_of(http)["jwks_uri"][0]


def test_trust_pin_forms(root_ca):
    digest = spki_sha256(root_ca.cert)
    expected = normalise_spki_pin(digest.hex())
    assert len(expected) == 43
    assert normalise_spki_pin(root_ca.pem) == expected
    assert normalise_spki_pin(":".join(f"{b:02X}" for b in digest)) == expected
    assert normalise_spki_pin(expected) == expected
    with pytest.raises(ValidationError):
        normalise_spki_pin("abc")


def test_deleting_the_application_deletes_the_row():
    a = app()
    MTLSClient.objects.create(application=a, token_endpoint_auth_method="client_secret_basic")
    a.delete()
    assert not MTLSClient.objects.exists()


def test_ec_key_below_p256_is_weak():
    from cryptography.hazmat.primitives.asymmetric import ec

    from django_oauth_mtls.exceptions import ClientAuthError
    from django_oauth_mtls.validation import check_key_strength

    weak = pki.issue(pki.name(CN="weak"), key=ec.generate_private_key(ec.SECP224R1()))
    with pytest.raises(ClientAuthError) as info:
        check_key_strength(weak.cert, 2048)
    assert info.value.code == "weak_key"
    check_key_strength(pki.issue(pki.name(CN="ok")).cert, 2048)
