"""RFC 8705 §2.1.2 subject matching: DNs (R8705-2.1-4, P1–P3) and SANs (R8705-2.1.2-3…6, P4, P5).

Tables first: each row is a registered value, what the certificate carries and the expected
outcome, with the reason in its id.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from django_oauth_mtls.certificates import certificate_from_der
from django_oauth_mtls.matching import (
    SUBJECT_FIELDS,
    RegisteredValueError,
    certificate_matches,
    normalise_registered_value,
    parse_dn,
    san_dns_matches,
    san_email_matches,
    san_ip_matches,
    san_uri_matches,
    subject_dn_matches,
)
from tests import pki

OID = x509.ObjectIdentifier
UNIQUE_ID = NameOID.X500_UNIQUE_IDENTIFIER
JURISDICTION_C = OID("1.3.6.1.4.1.311.60.2.1.3")


def attr(oid: x509.ObjectIdentifier, value, asn1: _ASN1Type | None = None) -> x509.NameAttribute:
    return x509.NameAttribute(oid, value, _type=asn1) if asn1 else x509.NameAttribute(oid, value)


def dn(*rdns) -> x509.Name:
    """Build a Name in DER order; a tuple is a multi-valued RDN."""
    return x509.Name(
        [x509.RelativeDistinguishedName(r if isinstance(r, tuple) else (r,)) for r in rdns]
    )


# DER order C, O, CN → RFC 4514 "CN=client-one,O=Example\, Inc.,C=DE" (the conftest client).
BASIC = pki.name(C="DE", O="Example, Inc.", CN="client-one")
MULTI = dn(
    attr(NameOID.COUNTRY_NAME, "DE"),
    (attr(NameOID.COMMON_NAME, "a"), attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "b")),
)
REPEATED_OU = dn(
    attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "x"),
    attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "x"),
    attr(NameOID.COMMON_NAME, "a"),
)
TWO_OUS = dn(
    attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "x"),
    attr(NameOID.ORGANIZATIONAL_UNIT_NAME, "y"),
    attr(NameOID.COMMON_NAME, "a"),
)
# Open Banking Brasil style (UID, 2.5.4.97, serialNumber, businessCategory, jurisdiction C).
BRASIL = dn(
    attr(NameOID.COUNTRY_NAME, "BR"),
    attr(NameOID.ORGANIZATION_NAME, "ICP-Brasil"),
    attr(JURISDICTION_C, "BR"),
    attr(NameOID.BUSINESS_CATEGORY, "Private Organization"),
    attr(NameOID.SERIAL_NUMBER, "12345678000190"),
    attr(NameOID.ORGANIZATION_IDENTIFIER, "OFBBR-74e929d9"),
    attr(NameOID.COMMON_NAME, "tpp.example.com.br"),
    attr(NameOID.USER_ID, "b8ec6a4c-6e42-4a4a-9f5d-3c1d1c2d3e4f"),
)
EIDAS = dn(
    attr(NameOID.COUNTRY_NAME, "DE"),
    attr(NameOID.ORGANIZATION_NAME, "Example Bank AG"),
    attr(NameOID.ORGANIZATION_IDENTIFIER, "PSDDE-BAFIN-123456"),
    attr(NameOID.COMMON_NAME, "tpp.example"),
)
MISC = dn(
    attr(NameOID.DOMAIN_COMPONENT, "org"),
    attr(NameOID.DOMAIN_COMPONENT, "example"),
    attr(NameOID.EMAIL_ADDRESS, "ops@example.org"),
    attr(NameOID.STATE_OR_PROVINCE_NAME, "Berlin"),
    attr(NameOID.LOCALITY_NAME, "Berlin"),
    attr(NameOID.STREET_ADDRESS, "Hauptstraße 1"),
    attr(NameOID.POSTAL_CODE, "10115"),
    attr(NameOID.GIVEN_NAME, "Ada"),
    attr(NameOID.SURNAME, "Lovelace"),
    attr(NameOID.TITLE, "Countess"),
)


def cn(value: str) -> x509.Name:
    return dn(attr(NameOID.COUNTRY_NAME, "DE"), attr(NameOID.COMMON_NAME, value))


# (registered, subject, matches with match_order=False, matches with match_order=True)
DN_CASES = [
    # --- R8705-2.1-4: attribute by attribute, not string equality ---
    pytest.param(r"CN=client-one,O=Example\, Inc.,C=DE", BASIC, True, True, id="exact"),
    pytest.param(r"cn=client-one,o=Example\, Inc.,c=DE", BASIC, True, True, id="lower-types"),
    pytest.param(r"Cn=client-one,o=Example\, Inc.,C=DE", BASIC, True, True, id="mixed-types"),
    pytest.param(r"CN = client-one, O = Example\, Inc. , C = DE", BASIC, True, True, id="spaces"),
    pytest.param(r"  CN=client-one,O=Example\, Inc.,C=DE  ", BASIC, True, True, id="outer-spaces"),
    pytest.param(r"CN=CLIENT-ONE,O=example\, INC.,C=de", BASIC, True, True, id="value-case"),
    pytest.param(r"CN=client-one,O=Example\,   Inc.,C=DE", BASIC, True, True, id="inner-ws-runs"),
    pytest.param(r"CN=client-one;O=Example\, Inc.;C=DE", BASIC, True, True, id="semicolons"),
    pytest.param('CN=client-one,O="Example, Inc.",C=DE', BASIC, True, True, id="rfc2253-quoted"),
    pytest.param(r"CN=client-one,O=Example\2C Inc.,C=DE", BASIC, True, True, id="hex-comma"),
    pytest.param(r"CN=client-one,O=Example\2c Inc.,C=DE", BASIC, True, True, id="hex-lower"),
    pytest.param(r"CN=client-one,O=Example, Inc.,C=DE", BASIC, False, False, id="bare-comma"),
    pytest.param(
        "2.5.4.3=client-one,2.5.4.10=Example\\, Inc.,2.5.4.6=DE", BASIC, True, True, id="oids"
    ),
    pytest.param(
        "OID.2.5.4.3=client-one,O=Example\\, Inc.,C=DE", BASIC, True, True, id="oid-prefix"
    ),
    pytest.param("2.5.4.03=client-one,O=Example\\, Inc.,C=DE", BASIC, True, True, id="oid-zero"),
    pytest.param(
        r"commonName=client-one,organizationName=Example\, Inc.,countryName=DE",
        BASIC,
        True,
        True,
        id="long-names",
    ),
    # --- P1: RDN order ---
    pytest.param(r"C=DE,O=Example\, Inc.,CN=client-one", BASIC, True, False, id="P1-der-order"),
    pytest.param(r"O=Example\, Inc.,CN=client-one,C=DE", BASIC, True, False, id="P1-permuted"),
    # --- negative: the RDN multisets differ ---
    pytest.param(r"CN=client-one,O=Example\, Inc.", BASIC, False, False, id="cert-has-extra-rdn"),
    pytest.param(
        r"CN=client-one,OU=Ops,O=Example\, Inc.,C=DE", BASIC, False, False, id="cert-lacks-rdn"
    ),
    pytest.param(
        r"CN=client-one,O=Example\, Inc.,C=DE,C=DE", BASIC, False, False, id="repeated-rdn"
    ),
    pytest.param(
        r"OU=client-one,O=Example\, Inc.,C=DE", BASIC, False, False, id="other-type-same-value"
    ),
    pytest.param(r"CN=client-two,O=Example\, Inc.,C=DE", BASIC, False, False, id="other-value"),
    pytest.param(r"CN=client,O=Example\, Inc.,C=DE", BASIC, False, False, id="prefix-value"),
    pytest.param(
        r"CN=client-one,O=Example Inc.,C=DE", BASIC, False, False, id="punctuation-matters"
    ),
    pytest.param(r"CN=clientone,O=Example\, Inc.,C=DE", BASIC, False, False, id="no-ws-removal"),
    pytest.param(r"CN=client-one,O=Example\, Inc.,X=DE", BASIC, False, False, id="unknown-type"),
    pytest.param(r"CN=client-one+O=Example\, Inc.,C=DE", BASIC, False, False, id="merged-rdn"),
    # --- multi-valued RDNs compare as sets ---
    pytest.param("CN=a+OU=b,C=DE", MULTI, True, True, id="multi"),
    pytest.param("OU=b+CN=a,C=DE", MULTI, True, True, id="multi-swapped"),
    pytest.param("ou = B + cn = A , c = de", MULTI, True, True, id="multi-spaces-case"),
    pytest.param("C=DE,OU=b+CN=a", MULTI, True, False, id="multi-der-order"),
    pytest.param("CN=a,OU=b,C=DE", MULTI, False, False, id="multi-split"),
    pytest.param("CN=a+OU=b+O=c,C=DE", MULTI, False, False, id="multi-extra"),
    pytest.param("CN=a,C=DE", MULTI, False, False, id="multi-partial"),
    # --- equal counts, not containment (stricter than the suite's count + containsAll) ---
    pytest.param("CN=a,OU=x,OU=x", REPEATED_OU, True, True, id="repeated-both"),
    pytest.param("CN=a,OU=x", REPEATED_OU, False, False, id="repeated-in-cert"),
    pytest.param("CN=a,OU=y,OU=x", REPEATED_OU, False, False, id="repeated-vs-distinct"),
    pytest.param("CN=a,OU=x,OU=x", TWO_OUS, False, False, id="distinct-vs-repeated"),
    # --- OIDs and the attribute-name map ---
    pytest.param(
        "UID=b8ec6a4c-6e42-4a4a-9f5d-3c1d1c2d3e4f,CN=tpp.example.com.br,"
        "2.5.4.97=OFBBR-74e929d9,serialNumber=12345678000190,"
        "businessCategory=Private Organization,jurisdictionC=BR,O=ICP-Brasil,C=BR",
        BRASIL,
        True,
        True,
        id="brasil-names",
    ),
    pytest.param(
        "uid=B8EC6A4C-6E42-4A4A-9F5D-3C1D1C2D3E4F, cn=tpp.example.com.br, "
        "organizationIdentifier=ofbbr-74e929d9, SERIALNUMBER=12345678000190, "
        "2.5.4.15=private organization, jurisdictionCountryName=br, o=icp-brasil, c=br",
        BRASIL,
        True,
        True,
        id="brasil-alt-names",
    ),
    pytest.param(
        "C=BR,O=ICP-Brasil,1.3.6.1.4.1.311.60.2.1.3=BR,2.5.4.15=Private Organization,"
        "2.5.4.5=12345678000190,2.5.4.97=OFBBR-74e929d9,2.5.4.3=tpp.example.com.br,"
        "0.9.2342.19200300.100.1.1=b8ec6a4c-6e42-4a4a-9f5d-3c1d1c2d3e4f",
        BRASIL,
        True,
        False,
        id="brasil-oids-der-order",
    ),
    pytest.param(
        "UID=b8ec6a4c-6e42-4a4a-9f5d-3c1d1c2d3e4f,CN=tpp.example.com.br,"
        "2.5.4.97=OFBBR-74e929d9,SN=12345678000190,"
        "businessCategory=Private Organization,jurisdictionC=BR,O=ICP-Brasil,C=BR",
        BRASIL,
        False,
        False,
        id="SN-is-surname-not-serialNumber",
    ),
    pytest.param(
        "UID=b8ec6a4c-6e42-4a4a-9f5d-3c1d1c2d3e4f,CN=tpp.example.com.br,"
        "2.5.4.97=OFBBR-74e929d9,serialNumber=12345678000190,"
        "businessCategory=Private Organization,C=BR,O=ICP-Brasil,C=BR",
        BRASIL,
        False,
        False,
        id="jurisdictionC-is-not-C",
    ),
    pytest.param(
        "CN=tpp.example,organizationIdentifier=PSDDE-BAFIN-123456,O=Example Bank AG,C=DE",
        EIDAS,
        True,
        True,
        id="eidas",
    ),
    pytest.param(
        "CN=tpp.example,2.5.4.97=PSDDE-BAFIN-654321,O=Example Bank AG,C=DE",
        EIDAS,
        False,
        False,
        id="eidas-other-id",
    ),
    pytest.param(
        "title=Countess,SN=Lovelace,GN=Ada,postalCode=10115,STREET=Hauptstraße 1,L=Berlin,"
        "S=Berlin,E=ops@example.org,DC=example,DC=org",
        MISC,
        True,
        True,
        id="misc-short",
    ),
    pytest.param(
        "title=COUNTESS,surname=lovelace,givenName=ada,2.5.4.17=10115,"
        "streetAddress=HAUPTSTRASSE 1,localityName=berlin,ST=berlin,"
        "emailAddress=OPS@example.org,domainComponent=EXAMPLE,dc=ORG",
        MISC,
        True,
        True,
        id="misc-long-casefold",
    ),
    pytest.param(
        "title=Countess,SN=Lovelace,GN=Ada,postalCode=10115,STREET=Hauptstraße 1,L=Berlin,"
        "ST=Berlin,EMAIL=ops@example.org,DC=org,DC=example",
        MISC,
        True,
        False,
        id="misc-dc-order",
    ),
    # --- escapes (RFC 4514 §2.4, §3) ---
    pytest.param(r"CN=a\,b\+c,C=DE", cn("a,b+c"), True, True, id="esc-comma-plus"),
    pytest.param(r"CN=a\2Cb\2Bc,C=DE", cn("a,b+c"), True, True, id="esc-hex-comma-plus"),
    pytest.param('CN="a,b+c",C=DE', cn("a,b+c"), True, True, id="esc-quoted"),
    pytest.param(r"CN=\"q\",C=DE", cn('"q"'), True, True, id="esc-dquote"),
    pytest.param(r"CN=a\\b,C=DE", cn("a\\b"), True, True, id="esc-backslash"),
    pytest.param(r"CN=\<a\>\;\=,C=DE", cn("<a>;="), True, True, id="esc-angles-semicolon-eq"),
    pytest.param(r"CN=<a>=,C=DE", cn("<a>="), True, True, id="lenient-unescaped"),
    pytest.param(r"CN=\#lead,C=DE", cn("#lead"), True, True, id="esc-leading-hash"),
    pytest.param(r"CN=a#b,C=DE", cn("a#b"), True, True, id="inner-hash"),
    pytest.param(r"CN=\ lead\ ,C=DE", cn(" lead "), True, True, id="esc-lead-trail-space"),
    pytest.param(r"CN=lead,C=DE", cn(" lead "), True, True, id="spaces-are-insignificant"),
    pytest.param(r"CN=\C3\A9t\C3\A9,C=DE", cn("été"), True, True, id="esc-utf8"),
    pytest.param(r"CN=\c3\a9T\c3\a9,C=DE", cn("ÉTÉ"), True, True, id="esc-utf8-lower-casefold"),
    pytest.param(r"CN=Ünïcödé,C=DE", cn("ünïcödé"), True, True, id="unicode-case"),
    pytest.param(r"CN=STRASSE,C=DE", cn("straße"), True, True, id="casefold-not-lower"),
    pytest.param(r"CN=\E2\98\83,C=DE", cn("☃"), True, True, id="esc-utf8-3-bytes"),
    pytest.param(r"CN=#lead,C=DE", cn("#lead"), False, False, id="bare-hash-is-hex"),
    pytest.param(r"CN=a\qb,C=DE", cn("aqb"), False, False, id="bad-escape"),
    pytest.param(r"CN=\FF,C=DE", cn("ÿ"), False, False, id="escape-not-utf8"),
    # --- #hex BER values (RFC 4514 §2.4) and string types (P3) ---
    pytest.param(
        "CN=#0C0A636C69656E742D6F6E65,O=Example\\, Inc.,C=DE", BASIC, True, True, id="hex-utf8"
    ),
    pytest.param(
        "CN=#130a636c69656e742d6f6e65,O=Example\\, Inc.,C=DE", BASIC, True, True, id="hex-printable"
    ),
    pytest.param(
        "CN=#160a636c69656e742d6f6e65,O=Example\\, Inc.,C=DE", BASIC, True, True, id="hex-ia5"
    ),
    pytest.param(
        "CN=#1e14" + "client-one".encode("utf-16-be").hex() + ",O=Example\\, Inc.,C=DE",
        BASIC,
        True,
        True,
        id="hex-bmp",
    ),
    pytest.param(
        "CN=#1c28" + "client-one".encode("utf-32-be").hex() + ",O=Example\\, Inc.,C=DE",
        BASIC,
        True,
        True,
        id="hex-universal",
    ),
    pytest.param("CN=#1401e9,C=DE", cn("é"), True, True, id="hex-teletex-latin1"),
    pytest.param("CN=#1402c3a9,C=DE", cn("é"), True, True, id="hex-teletex-utf8"),
    pytest.param("CN=#0c03414243 , C=DE", cn("abc"), True, True, id="hex-then-space"),
    pytest.param("CN=#0c03616263,C=DE", cn("abd"), False, False, id="hex-other-text"),
    pytest.param("CN=#0c04616263,C=DE", cn("abc"), False, False, id="hex-bad-length"),
    pytest.param("CN=#0c0361626,C=DE", cn("abc"), False, False, id="hex-odd-digits"),
    pytest.param("CN=#0c02c328,C=DE", cn("é"), False, False, id="hex-bad-utf8"),
    pytest.param("CN=#0403616263,C=DE", cn("abc"), False, False, id="hex-octet-string"),
    pytest.param("CN=#0c03616263x,C=DE", cn("abc"), False, False, id="hex-trailing-junk"),
    pytest.param(
        "O=#0c8182" + ("x" * 130).encode().hex() + ",C=DE",
        dn(attr(NameOID.COUNTRY_NAME, "DE"), attr(NameOID.ORGANIZATION_NAME, "X" * 130)),
        True,
        True,
        id="hex-long-form-length",
    ),
    pytest.param(
        "2.5.4.45=#00abcd,CN=a",
        dn(attr(NameOID.COMMON_NAME, "a"), attr(UNIQUE_ID, b"\x00\xab\xcd", _ASN1Type.BitString)),
        True,
        True,
        id="hex-bitstring-content",
    ),
    pytest.param(
        "2.5.4.45=#030300ABCD,CN=a",
        dn(attr(NameOID.COMMON_NAME, "a"), attr(UNIQUE_ID, b"\x00\xab\xcd", _ASN1Type.BitString)),
        True,
        True,
        id="hex-bitstring-der",
    ),
    pytest.param(
        "2.5.4.45=#00abce,CN=a",
        dn(attr(NameOID.COMMON_NAME, "a"), attr(UNIQUE_ID, b"\x00\xab\xcd", _ASN1Type.BitString)),
        False,
        False,
        id="hex-bitstring-other",
    ),
    pytest.param(
        r"2.5.4.45=\#00abcd,CN=a",
        dn(attr(NameOID.COMMON_NAME, "a"), attr(UNIQUE_ID, b"\x00\xab\xcd", _ASN1Type.BitString)),
        False,
        False,
        id="escaped-hash-is-text-not-bytes",
    ),
    pytest.param(
        r"1.3.6.1.4.1.99999.1=\#00abcd",
        dn(attr(OID("1.3.6.1.4.1.99999.1"), "#00abcd")),
        True,
        True,
        id="text-that-looks-like-hex",
    ),
    # --- malformed registered DNs match nothing ---
    pytest.param("", BASIC, False, False, id="empty"),
    pytest.param("CN=client-one,", BASIC, False, False, id="trailing-comma"),
    pytest.param('CN="client-one,C=DE', cn("client-one"), False, False, id="unterminated-quote"),
    pytest.param("client-one", BASIC, False, False, id="no-type"),
    pytest.param("3.1=x", cn("x"), False, False, id="bad-oid"),
]


@pytest.mark.parametrize(("registered", "subject", "unordered", "ordered"), DN_CASES)
def test_subject_dn_table_R8705_2_1_4(registered, subject, unordered, ordered):
    """R8705-2.1-4 / P1–P3: a predictable DN comparison, with and without SUBJECT_DN_MATCH_ORDER."""
    assert subject_dn_matches(registered, subject) is unordered
    assert subject_dn_matches(registered, subject, match_order=False) is unordered
    assert subject_dn_matches(registered, subject, match_order=True) is ordered


def test_the_rfc4514_string_of_a_subject_matches_it_in_both_modes():
    for _registered, subject, *_ in (case.values for case in DN_CASES):
        registered = subject.rfc4514_string()
        assert subject_dn_matches(registered, subject)
        assert subject_dn_matches(registered, subject, match_order=True)


def test_parse_dn_shape():
    """RDNs in the string's order; (OID, normalised value) pairs; multi-valued RDNs as sets."""
    assert parse_dn(r"cn=Client  One + OU=Ops, O=Example\, Inc., 2.5.4.6=de") == (
        frozenset({("2.5.4.3", "client one"), ("2.5.4.11", "ops")}),
        frozenset({("2.5.4.10", "example, inc.")}),
        frozenset({("2.5.4.6", "de")}),
    )
    # Text that starts with '#' or '\' never looks like a #hex value.
    assert parse_dn(r"CN=\#0c") == (frozenset({("2.5.4.3", "\\#0c")}),)
    assert parse_dn("CN=#0c") == (frozenset({("2.5.4.3", "#0c")}),)
    assert parse_dn(r"CN=\\x") == (frozenset({("2.5.4.3", "\\\\x")}),)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "CN",
        "CN=a,",
        ",CN=a",
        "CN=a,,O=b",
        "CN=a+",
        "=a",
        "foo=bar",
        "x-y=z",
        "CN=a\\",
        "CN=a\\q",
        "CN=a\\4",
        "CN=#zz",
        "CN=#",
        "CN=#0c0",
        "CN=\\FF",
        'CN="a',
        'CN="a"b',
        "CN=a+CN=a",
        "CN=a+cn=A",
        "3.1=x",
        "1.40=x",
        "2.5.4.3.=x",
        "OID.=x",
        "CN:a",
        "CN=a\ud800",
        "1." + "9" * 5000 + "=x",  # past int()'s digit limit: still a RegisteredValueError
    ],
)
def test_parse_dn_rejects_with_registered_value_error(text):
    with pytest.raises(RegisteredValueError):
        parse_dn(text)


def test_dotted_oids_are_canonical():
    assert parse_dn("2.05.004.3=x") == parse_dn("2.5.4.3=x") == parse_dn("oid.2.5.4.3=x")
    huge = "2." + "9" * 4000  # arcs stay strings; a registered DN is at most 4,096 characters
    assert parse_dn(f"{huge}=x") == (frozenset({(huge, "x")}),)


def test_parse_dn_rejects_non_strings():
    for value in (None, 42, b"CN=a", ["CN=a"]):
        with pytest.raises(RegisteredValueError):
            parse_dn(value)  # type: ignore[arg-type]


def test_collapsing_certificate_rdn_fails_closed():
    """An RDN whose values are equal after folding (CN=a+CN=A) cannot be told apart: no match."""
    subject = dn((attr(NameOID.COMMON_NAME, "a"), attr(NameOID.COMMON_NAME, "A")))
    assert not subject_dn_matches("CN=a", subject)
    assert not subject_dn_matches("CN=a+CN=A", subject)


# --- through real certificates (DER round trip) ------------------------------------------------


def client(subject: x509.Name, **kwargs):
    return certificate_from_der(pki.issue(subject, **kwargs).der)


@pytest.mark.parametrize(
    "asn1",
    [
        _ASN1Type.PrintableString,
        _ASN1Type.UTF8String,
        _ASN1Type.BMPString,
        _ASN1Type.UniversalString,
        _ASN1Type.IA5String,
        _ASN1Type.T61String,
    ],
)
def test_string_types_compare_as_text_P3(asn1):
    """P3: the same text as PrintableString, UTF8String, BMPString, … matches the same DN."""
    certificate = client(
        dn(
            attr(NameOID.COUNTRY_NAME, "DE", _ASN1Type.PrintableString),
            attr(NameOID.ORGANIZATION_NAME, "Example Inc", asn1),
            attr(NameOID.COMMON_NAME, "client-one", asn1),
        )
    )
    for registered in ("CN=client-one,O=Example Inc,C=DE", "cn=CLIENT-ONE, o=example inc, c=de"):
        assert certificate_matches(certificate, "tls_client_auth_subject_dn", registered)
        assert certificate_matches(
            certificate, "tls_client_auth_subject_dn", registered, match_order=True
        )
    assert not certificate_matches(
        certificate, "tls_client_auth_subject_dn", "CN=client-one,O=Example Inc"
    )


def test_printable_and_utf8_hex_values_match_either_encoding_P3():
    printable = client(dn(attr(NameOID.COMMON_NAME, "abc", _ASN1Type.PrintableString)))
    utf8 = client(dn(attr(NameOID.COMMON_NAME, "abc", _ASN1Type.UTF8String)))
    for certificate in (printable, utf8):
        for registered in ("CN=#1303616263", "CN=#0c03616263", "CN=ABC"):
            assert certificate_matches(certificate, "tls_client_auth_subject_dn", registered)


def test_bitstring_attribute_through_der():
    certificate = client(
        dn(attr(NameOID.COMMON_NAME, "a"), attr(UNIQUE_ID, b"\x00\xab\xcd", _ASN1Type.BitString))
    )
    assert certificate.subject == "2.5.4.45=#00abcd,CN=a"
    for registered in (certificate.subject, "2.5.4.45=#030300abcd,cn=A"):
        assert certificate_matches(certificate, "tls_client_auth_subject_dn", registered)


def test_subject_not_issuer_R8705_2_1_2_2(root_ca, client_cert):
    certificate = certificate_from_der(client_cert.der)
    issuer = root_ca.cert.subject.rfc4514_string()
    assert not certificate_matches(certificate, "tls_client_auth_subject_dn", issuer)
    assert certificate_matches(
        certificate, "tls_client_auth_subject_dn", r"CN=client-one,O=Example\, Inc.,C=DE"
    )


def test_rotation_same_subject_other_key_matches_R8705_2_1_6(root_ca, client_cert):
    rotated = pki.issue(client_cert.cert.subject, issuer=root_ca)
    assert rotated.x5t_s256 != client_cert.x5t_s256
    assert certificate_matches(
        certificate_from_der(rotated.der),
        "tls_client_auth_subject_dn",
        "cn=client-one, o=Example\\, Inc., c=DE",
    )


def test_without_the_parsed_certificate_the_der_is_read(client_cert):
    certificate = dataclasses.replace(certificate_from_der(client_cert.der), certificate=None)
    assert certificate_matches(
        certificate, "tls_client_auth_subject_dn", "CN=client-one,O=Example\\, Inc.,C=DE"
    )
    broken = dataclasses.replace(certificate, der=b"\x30\x03junk")
    assert not certificate_matches(broken, "tls_client_auth_subject_dn", "CN=client-one")


# --- SANs --------------------------------------------------------------------------------------

DNS_CASES = [
    ("client-one.example.com", ["client-one.example.com"], True),
    ("CLIENT-ONE.Example.COM", ["client-one.example.com"], True),
    ("client-one.example.com", ["Client-One.EXAMPLE.com"], True),
    ("client-one.example.com.", ["client-one.example.com"], True),
    ("client-one.example.com", ["client-one.example.com."], True),
    (" client-one.example.com ", ["client-one.example.com"], True),
    ("client-one.example.com", ["other.example.com", "client-one.example.com"], True),
    ("client-one.example.com..", ["client-one.example.com"], False),
    ("example.com", ["client-one.example.com"], False),
    ("client-one.example.com", ["example.com"], False),
    ("one.example.com", ["client-one.example.com"], False),
    ("client-one.example.co", ["client-one.example.com"], False),
    # P5: no wildcard expansion, in either direction; '*' is compared literally.
    ("*.example.com", ["client-one.example.com"], False),
    ("client-one.example.com", ["*.example.com"], False),
    ("*.example.com", ["*.example.com"], True),
    ("*.EXAMPLE.com", ["*.example.com"], True),
    # ASCII case-insensitivity only: A-labels are ASCII; no Unicode case folding.
    ("ÉXAMPLE.com", ["éxample.com"], False),
    ("xn--bcher-kva.example", ["XN--BCHER-KVA.example"], True),
    ("", [""], False),
    (".", ["."], False),
    ("client-one.example.com", [], False),
]


@pytest.mark.parametrize(("registered", "values", "expected"), DNS_CASES)
def test_san_dns_table_R8705_2_1_2_3_P5(registered, values, expected):
    assert san_dns_matches(registered, values) is expected


URI_CASES = [
    ("spiffe://example.org/client-one", ["spiffe://example.org/client-one"], True),
    ("SPIFFE://EXAMPLE.ORG/client-one", ["spiffe://example.org/client-one"], True),
    ("spiffe://example.org/client-one", ["SPIFFE://Example.Org/client-one"], True),
    ("spiffe://example.org/Client-One", ["spiffe://example.org/client-one"], False),
    ("https://a.example/x", ["https://b.example/x", "https://a.example/x"], True),
    ("https://a.example:443/x", ["https://a.example/x"], False),  # default ports kept
    ("https://a.example/x", ["https://a.example:443/x"], False),
    ("https://a.example:8443/x", ["https://A.EXAMPLE:8443/x"], True),
    ("https://a.example", ["https://a.example/"], False),
    ("https://a.example/x?q=1", ["https://a.example/x?q=2"], False),
    ("https://a.example/x?Q=1", ["https://a.example/x?q=1"], False),
    ("https://a.example/x#f", ["https://a.example/x#F"], False),
    ("https://a.example/x#f", ["https://a.example/x#f"], True),
    ("https://User@a.example/", ["https://user@a.example/"], False),  # userinfo exact
    ("https://user@A.EXAMPLE/", ["https://user@a.example/"], True),
    ("https://a.example/%7Ex", ["https://a.example/~x"], False),  # no percent-decoding
    ("https://a.example/a/../b", ["https://a.example/b"], False),
    ("https://[2001:DB8::1]/", ["https://[2001:db8::1]/"], True),
    (
        "urn:uuid:0e5a5b3c-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        ["URN:uuid:0e5a5b3c-1a2b-4c3d-8e9f-0a1b2c3d4e5f"],
        True,
    ),
    (
        "urn:uuid:0E5A5B3C-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        ["urn:uuid:0e5a5b3c-1a2b-4c3d-8e9f-0a1b2c3d4e5f"],
        False,
    ),
    ("/client-one", ["/client-one"], False),  # relative: malformed for a SAN
    ("example.org/client-one", ["example.org/client-one"], False),
    ("http://[::1", ["http://[::1"], False),  # urlsplit raises: no match, no exception
    ("https://a.example/\nx", ["https://a.example/x"], False),  # urlsplit would drop the \n
    ("https://a.example/x", ["https://a.example/\tx"], False),
    ("https://a.example/ x", ["https://a.example/ x"], False),
    ("", [""], False),
]


@pytest.mark.parametrize(("registered", "values", "expected"), URI_CASES)
def test_san_uri_table_R8705_2_1_2_4_P5(registered, values, expected):
    assert san_uri_matches(registered, values) is expected


def ips(*texts: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    return [ipaddress.ip_address(text) for text in texts]


IP_CASES = [
    ("192.0.2.10", ips("192.0.2.10"), True),
    ("192.0.2.10", ips("2001:db8::1", "192.0.2.10"), True),
    ("192.0.2.11", ips("192.0.2.10"), False),
    # R8705-2.1.2-5: binary form (RFC 5952 §8).
    ("2001:db8::1:0:0:1", ips("2001:db8:0:0:1:0:0:1"), True),
    ("2001:db8:0:0:1:0:0:1", ips("2001:db8::1:0:0:1"), True),
    ("2001:0db8:0000:0000:0001:0000:0000:0001", ips("2001:db8::1:0:0:1"), True),
    ("::1", ips("0:0:0:0:0:0:0:1"), True),
    ("2001:DB8::1", ips("2001:db8::1"), True),
    ("2001:db8::1", ips("2001:db8::2"), False),
    # P4: IPv4-mapped IPv6 is 16 octets, IPv4 is 4: different addresses.
    ("::ffff:10.0.0.1", ips("10.0.0.1"), False),
    ("10.0.0.1", ips("::ffff:10.0.0.1"), False),
    ("::ffff:10.0.0.1", ips("::ffff:a00:1"), True),
    ("::", ips("0.0.0.0"), False),
    # P4: never addresses at all.
    ("fe80::1%eth0", ips("fe80::1"), False),
    ("10.0.0.0/8", ips("10.0.0.1"), False),
    ("10.0.0.1/32", ips("10.0.0.1"), False),
    ("010.0.0.1", ips("10.0.0.1"), False),
    ("010.0.0.1", ips("8.0.0.1"), False),
    ("10.1", ips("10.0.0.1"), False),
    ("", ips("0.0.0.0"), False),
    (" 192.0.2.10 ", ips("192.0.2.10"), True),
    ("192.0.2.10", [], False),
]


@pytest.mark.parametrize(("registered", "values", "expected"), IP_CASES)
def test_san_ip_table_R8705_2_1_2_5_P4(registered, values, expected):
    assert san_ip_matches(registered, values) is expected


EMAIL_CASES = [
    ("ops@example.com", ["ops@example.com"], True),
    ("ops@EXAMPLE.com", ["ops@example.com"], True),
    ("ops@example.com", ["ops@Example.COM"], True),
    ("OPS@example.com", ["ops@example.com"], False),  # P5: local part exact
    ("ops@example.com", ["Ops@example.com"], False),
    ("ops@example.org", ["ops@example.com"], False),
    ("ops@example.com", ["dev@example.com", "ops@example.com"], True),
    ('"a@b"@example.com', ['"a@b"@EXAMPLE.com'], True),  # the last '@' splits
    ("example.com", ["example.com"], False),
    ("@example.com", ["@example.com"], False),
    ("ops@", ["ops@"], False),
    ("ops@example.com", ["ops@sub.example.com"], False),
    ("", [""], False),
]


@pytest.mark.parametrize(("registered", "values", "expected"), EMAIL_CASES)
def test_san_email_table_R8705_2_1_2_6_P5(registered, values, expected):
    assert san_email_matches(registered, values) is expected


@pytest.mark.parametrize(
    ("field", "registered", "expected"),
    [
        ("tls_client_auth_subject_dn", r"cn=client-one, o=Example\, Inc., c=DE", True),
        ("tls_client_auth_subject_dn", r"C=DE,O=Example\, Inc.,CN=client-one", True),
        ("tls_client_auth_subject_dn", "CN=client-one", False),
        ("tls_client_auth_san_dns", "CLIENT-ONE.example.com", True),
        ("tls_client_auth_san_dns", "spiffe://example.org/client-one", False),
        ("tls_client_auth_san_uri", "spiffe://EXAMPLE.org/client-one", True),
        ("tls_client_auth_san_uri", "client-one.example.com", False),
        ("tls_client_auth_san_ip", "2001:db8:0:0:0:0:0:1", True),
        ("tls_client_auth_san_ip", "192.0.2.10", True),
        ("tls_client_auth_san_ip", "::ffff:192.0.2.10", False),
        ("tls_client_auth_san_email", "ops@EXAMPLE.com", True),
        ("tls_client_auth_san_email", "client-one.example.com", False),
        # The wrong SAN type never matches (R8705-2.1.2-3…6): each field reads its own type.
        ("tls_client_auth_san_email", "spiffe://example.org/client-one", False),
        ("tls_client_auth_san_dns", "192.0.2.10", False),
        # An unknown field fails closed.
        ("tls_client_auth_san_foo", "client-one.example.com", False),
        ("token_endpoint_auth_method", "tls_client_auth", False),
    ],
)
def test_certificate_matches_dispatches_on_the_field_R8705_2_1_3(
    client_cert, field, registered, expected
):
    certificate = certificate_from_der(client_cert.der)
    assert certificate_matches(certificate, field, registered) is expected


def test_order_setting_applies_to_dns_only(client_cert):
    certificate = certificate_from_der(client_cert.der)
    dn_der_order = r"C=DE,O=Example\, Inc.,CN=client-one"
    assert not certificate_matches(
        certificate, "tls_client_auth_subject_dn", dn_der_order, match_order=True
    )
    assert certificate_matches(
        certificate, "tls_client_auth_san_dns", "client-one.example.com", match_order=True
    )


@pytest.mark.parametrize("registered", [None, 42, ["client-one.example.com"], b"ops@example.com"])
def test_non_string_registered_values_never_match_R8705_2_1_2_7(client_cert, registered):
    certificate = certificate_from_der(client_cert.der)
    for field in SUBJECT_FIELDS:
        assert certificate_matches(certificate, field, registered) is False  # type: ignore[arg-type]


def test_v1_certificate_without_sans_matches_only_its_dn():
    """RFC 8705 Appendix A's client is X.509 v1: a DN still matches, no SAN does."""
    certificate = client(dn(attr(NameOID.COMMON_NAME, "mtls")))
    assert certificate_matches(certificate, "tls_client_auth_subject_dn", "cn=MTLS")
    assert not certificate_matches(certificate, "tls_client_auth_san_dns", "mtls")


# --- registration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        (
            "tls_client_auth_subject_dn",
            r"CN=client-one, O=Example\, Inc.",
            r"CN=client-one, O=Example\, Inc.",
        ),
        ("tls_client_auth_subject_dn", "  cn=x  ", "cn=x"),
        ("tls_client_auth_subject_dn", "CN=x\\ ", "CN=x\\ "),  # the escaped space stays
        ("tls_client_auth_subject_dn", "CN=x\\  \n", "CN=x\\ "),
        ("tls_client_auth_subject_dn", "CN=x\\\\ ", "CN=x\\\\"),
        (
            "tls_client_auth_subject_dn",
            "2.5.4.97=PSDDE-BAFIN-123456",
            "2.5.4.97=PSDDE-BAFIN-123456",
        ),
        ("tls_client_auth_subject_dn", "CN=#0c03616263", "CN=#0c03616263"),
        (
            "tls_client_auth_subject_dn",
            "jurisdictionC=BR,businessCategory=Private Organization",
            "jurisdictionC=BR,businessCategory=Private Organization",
        ),
        ("tls_client_auth_san_dns", "client-one.example.com", "client-one.example.com"),
        ("tls_client_auth_san_dns", " Example.COM. ", "Example.COM."),
        ("tls_client_auth_san_dns", "*.example.com", "*.example.com"),
        ("tls_client_auth_san_dns", "_svc.example.com", "_svc.example.com"),
        ("tls_client_auth_san_dns", "localhost", "localhost"),
        (
            "tls_client_auth_san_uri",
            "spiffe://example.org/client-one",
            "spiffe://example.org/client-one",
        ),
        (
            "tls_client_auth_san_uri",
            "urn:uuid:0e5a5b3c-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
            "urn:uuid:0e5a5b3c-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        ),
        ("tls_client_auth_san_ip", "2001:db8::1:0:0:1", "2001:db8::1:0:0:1"),
        ("tls_client_auth_san_ip", " 192.0.2.10\n", "192.0.2.10"),
        ("tls_client_auth_san_ip", "::ffff:10.0.0.1", "::ffff:10.0.0.1"),
        ("tls_client_auth_san_email", "ops@example.com", "ops@example.com"),
        ("tls_client_auth_san_email", "Ops.Team+mtls@Example.COM", "Ops.Team+mtls@Example.COM"),
    ],
)
def test_normalise_registered_value_accepts(field, value, stored):
    assert normalise_registered_value(field, value) == stored


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        # R8705-2.1.2-7: a single string.
        ("tls_client_auth_subject_dn", ["CN=a"], "single string"),
        ("tls_client_auth_san_dns", None, "single string"),
        ("tls_client_auth_san_ip", 167772161, "single string"),
        ("tls_client_auth_san_uri", b"https://a.example/", "single string"),
        ("tls_client_auth_san_email", {"email": "ops@example.com"}, "single string"),
        ("tls_client_auth_san_email", True, "single string"),
        # Empty.
        ("tls_client_auth_subject_dn", "", "empty"),
        ("tls_client_auth_subject_dn", "   ", "empty"),
        ("tls_client_auth_san_dns", "", "empty"),
        ("tls_client_auth_san_uri", " ", "empty"),
        ("tls_client_auth_san_ip", "\t", "empty"),
        ("tls_client_auth_san_email", "", "empty"),
        # DN syntax (R8705-2.1.2-2).
        ("tls_client_auth_subject_dn", "client-one", "expected '='"),
        ("tls_client_auth_subject_dn", "CN=a,", "expected an attribute type"),
        ("tls_client_auth_subject_dn", "CN=client-one,O=Example, Inc.", "must be escaped"),
        ("tls_client_auth_subject_dn", "foo=bar", "unknown attribute type 'foo'"),
        ("tls_client_auth_subject_dn", "x500UniqueIdentifier=#00ab", "unknown attribute type"),
        ("tls_client_auth_subject_dn", "CN=a\\q", "must precede"),
        ("tls_client_auth_subject_dn", "CN=#zz", "even number of hex digits"),
        ("tls_client_auth_subject_dn", "CN=\\C3", "not UTF-8"),
        ("tls_client_auth_subject_dn", 'CN="a', "unterminated"),
        ("tls_client_auth_subject_dn", "CN=a+CN=a", "twice"),
        ("tls_client_auth_subject_dn", "3.1=x", "not a valid object identifier"),
        # DNS.
        ("tls_client_auth_san_dns", "exa mple.com", "spaces"),
        ("tls_client_auth_san_dns", "https://example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", "ops@example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", "a..example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", ".example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", "-a.example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", "a.*.example.com", "not a DNS name"),
        ("tls_client_auth_san_dns", "a" * 64 + "." + "b" * 190 + ".example", "not a DNS name"),
        ("tls_client_auth_san_dns", "bücher.example", "xn--bcher-kva.example"),
        # URI.
        ("tls_client_auth_san_uri", "/client-one", "absolute URI"),
        ("tls_client_auth_san_uri", "example.org/client-one", "absolute URI"),
        ("tls_client_auth_san_uri", "http://[::1", "absolute URI"),
        ("tls_client_auth_san_uri", "https://a.example/ x", "spaces"),
        ("tls_client_auth_san_uri", "https://a.example/\x00", "control"),
        ("tls_client_auth_san_uri", "https://bücher.example/", "ASCII"),
        # IP (P4).
        ("tls_client_auth_san_ip", "010.0.0.1", "leading zero"),
        ("tls_client_auth_san_ip", "10.0.0.01", "leading zero"),
        ("tls_client_auth_san_ip", "fe80::1%eth0", "zone id"),
        ("tls_client_auth_san_ip", "10.0.0.0/8", "not a network"),
        ("tls_client_auth_san_ip", "2001:db8::/32", "not a network"),
        ("tls_client_auth_san_ip", "10.0.0", "not an IPv4 or IPv6 address"),
        ("tls_client_auth_san_ip", "1.2.3.4.5", "not an IPv4 or IPv6 address"),
        ("tls_client_auth_san_ip", "256.0.0.1", "not an IPv4 or IPv6 address"),
        ("tls_client_auth_san_ip", "example.com", "not an IPv4 or IPv6 address"),
        ("tls_client_auth_san_ip", "[::1]", "not an IPv4 or IPv6 address"),
        ("tls_client_auth_san_ip", "10.0.0.1 10.0.0.2", "spaces"),
        # Email.
        ("tls_client_auth_san_email", "ops", "not an email address"),
        ("tls_client_auth_san_email", "@example.com", "not an email address"),
        ("tls_client_auth_san_email", "ops@", "not an email address"),
        ("tls_client_auth_san_email", "ops@exa mple.com", "spaces"),
        ("tls_client_auth_san_email", "ops@bad..example", "not a DNS name"),
        ("tls_client_auth_san_email", "öps@example.com", "ASCII"),
        # Not one of the five.
        ("tls_client_auth_san_foo", "x", "is not one of"),
        ("jwks_uri", "https://a.example/jwks", "is not one of"),
    ],
)
def test_normalise_registered_value_rejects_with_a_message(field, value, message):
    with pytest.raises(RegisteredValueError, match=None) as excinfo:
        normalise_registered_value(field, value)
    assert message in str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_every_accepted_registered_value_matches_its_own_certificate(root_ca):
    """What registration accepts, the matcher can match: a certificate built from the values."""
    issued = pki.issue(
        dn(
            attr(NameOID.COUNTRY_NAME, "BR"),
            attr(NameOID.ORGANIZATION_IDENTIFIER, "OFBBR-1"),
            attr(NameOID.COMMON_NAME, "tpp"),
        ),
        issuer=root_ca,
        dns=("tpp.example.com.br",),
        uris=("https://tpp.example.com.br/client",),
        emails=("ops@tpp.example.com.br",),
        ips=("2001:db8::1:0:0:1",),
    )
    certificate = certificate_from_der(issued.der)
    registered = {
        "tls_client_auth_subject_dn": "cn=TPP, organizationIdentifier=ofbbr-1, c=br",
        "tls_client_auth_san_dns": "TPP.example.com.br.",
        "tls_client_auth_san_uri": "HTTPS://TPP.example.com.br/client",
        "tls_client_auth_san_ip": "2001:db8:0:0:1:0:0:1",
        "tls_client_auth_san_email": "ops@TPP.example.com.br",
    }
    for field, value in registered.items():
        stored = normalise_registered_value(field, value)
        assert certificate_matches(certificate, field, stored), field


def test_module_is_pure_no_django_import():
    """STYLE: pure modules never import Django (checked in a fresh interpreter)."""
    code = (
        "import sys, django_oauth_mtls.matching; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
