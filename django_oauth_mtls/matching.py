"""RFC 8705 §2.1.2: does a client certificate carry the subject value a client registered?

Pure module: no Django import, no logging. A ``tls_client_auth`` client registers exactly one
of ``tls_client_auth_subject_dn``, ``tls_client_auth_san_dns``, ``_san_uri``, ``_san_ip`` or
``_san_email`` (R8705-2.1.2-1); the leaf certificate authenticates the client when that value
matches its subject DN or one SAN entry of that type (R8705-2.1-3). Matching follows the OpenID
conformance suite (``ValidateClientCertificateForTlsClientAuth``): DNs compare RDN by RDN,
ignoring RDN order by default and case everywhere (R8705-2.1-4, pitfalls P1–P3); SAN IPs compare
in binary form (P4); DNS names, URIs and emails as described at their functions (P5).

Why ``cryptography`` cannot be the matcher (observed on cryptography 50.0.2):

* ``x509.Name.from_rfc4514_string`` is strict. It raises ``ValueError`` for lower- or mixed-case
  types (``cn=x``, ``Cn=x``), for a space after a comma (``CN=x, O=y``), around ``=``
  (``CN = x``) or around ``+`` (``CN=a + OU=b``), and for any type name outside ``CN L ST O OU C
  STREET DC UID`` (``E=``, ``emailAddress=``, ``serialNumber=``, ``SERIALNUMBER=``,
  ``organizationIdentifier=``, ``S=``, ``GN=``, ``SN=``, ``jurisdictionC=``,
  ``businessCategory=`` all raise). It does accept dotted OIDs, hex escapes and ``#hex`` values.
* ``Name.__eq__`` compares the RDN sequence: it is order-sensitive (``CN=x,O=y`` against
  ``O=y,CN=x`` is ``False``), case-sensitive (``CN=x`` against ``CN=X``) and whitespace-sensitive
  (``CN=a  b`` against ``CN=a b``). It is *not* sensitive to the ASN.1 string type:
  ``NameAttribute.__eq__`` compares OID and decoded value only, so a PrintableString ``Abc``
  equals a UTF8String ``Abc``, in memory and after a DER round trip.
* ``Name.rfc4514_string()`` escapes ``\\ " + , ; < >``, a leading ``#`` or space, a trailing space
  and NUL (``\\00``), but writes ``=`` and control characters (a newline, a tab) raw; the parser
  below accepts all of that, so every name it prints parses back and matches itself.
* On loading, cryptography decodes TeletexString as UTF-8 and refuses a certificate whose
  TeletexString is not valid UTF-8; BIT STRING attributes (``x500UniqueIdentifier``) come back as
  ``bytes`` (the DER content octets, unused-bits octet first) and print as ``#`` + that hex.

So a registered DN is parsed here, leniently, into RDNs of ``(OID, normalised value)`` pairs and
compared with the certificate's ``Name.rdns``. Values compare case-insensitively (``casefold``)
with whitespace folded (stripped, inner runs collapsed to one space), an approximation of RFC 4517
caseIgnoreMatch; no Unicode normalisation (NFKC) beyond that is applied.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Final
from urllib.parse import SplitResult, urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from . import limits
from .certificates import ClientCertificate
from .limits import BoundedLRU

__all__ = [
    "SUBJECT_FIELDS",
    "RegisteredValueError",
    "certificate_matches",
    "normalise_registered_value",
    "parse_dn",
    "san_dns_matches",
    "san_email_matches",
    "san_ip_matches",
    "san_uri_matches",
    "subject_dn_matches",
]

SUBJECT_DN: Final = "tls_client_auth_subject_dn"
SAN_DNS: Final = "tls_client_auth_san_dns"
SAN_URI: Final = "tls_client_auth_san_uri"
SAN_IP: Final = "tls_client_auth_san_ip"
SAN_EMAIL: Final = "tls_client_auth_san_email"

#: RFC 8705 §2.1.2: the five ways to name the expected certificate subject (exactly one per client).
SUBJECT_FIELDS: Final = (SUBJECT_DN, SAN_DNS, SAN_URI, SAN_IP, SAN_EMAIL)

RDN = frozenset[tuple[str, str]]


class RegisteredValueError(ValueError):
    """A registered subject value that can never be matched; the message says why."""


# --- attribute types -------------------------------------------------------------------------

_EV = "1.3.6.1.4.1.311.60.2.1."  # CA/Browser Forum EV jurisdiction attributes (Microsoft arc)

#: Attribute type names (case-insensitive) → dotted OID. Short names as RFC 4514/4519, OpenSSL
#: and Microsoft print them, and the X.520 long names. ``SN`` is *surname* (RFC 4519), not
#: serialNumber; ``S`` is Microsoft's stateOrProvinceName.
ATTRIBUTE_TYPES: Final[dict[str, str]] = {
    name.lower(): oid
    for oid, names in {
        NameOID.COMMON_NAME.dotted_string: ("CN", "commonName"),
        NameOID.ORGANIZATION_NAME.dotted_string: ("O", "organizationName"),
        NameOID.ORGANIZATIONAL_UNIT_NAME.dotted_string: ("OU", "organizationalUnitName"),
        NameOID.COUNTRY_NAME.dotted_string: ("C", "countryName"),
        NameOID.LOCALITY_NAME.dotted_string: ("L", "localityName"),
        NameOID.STATE_OR_PROVINCE_NAME.dotted_string: ("ST", "S", "stateOrProvinceName"),
        NameOID.STREET_ADDRESS.dotted_string: ("STREET", "streetAddress"),
        NameOID.DOMAIN_COMPONENT.dotted_string: ("DC", "domainComponent"),
        NameOID.USER_ID.dotted_string: ("UID", "userId"),
        NameOID.SERIAL_NUMBER.dotted_string: ("serialNumber",),
        NameOID.EMAIL_ADDRESS.dotted_string: ("emailAddress", "E", "EMAIL"),
        # eIDAS (ETSI EN 319 412-1) and Open Banking Brasil use organizationIdentifier.
        NameOID.ORGANIZATION_IDENTIFIER.dotted_string: ("organizationIdentifier",),
        NameOID.GIVEN_NAME.dotted_string: ("GN", "givenName"),
        NameOID.SURNAME.dotted_string: ("SN", "surname"),
        NameOID.TITLE.dotted_string: ("title",),
        NameOID.INITIALS.dotted_string: ("initials",),
        NameOID.PSEUDONYM.dotted_string: ("pseudonym",),
        NameOID.GENERATION_QUALIFIER.dotted_string: ("generationQualifier",),
        NameOID.DN_QUALIFIER.dotted_string: ("dnQualifier",),
        NameOID.BUSINESS_CATEGORY.dotted_string: ("businessCategory",),
        NameOID.POSTAL_CODE.dotted_string: ("postalCode",),
        _EV + "3": ("jurisdictionC", "jurisdictionCountryName"),
        _EV + "2": ("jurisdictionST", "jurisdictionStateOrProvinceName"),
        _EV + "1": ("jurisdictionL", "jurisdictionLocalityName"),
    }.items()
    for name in names
}

# RFC 4514 §3: keystring or numericoid; "OID." prefixes (RFC 1779) are tolerated.
_ATTRIBUTE_TYPE = re.compile(
    r"(?:[Oo][Ii][Dd]\.)?(?P<oid>[0-9]+(?:\.[0-9]+)+)|(?P<name>[A-Za-z][A-Za-z0-9-]*)"
)
_HEX_DIGITS: Final = frozenset(string.hexdigits)
# RFC 4514 §2.4 / §3: characters that may follow a backslash (besides two hex digits).
_ESCAPABLE: Final = frozenset('"+,;<=>\\# ')
_RDN_SEPARATORS: Final = ",;"  # ";" is RFC 2253's legacy separator; Java's LdapName accepts it


def _canonical_oid(dotted: str, parser: _DNParser) -> str:
    # "2.05.4.3" and "2.5.4.3" are one OID; strings, not ints (no int-size limit to trip over).
    arcs = [arc.lstrip("0") or "0" for arc in dotted.split(".")]
    second_too_big = len(arcs[1]) > 2 or int(arcs[1]) >= 40
    if arcs[0] not in ("0", "1", "2") or (arcs[0] != "2" and second_too_big):
        raise parser.fail(f"{dotted!r} is not a valid object identifier")  # X.660: arcs 1 and 2
    return ".".join(arcs)


# --- values ----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """RFC 4517 caseIgnoreMatch, approximately: casefold, strip, collapse whitespace runs."""
    return " ".join(text.casefold().split())


def _text_key(text: str) -> str:
    """The comparison form of a text value; ``#`` keys are reserved for raw bytes (below)."""
    folded = _fold(text)
    return "\\" + folded if folded[:1] in ("#", "\\") else folded


def _bytes_key(data: bytes) -> str:
    return "#" + data.hex()


def _der_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(octets)]) + octets


def _decode_teletex(data: bytes) -> str:
    # cryptography writes and reads TeletexString as UTF-8 (see the module docstring), so try
    # that first; latin-1 is the usual reading of T.61 text by other encoders.
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# DER tag → decoder for the string types a #hex value may carry (RFC 4514 §2.4, P3).
_STRING_DECODERS: Final[dict[int, Callable[[bytes], str]]] = {
    0x0C: lambda data: data.decode("utf-8"),  # UTF8String
    0x12: lambda data: data.decode("ascii"),  # NumericString
    0x13: lambda data: data.decode("ascii"),  # PrintableString
    0x14: _decode_teletex,  # TeletexString (T61String)
    0x16: lambda data: data.decode("ascii"),  # IA5String
    0x1A: lambda data: data.decode("ascii"),  # VisibleString
    0x1C: lambda data: data.decode("utf-32-be"),  # UniversalString
    0x1E: lambda data: data.decode("utf-16-be"),  # BMPString
}


def _decode_ber_string(data: bytes) -> str | None:
    """The text of a BER-encoded string type (definite length, primitive), else ``None``."""
    if len(data) < 2 or data[0] not in _STRING_DECODERS:
        return None
    first = data[1]
    if first < 0x80:
        length, start = first, 2
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or len(data) < 2 + count:  # 0x80 = indefinite: constructed only
            return None
        length, start = int.from_bytes(data[2 : 2 + count], "big"), 2 + count
    if len(data) - start != length:
        return None
    try:
        return _STRING_DECODERS[data[0]](data[start:])
    except UnicodeDecodeError:
        return None


# --- RFC 4514 parser --------------------------------------------------------------------------


class _DNParser:
    """A lenient RFC 4514 reader: any case of type names, spaces around ``, + =``, RFC 2253
    quoted values and ``;`` separators, ``#hex`` values; errors name the position."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = self.start = 0

    def fail(self, message: str, hint: str = "") -> RegisteredValueError:
        return RegisteredValueError(f"{message} at position {self.pos} of {self.text!r}{hint}")

    def skip_spaces(self) -> None:
        """Skip spaces only: before a value, a tab or newline belongs to it (cryptography prints
        them raw, so ``CN=<newline>#x`` is the text "<newline>#x", not a ``#hex`` value)."""
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def skip_whitespace(self) -> None:
        """Skip any whitespace: around types, separators and after quoted or ``#hex`` values."""
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def parse(self) -> tuple[RDN, ...]:
        self.skip_whitespace()
        self.start = self.pos
        if self.at_end():
            raise RegisteredValueError("an empty distinguished name matches no client")
        rdns = [self.rdn()]
        while not self.at_end():
            if self.text[self.pos] not in _RDN_SEPARATORS:  # defensive: values stop only there
                raise self.fail("expected ',' between RDNs")
            self.pos += 1
            rdns.append(self.rdn())
        return tuple(rdns)

    def rdn(self) -> RDN:
        pairs = [self.attribute()]
        while not self.at_end() and self.text[self.pos] == "+":  # multi-valued RDN
            self.pos += 1
            pairs.append(self.attribute())
        rdn = frozenset(pairs)
        if len(rdn) != len(pairs):
            raise self.fail("the same attribute and value appear twice in one RDN")
        return rdn

    def attribute(self) -> tuple[str, str]:
        # After a separator, a bad type is most often a value's unescaped ',' or '+'.
        hint = ""
        if self.pos > self.start:
            hint = " (a ',' or '+' inside a value must be escaped: '\\,', '\\+')"
        self.skip_whitespace()
        match = _ATTRIBUTE_TYPE.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected an attribute type (a name such as CN, or a dotted OID)", hint)
        self.pos = match.end()
        self.skip_whitespace()
        if self.at_end() or self.text[self.pos] != "=":
            raise self.fail("expected '=' after the attribute type", hint)
        self.pos = match.start()  # errors about the type point at it
        if match["oid"] is not None:
            oid = _canonical_oid(match["oid"], self)
        else:
            found = ATTRIBUTE_TYPES.get(match["name"].lower())
            if found is None:
                raise self.fail(
                    f"unknown attribute type {match['name']!r} (use its dotted OID, such as "
                    "2.5.4.97 for organizationIdentifier)",
                    hint,
                )
            oid = found
        self.pos = self.text.index("=", match.end()) + 1
        self.skip_spaces()
        if not self.at_end() and self.text[self.pos] == "#":
            return oid, self.hex_value()
        if not self.at_end() and self.text[self.pos] == '"':
            return oid, _text_key(self.quoted_value())
        return oid, _text_key(self.string_value())

    def escape(self, out: bytearray) -> None:
        """``\\`` + a special character or two hex digits (RFC 4514 §3); ``pos`` at the ``\\``."""
        following = self.text[self.pos + 1 : self.pos + 3]
        if len(following) == 2 and all(c in _HEX_DIGITS for c in following):
            out.append(int(following, 16))  # hex escapes carry UTF-8 bytes: \C3\A9 is "é"
            self.pos += 3
        elif following[:1] and following[0] in _ESCAPABLE:
            out += following[0].encode()
            self.pos += 2
        else:
            raise self.fail("'\\' must precede one of \"+,;<=>\\# or space, or two hex digits")

    def decode(self, out: bytearray) -> str:
        try:
            return out.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise self.fail("escaped bytes are not UTF-8") from exc

    def string_value(self) -> str:
        out = bytearray()
        significant = 0  # length of ``out`` up to the last character that is not a plain space
        while not self.at_end():
            char = self.text[self.pos]
            if char in _RDN_SEPARATORS or char == "+":
                break
            if char == "\\":
                self.escape(out)
                significant = len(out)
                continue
            # Lenient: '"', '<', '>', '=' and a non-leading '#' are taken literally.
            out += char.encode("utf-8", "surrogatepass")
            if char != " ":
                significant = len(out)
            self.pos += 1
        return self.decode(out[:significant])  # RFC 4514 §3: unescaped trailing spaces go

    def quoted_value(self) -> str:
        """RFC 2253/1779 ``"..."``: separators are literal inside the quotes."""
        self.pos += 1
        out = bytearray()
        while True:
            if self.at_end():
                raise self.fail("unterminated quoted value")
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                break
            if char == "\\":
                self.escape(out)
                continue
            out += char.encode("utf-8", "surrogatepass")
            self.pos += 1
        self.end_of_value()
        return self.decode(out)

    def hex_value(self) -> str:
        """RFC 4514 §2.4 ``#`` + the BER encoding of the value, in hex."""
        start = self.pos = self.pos + 1
        while not self.at_end() and self.text[self.pos] in _HEX_DIGITS:
            self.pos += 1
        digits = self.text[start : self.pos]
        if not digits or len(digits) % 2:
            raise self.fail("a '#' value needs an even number of hex digits")
        self.end_of_value()
        data = bytes.fromhex(digits)
        text = _decode_ber_string(data)
        # P3: a string type compares as its text, whatever its encoding; anything else compares
        # as bytes with the certificate's raw value (see _certificate_rdns).
        return _bytes_key(data) if text is None else _text_key(text)

    def end_of_value(self) -> None:
        self.skip_whitespace()
        if not self.at_end() and self.text[self.pos] not in ",;+":
            raise self.fail("unexpected character after the value")


#: Parsed registered DNs. A DN is parsed on every ``tls_client_auth_subject_dn`` request (~13 µs);
#: the result is immutable (tuples of frozensets) and errors are not cached (they raise). Bounded
#: by an estimate of the bytes held, not only by the number of DNs: a DN of many attributes
#: parses to ~320 bytes per attribute on CPython 3.11, its text to one byte a character.
PARSED_DNS: Final[BoundedLRU[str, tuple[RDN, ...]]] = BoundedLRU(
    max_entries=1024, max_weight=2 * 1024 * 1024
)
_BYTES_PER_ATTRIBUTE: Final = 320


def parse_dn(text: str) -> tuple[RDN, ...]:
    """RDNs in the string's order (RFC 4514 order = reverse of DER order); each RDN is a frozenset
    of (oid dotted string, normalised value). Raises ``RegisteredValueError`` only.

    A text longer than ``limits.MAX_SUBJECT_DN_CHARACTERS`` is refused unparsed (and uncached).
    """
    if not isinstance(text, str):
        raise RegisteredValueError("a distinguished name must be a string")
    too_long = limits.too_long(SUBJECT_DN, text)
    if too_long:
        raise RegisteredValueError(too_long)
    parsed = PARSED_DNS.get(text)
    if parsed is None:
        parsed = _DNParser(text).parse()
        attributes = sum(len(rdn) for rdn in parsed)
        PARSED_DNS.put(text, parsed, weight=len(text) + _BYTES_PER_ATTRIBUTE * attributes)
    return parsed


# --- certificate side ------------------------------------------------------------------------

_BIT_STRING: Final = 0x03


def _certificate_rdns(subject: x509.Name) -> tuple[tuple[RDN, ...], dict[tuple[str, str], str]]:
    """The subject's RDNs in DER order, normalised like ``parse_dn``, and the raw-DER aliases of
    its byte-valued attributes. An RDN whose values collapse under normalisation (``CN=a+CN=A``)
    is replaced by an empty set, which no registered RDN equals: such a subject fails closed."""
    rdns: list[RDN] = []
    aliases: dict[tuple[str, str], str] = {}
    for rdn in subject.rdns:
        pairs: list[tuple[str, str]] = []
        for attribute in rdn:
            oid = attribute.oid.dotted_string
            value = attribute.value
            if isinstance(value, bytes):
                # cryptography returns bytes only for BIT STRING values (x500UniqueIdentifier),
                # the content octets; a registered #hex may be those or the whole DER TLV.
                der = bytes([_BIT_STRING]) + _der_length(len(value)) + value
                aliases[(oid, _bytes_key(der))] = _bytes_key(value)
                pairs.append((oid, _bytes_key(value)))
            else:
                pairs.append((oid, _text_key(value)))
        normalised = frozenset(pairs)
        rdns.append(normalised if len(normalised) == len(pairs) else frozenset())
    return tuple(rdns), aliases


def subject_dn_matches(registered: str, subject: x509.Name, *, match_order: bool = False) -> bool:
    """RFC 8705 §2.1.2 ``tls_client_auth_subject_dn``: does ``subject`` carry this DN?

    Attribute by attribute (R8705-2.1-4): same OIDs, values equal after case and whitespace
    folding, multi-valued RDNs as sets. ``match_order=False`` ignores RDN order, as the
    conformance suite does (P1); ``True`` also demands the order (the string's order reversed is
    the DER order). A malformed registered DN matches nothing.
    """
    try:
        wanted = parse_dn(registered)
    except RegisteredValueError:
        return False
    try:
        presented, aliases = _certificate_rdns(subject)
    except (ValueError, TypeError, AttributeError):  # a Name object we cannot read fails closed
        return False
    # A registered #hex of a BIT STRING's whole DER encoding names the same value as its content.
    wanted = tuple(
        frozenset((oid, aliases.get((oid, value), value)) for oid, value in rdn) for rdn in wanted
    )
    if match_order:
        # RFC 4514 §2.1: the string lists RDNs starting from the last DER element.
        return wanted[::-1] == presented
    # P1: the same RDNs, each as often (a subject with one RDN more or less does not match).
    return Counter(wanted) == Counter(presented)


# --- SANs ------------------------------------------------------------------------------------

_ASCII_LOWER: Final = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def _ascii_lower(text: str) -> str:
    return text.translate(_ASCII_LOWER)


def _dns_key(name: str) -> str:
    name = name.strip()
    if name.endswith("."):  # an absolute name's trailing dot names the same host
        name = name[:-1]
    return _ascii_lower(name)


def san_dns_matches(registered: str, values: Sequence[str]) -> bool:
    """RFC 8705 §2.1.2 ``tls_client_auth_san_dns``: one ``dNSName`` SAN equals it.

    P5: ASCII case-insensitive (A-labels), one trailing dot ignored. No wildcard semantics: a
    registered ``*.example.com`` equals only a SAN that literally reads ``*.example.com``, and
    ``client.example.com`` does not match a ``*.example.com`` SAN (RFC 8705 §2.1.2 asks for an
    expected name, not a pattern; RFC 6125 wildcards are for server identities).
    """
    if not isinstance(registered, str):
        return False
    wanted = _dns_key(registered)
    if not wanted:
        return False
    return any(isinstance(value, str) and _dns_key(value) == wanted for value in values)


def _uri_key(uri: str) -> tuple[str, str, str, str, str, str] | None:
    uri = uri.strip()
    # urlsplit silently drops tabs and newlines and strips control characters: refuse them
    # instead, so "exact" below means exact.
    if _CONTROL_OR_SPACE.search(uri):
        return None
    try:
        parts: SplitResult = urlsplit(uri)
    except ValueError:  # e.g. an unclosed "[" in the authority
        return None
    if not parts.scheme:
        return None  # RFC 5280 §4.2.1.6: a SAN URI is never relative
    userinfo, at, hostport = parts.netloc.rpartition("@")
    return (
        parts.scheme.lower(),  # RFC 3986 §3.1: the scheme is case-insensitive
        userinfo + at,
        _ascii_lower(hostport),  # RFC 3986 §3.2.2: so is the host (the port is digits)
        parts.path,
        parts.query,
        parts.fragment,
    )


def san_uri_matches(registered: str, values: Sequence[str]) -> bool:
    """RFC 8705 §2.1.2 ``tls_client_auth_san_uri``: one ``uniformResourceIdentifier`` SAN equals it.

    P5, as the suite's ``java.net.URI.equals``: scheme and host case-insensitive; userinfo, path,
    query and fragment exact. Nothing else is normalised: ``https://a.example:443/`` differs from
    ``https://a.example/`` (default ports), ``%7E`` from ``~``, ``/a/../b`` from ``/b``, and
    ``https://a.example`` from ``https://a.example/``. A malformed URI matches nothing.
    """
    if not isinstance(registered, str):
        return False
    wanted = _uri_key(registered)
    if wanted is None:
        return False
    return any(isinstance(value, str) and _uri_key(value) == wanted for value in values)


def _ip_packed(text: str) -> bytes | None:
    text = text.strip()
    if "%" in text:  # P4: ipaddress accepts zone ids and would ignore them in .packed
        return None
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:  # CIDR, leading-zero IPv4, anything else that is not an address
        return None


def san_ip_matches(
    registered: str, values: Sequence[ipaddress.IPv4Address | ipaddress.IPv6Address]
) -> bool:
    """RFC 8705 §2.1.2 ``tls_client_auth_san_ip``: one ``iPAddress`` SAN equals it in binary form.

    ``2001:db8::1:0:0:1`` equals ``2001:db8:0:0:1:0:0:1`` (RFC 5952 §8); an IPv4-mapped IPv6
    ``::ffff:10.0.0.1`` (16 octets) is not ``10.0.0.1`` (4 octets), as in the suite (P4).
    """
    if not isinstance(registered, str):
        return False
    wanted = _ip_packed(registered)
    if wanted is None:
        return False
    # RFC 8705 §2.1.2: SAN IPs compare in binary form
    return any(getattr(value, "packed", None) == wanted for value in values)


def _email_key(address: str) -> tuple[str, str] | None:
    local, at, domain = address.strip().rpartition("@")
    if not (local and at and domain):
        return None
    # P5, RFC 5280 §7.5: the local part is exact, the domain case-insensitive.
    return local, _ascii_lower(domain)


def san_email_matches(registered: str, values: Sequence[str]) -> bool:
    """RFC 8705 §2.1.2 ``tls_client_auth_san_email``: one ``rfc822Name`` SAN equals it
    (local part case-sensitive, domain case-insensitive)."""
    if not isinstance(registered, str):
        return False
    wanted = _email_key(registered)
    if wanted is None:
        return False
    return any(isinstance(value, str) and _email_key(value) == wanted for value in values)


# --- dispatch --------------------------------------------------------------------------------


def _subject_of(certificate: ClientCertificate) -> x509.Name | None:
    try:
        parsed = certificate.certificate or x509.load_der_x509_certificate(certificate.der)
        return parsed.subject
    except (ValueError, TypeError):  # unreadable DER: no subject, no match
        return None


def certificate_matches(
    certificate: ClientCertificate, field: str, registered: str, *, match_order: bool = False
) -> bool:
    """Does the leaf carry the value registered under ``field`` (one of ``SUBJECT_FIELDS``)?

    Only the leaf is matched (RFC 8705 §2.1: the subject of the client's own certificate). Never
    raises for any certificate content or registered value: anything unreadable, an unknown
    field included, is no match (an odd value at run time fails closed).
    """
    if not isinstance(registered, str):
        return False
    if field == SUBJECT_DN:
        subject = _subject_of(certificate)
        return subject is not None and subject_dn_matches(
            registered, subject, match_order=match_order
        )
    if field == SAN_DNS:
        return san_dns_matches(registered, certificate.san_dns)
    if field == SAN_URI:
        return san_uri_matches(registered, certificate.san_uri)
    if field == SAN_IP:
        return san_ip_matches(registered, certificate.san_ip)
    if field == SAN_EMAIL:
        return san_email_matches(registered, certificate.san_email)
    return False


# --- registration ----------------------------------------------------------------------------

_DNS_NAME = re.compile(
    r"(?:\*\.)?(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\.)*"
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?\.?|\*"
)
_IPV4_LEADING_ZERO = re.compile(r"(?:^|\.)0[0-9]")


def _strip_dn(value: str) -> str:
    """``strip()`` that keeps an escaped trailing space (``CN=x\\ ``)."""
    stripped = value.strip()
    trailing_backslashes = len(stripped) - len(stripped.rstrip("\\"))
    rest = value.lstrip()
    if trailing_backslashes % 2 and len(stripped) < len(rest):
        stripped += rest[len(stripped)]  # the escaped character belongs to the value
    return stripped


def _ascii_only(field: str, value: str, hint: str) -> None:
    if not value.isascii():
        raise RegisteredValueError(f"{field} must be ASCII ({hint}): {value!r}")


def _check_dns(value: str, field: str = SAN_DNS) -> None:
    if not value.isascii():
        suggestion = ""
        with contextlib.suppress(UnicodeError):  # IDNA 2003 cannot encode everything
            suggestion = f"; perhaps {value.encode('idna').decode('ascii')!r}"
        _ascii_only(field, value, f"a dNSName SAN holds A-labels{suggestion}")
    if len(value.rstrip(".")) > 253 or not _DNS_NAME.fullmatch(value):
        raise RegisteredValueError(
            f"{field} is not a DNS name: {value!r} (letters, digits, '-', '_' in dot-separated "
            "labels; a leading '*.' is compared literally)"
        )


def normalise_registered_value(field: str, value: str) -> str:
    """Validate a registered value for one of ``SUBJECT_FIELDS``; raise ``RegisteredValueError``
    with a clear message. Returns the value to store: the input, stripped of outer whitespace."""
    if field not in SUBJECT_FIELDS:
        raise RegisteredValueError(f"{field!r} is not one of {', '.join(SUBJECT_FIELDS)}")
    if not isinstance(value, str):
        # R8705-2.1.2-7: each of the five is a single JSON string.
        raise RegisteredValueError(f"{field} must be a single string, not {type(value).__name__}")
    too_long = limits.too_long(field, value)
    if too_long:  # before any work on it, and without echoing it
        raise RegisteredValueError(too_long)
    stripped = _strip_dn(value) if field == SUBJECT_DN else value.strip()
    if not stripped:
        raise RegisteredValueError(f"{field} must not be empty")
    if field == SUBJECT_DN:
        # R8705-2.1.2-2: an RFC 4514 string; parse_dn explains what is wrong with it.
        try:
            parse_dn(stripped)
        except RegisteredValueError as exc:
            raise RegisteredValueError(f"{field} is not a distinguished name: {exc}") from None
        return stripped
    if _CONTROL_OR_SPACE.search(stripped):
        raise RegisteredValueError(f"{field} must not contain spaces or control characters")
    if field == SAN_DNS:
        _check_dns(stripped)
    elif field == SAN_URI:
        _ascii_only(
            field,
            stripped,
            "a uniformResourceIdentifier SAN is an IA5String; percent-encode the rest",
        )
        if _uri_key(stripped) is None:
            raise RegisteredValueError(f"{field} is not an absolute URI: {stripped!r}")
    elif field == SAN_IP:
        _check_ip(stripped)
    else:
        _ascii_only(field, stripped, "an rfc822Name SAN is an IA5String")
        local, at, domain = stripped.rpartition("@")
        if not (local and at and domain):
            raise RegisteredValueError(
                f"{field} is not an email address (local@domain): {stripped!r}"
            )
        _check_dns(domain, field)
    return stripped


def _check_ip(value: str) -> None:
    # P4: RFC 8705 §2.1.2 wants IPv4 dotted-decimal or IPv6 text (RFC 5952), one address.
    if "%" in value:
        raise RegisteredValueError(f"{SAN_IP} must not carry a zone id: {value!r}")
    if "/" in value:
        raise RegisteredValueError(f"{SAN_IP} is one address, not a network: {value!r}")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if ":" not in value and _IPV4_LEADING_ZERO.search(value):
            raise RegisteredValueError(
                f"{SAN_IP} has a leading zero in an IPv4 octet (ambiguous octal): {value!r}"
            ) from None
        raise RegisteredValueError(f"{SAN_IP} is not an IPv4 or IPv6 address: {value!r}") from None
