"""ClientCertificate from DER/PEM: thumbprints, subjects, SANs (RFC 8705 §3.1, vectors)."""

from __future__ import annotations

import ipaddress

import pytest

from django_oauth_mtls.certificates import (
    certificate_from_der,
    der_from_pem,
    ders_from_pem,
    x5t_s256,
)
from django_oauth_mtls.exceptions import IntakeError
from tests import pki
from tests.vectors import loader


def test_rfc8705_appendix_a_thumbprint_R8705_3_1_1():
    der = der_from_pem(loader.text("rfc8705-appendix-a.pem").encode())
    cert = certificate_from_der(der)
    assert cert.x5t_s256 == "A4DtL2JmUMhAsvJj5tKyn64SqzmuXbMrJa0n761y5v0"
    assert cert.x5t_s256 == loader.expected()["rfc8705-appendix-a.pem"]["x5t#S256"]
    assert len(cert.x5t_s256) == 43 and "=" not in cert.x5t_s256
    assert cert.subject == "CN=mtls"
    # X.509 v1, expired 2022: the intake does not judge versions or dates.
    assert cert.certificate is not None and cert.certificate.version.name == "v1"
    assert cert.san_dns == ()


def test_rfc9440_appendix_a_chain():
    ders = ders_from_pem(loader.text("rfc9440-appendix-a-chain.pem").encode())
    expected = loader.expected()["rfc9440-appendix-a-chain.pem"]
    assert [x5t_s256(d) for d in ders] == [e["x5t#S256"] for e in expected]
    assert [certificate_from_der(d).subject for d in ders] == [e["subject"] for e in expected]
    leaf = certificate_from_der(ders[0], tuple(ders[1:]))
    assert leaf.san_email == ("bdc@example.com",)
    assert leaf.chain == tuple(ders[1:])


def test_sans_are_extracted(client_cert: pki.Issued):
    cert = certificate_from_der(client_cert.der)
    assert cert.x5t_s256 == client_cert.x5t_s256
    assert cert.subject == "CN=client-one,O=Example\\, Inc.,C=DE"
    assert cert.san_dns == ("client-one.example.com",)
    assert cert.san_uri == ("spiffe://example.org/client-one",)
    assert cert.san_email == ("ops@example.com",)
    assert cert.san_ip == (ipaddress.ip_address("192.0.2.10"), ipaddress.ip_address("2001:db8::1"))
    assert cert.not_before == pki.NOT_BEFORE and cert.not_after == pki.NOT_AFTER
    assert cert.not_before.tzinfo is not None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "malformed"),
        (b"hello", "malformed"),
        (b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n", "malformed"),
        (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\njunk", "malformed"),
        (b"junk-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "malformed"),
    ],
)
def test_bad_pem(data: bytes, code: str):
    with pytest.raises(IntakeError) as info:
        der_from_pem(data)
    assert info.value.code == code


def test_two_pem_blocks_where_one_is_expected(client_cert: pki.Issued, root_ca: pki.Issued):
    with pytest.raises(IntakeError, match="2 PEM blocks"):
        der_from_pem((client_cert.pem + root_ca.pem).encode())


@pytest.mark.parametrize("der", [b"", b"\x30\x03\x02\x01\x00", b"\x00" * 50])
def test_not_a_certificate(der: bytes):
    with pytest.raises(IntakeError) as info:
        certificate_from_der(der)
    assert info.value.code == "not_a_certificate"


def test_truncated_certificate(client_cert: pki.Issued):
    with pytest.raises(IntakeError) as info:
        certificate_from_der(client_cert.der[:-10])
    assert info.value.code == "not_a_certificate"


def test_chain_member_must_be_a_certificate(client_cert: pki.Issued):
    with pytest.raises(IntakeError) as info:
        certificate_from_der(client_cert.der, (b"garbage",))
    assert info.value.code == "not_a_certificate"


def test_unknown_reason_code_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown intake reason"):
        IntakeError("nope")
