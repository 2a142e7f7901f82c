"""Property tests for RFC 8705 §2.1.2 matching (R8705-2.1-4, P1–P3).

(1) Every name ``cryptography`` prints in RFC 4514 form parses back and matches that name, with
and without RDN order, in memory and after a DER round trip in any string type (P3).
(2) Arbitrary text given to ``parse_dn`` or ``normalise_registered_value`` raises
``RegisteredValueError`` or nothing. (3) ``certificate_matches`` never raises.

At least 2,000 examples each on CI (the conftest's "ci" profile, loaded when ``CI`` is set).
"""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from django_oauth_mtls.certificates import ClientCertificate, certificate_from_der
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

KEY = pki.make_key()

# RFC 4514 specials, whitespace of several kinds, escapes and non-ASCII: what breaks parsers.
TRICKY = list(' ,+;"\\<>=#\t\n\r\x00') + [
    "é",
    "ß",
    "İ",
    "☃",
    "😀",
    "\u00a0",
    "\u2028",
    "\x85",
    "\x1c",
]
CHARS = st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs"])
ASCII = st.sampled_from([c for c in TRICKY if c.isascii()]) | st.characters(max_codepoint=127)
values = st.text(CHARS, min_size=1, max_size=16)  # CN: at most 64 UTF-8 bytes

# Attribute types by OID; cryptography prints some by name and the rest as dotted OIDs.
TEXT_TYPES = [
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.STREET_ADDRESS,
    NameOID.DOMAIN_COMPONENT,
    NameOID.USER_ID,
    NameOID.SERIAL_NUMBER,
    NameOID.EMAIL_ADDRESS,
    NameOID.ORGANIZATION_IDENTIFIER,
    NameOID.BUSINESS_CATEGORY,
    NameOID.GIVEN_NAME,
    NameOID.SURNAME,
    NameOID.TITLE,
    NameOID.PSEUDONYM,
    NameOID.POSTAL_CODE,
    NameOID.JURISDICTION_LOCALITY_NAME,
    x509.ObjectIdentifier("1.3.6.1.4.1.99999.7"),
]
TWO_LETTER_TYPES = [NameOID.COUNTRY_NAME, NameOID.JURISDICTION_COUNTRY_NAME]  # exactly 2 chars


@st.composite
def attributes(draw: st.DrawFn, asn1: list[_ASN1Type] | None = None) -> x509.NameAttribute:
    if draw(st.integers(0, 5)) == 0:
        oid = draw(st.sampled_from(TWO_LETTER_TYPES))
        value = draw(st.text(ASCII, min_size=2, max_size=2))  # 2 UTF-8 bytes exactly
    else:
        oid = draw(st.sampled_from(TEXT_TYPES))
        value = draw(values)
    if asn1 is None:
        return x509.NameAttribute(oid, value)
    return x509.NameAttribute(oid, value, _type=draw(st.sampled_from(asn1)))


def names(asn1: list[_ASN1Type] | None = None) -> st.SearchStrategy[x509.Name]:
    rdn = st.lists(attributes(asn1), min_size=1, max_size=3, unique_by=lambda a: a.oid).map(
        x509.RelativeDistinguishedName
    )
    return st.lists(rdn, min_size=1, max_size=6).map(x509.Name)


@given(names())
def test_rfc4514_round_trip_matches_in_both_modes(name):
    """(1) R8705-2.1-4: ``parse_dn(name.rfc4514_string())`` never raises and matches ``name``."""
    text = name.rfc4514_string()
    assert len(parse_dn(text)) == len(name.rdns)
    assert subject_dn_matches(text, name, match_order=True)
    assert subject_dn_matches(text, name, match_order=False)
    # P1: the RDNs reversed (the DER order as a string) match only when order is ignored.
    reversed_text = x509.Name(list(reversed(name.rdns))).rfc4514_string()
    assert subject_dn_matches(reversed_text, name, match_order=False)
    if len(set(name.rdns)) > 1 and name.rdns != list(reversed(name.rdns)):
        assert subject_dn_matches(reversed_text, name, match_order=True) is (
            parse_dn(reversed_text)[::-1] == parse_dn(text)[::-1]
        )


@given(names(), st.data())
def test_dropping_or_adding_an_rdn_breaks_the_match(name, data):
    """(1) P1: equal RDN counts, not containment — one RDN more or less never matches."""
    rdns = name.rdns
    if len(rdns) > 1:
        fewer = x509.Name(rdns[:-1])
        assert not subject_dn_matches(fewer.rfc4514_string(), name)
        assert not subject_dn_matches(name.rfc4514_string(), fewer)
    extra = data.draw(names().map(lambda extra_name: extra_name.rdns[0]))
    more = x509.Name([*rdns, extra])
    assert not subject_dn_matches(more.rfc4514_string(), name)
    assert not subject_dn_matches(name.rfc4514_string(), more)


# The DER round trip: text-capable string types only (PrintableString/IA5 need their alphabets).
UNICODE_TYPES = [_ASN1Type.UTF8String, _ASN1Type.BMPString, _ASN1Type.UniversalString]


def certificate_for(name: x509.Name) -> ClientCertificate:
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(KEY.public_key())
        .serial_number(1)
        .not_valid_before(pki.NOT_BEFORE)
        .not_valid_after(pki.NOT_AFTER)
        .sign(KEY, hashes.SHA256())
    )
    return certificate_from_der(cert.public_bytes(Encoding.DER))


@given(names(UNICODE_TYPES), st.booleans())
def test_der_round_trip_in_any_unicode_string_type_P3(name, match_order):
    """(1) P3: after DER encoding in UTF8String, BMPString or UniversalString, the RFC 4514 string
    of the in-memory name still matches the certificate."""
    certificate = certificate_for(name)
    assert certificate_matches(
        certificate, "tls_client_auth_subject_dn", name.rfc4514_string(), match_order=match_order
    )
    assert certificate_matches(
        certificate, "tls_client_auth_subject_dn", certificate.subject, match_order=match_order
    )


# --- (2) arbitrary text raises only RegisteredValueError ------------------------------------------

FRAGMENTS = st.sampled_from(
    [
        "CN=",
        "cn = ",
        "O=",
        "2.5.4.3=",
        "OID.2.5.4.97=",
        "3.1=",
        "1.40=",
        "serialNumber=",
        "jurisdictionC=",
        "E=",
        ",",
        ";",
        "+",
        " ",
        "=",
        "\\",
        "\\,",
        "\\2C",
        "\\C3\\A9",
        "\\FF",
        "#",
        "#0c03616263",
        "#1e",
        "#0c8182",
        "#1c0400",
        '"',
        "a",
        "é",
        "\x00",
        "\ud800",
    ]
)
dn_like = st.lists(FRAGMENTS | st.text(max_size=4), max_size=12).map("".join)
any_text = st.text() | dn_like


@given(any_text)
def test_parse_dn_raises_only_registered_value_error(text):
    """(2) Any text: an RDN tuple or ``RegisteredValueError``, nothing else."""
    try:
        rdns = parse_dn(text)
    except RegisteredValueError:
        return
    assert rdns and all(rdn and isinstance(rdn, frozenset) for rdn in rdns)


SAN_FRAGMENTS = st.sampled_from(
    [
        "https://",
        "spiffe://",
        "[",
        "]",
        "::",
        ":",
        "%",
        "/",
        "@",
        ".",
        "*.",
        "010.",
        "fe80::1",
        "::ffff:",
        "10.0.0.1",
        "xn--",
        "é",
        " ",
        "\n",
        "?",
        "#",
        "example.com",
    ]
)
san_like = st.lists(SAN_FRAGMENTS | st.text(max_size=4), max_size=8).map("".join)


@given(st.sampled_from(SUBJECT_FIELDS), any_text | san_like)
def test_normalise_registered_value_raises_only_registered_value_error(field, value):
    """(2) Registration: the error, or a stored value that can match — a SAN carrying exactly
    the stored text matches it, and a stored DN parses like the original."""
    try:
        stored = normalise_registered_value(field, value)
    except RegisteredValueError:
        return
    if field == "tls_client_auth_subject_dn":
        assert parse_dn(stored) == parse_dn(value)
        return
    assert stored == stored.strip() == value.strip()
    if field == "tls_client_auth_san_ip":
        assert san_ip_matches(stored, [ipaddress.ip_address(stored)])
    else:
        matcher = {
            "tls_client_auth_san_dns": san_dns_matches,
            "tls_client_auth_san_uri": san_uri_matches,
            "tls_client_auth_san_email": san_email_matches,
        }[field]
        assert matcher(stored, [stored])


# --- (3) matching never raises ---------------------------------------------------------------------

CLIENT = certificate_from_der(
    pki.issue(
        pki.name(C="DE", O="Example, Inc.", CN="client-one"),
        dns=("client-one.example.com", "*.example.com"),
        uris=("spiffe://example.org/client-one", "https://[2001:db8::1]:8443/a?b#c"),
        emails=("ops@example.com",),
        ips=("192.0.2.10", "2001:db8::1", "::ffff:10.0.0.1"),
    ).der
)


@given(
    st.sampled_from([*SUBJECT_FIELDS, "unknown"]),
    any_text | san_like,
    st.booleans(),
)
def test_certificate_matches_never_raises(field, registered, match_order):
    """(3) Any registered string, any field: ``True`` or ``False``."""
    result = certificate_matches(CLIENT, field, registered, match_order=match_order)
    assert result in (True, False)


@given(names(UNICODE_TYPES), st.sampled_from(SUBJECT_FIELDS), any_text, st.booleans())
def test_certificate_matches_never_raises_for_random_subjects(name, field, registered, order):
    """(3) Any certificate subject, any registered string."""
    assert certificate_matches(certificate_for(name), field, registered, match_order=order) in (
        True,
        False,
    )


@given(st.lists(st.ip_addresses(), max_size=3), st.ip_addresses())
def test_san_ip_binary_equality_P4(presented, registered):
    """P4: a registered address (compressed or exploded) matches iff the same octets are present."""
    expected = any(ip.packed == registered.packed for ip in presented)
    assert san_ip_matches(str(registered), presented) is expected
    assert san_ip_matches(registered.exploded, presented) is expected
    if isinstance(registered, ipaddress.IPv4Address):
        mapped = ipaddress.IPv6Address(b"\x00" * 10 + b"\xff\xff" + registered.packed)
        assert not san_ip_matches(str(mapped), [registered])
