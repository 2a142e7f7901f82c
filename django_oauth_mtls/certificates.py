"""The client certificate a request presented, as a small immutable value (RFC 8705 §3.1).

Pure module: no Django import. ``x5t#S256`` is the base64url (unpadded) SHA-256 of the
certificate's DER encoding (RFC 8705 §3.1), never of the PEM text, the SPKI or the chain.
The intake never judges dates, versions or key sizes; client authentication does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
from dataclasses import dataclass, field
from datetime import datetime

from cryptography import x509

from .exceptions import IntakeError

__all__ = [
    "ClientCertificate",
    "certificate_from_der",
    "der_from_pem",
    "ders_from_pem",
    "x5t_s256",
]

PEM_BLOCK = re.compile(
    rb"-----BEGIN CERTIFICATE-----(?P<body>[A-Za-z0-9+/=\s]*)-----END CERTIFICATE-----"
)
#: What ``rb"\s"`` matches, for ``bytes.translate`` (ten times faster than ``re.sub``).
_WHITESPACE = b" \t\n\r\x0b\x0c"


def x5t_s256(der: bytes) -> str:
    """RFC 8705 §3.1: base64url(SHA-256(DER)) without padding, 43 characters."""
    return base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode("ascii")


def b64decode_strict(data: bytes) -> bytes:
    """Standard base64, padding optional (RFC 8941 §3.3.5); anything else is ``malformed``."""
    data = data.translate(None, _WHITESPACE)
    if not data:
        raise IntakeError("malformed", "empty base64 value")
    data += b"=" * (-len(data) % 4)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise IntakeError("malformed", "invalid base64") from exc


def ders_from_pem(text: bytes) -> list[bytes]:
    """Every CERTIFICATE block of a PEM text, in order; only whitespace may surround them.

    Newlines may have become spaces (Apache) or tabs (obs-fold); trailing junk is refused.
    """
    ders: list[bytes] = []
    position = 0
    for match in PEM_BLOCK.finditer(text):
        if text[position : match.start()].strip():
            raise IntakeError("malformed", "unexpected data around the PEM block")
        ders.append(b64decode_strict(match.group("body")))
        position = match.end()
    if not ders:
        raise IntakeError("malformed", "no PEM certificate block")
    if text[position:].strip():
        raise IntakeError("malformed", "unexpected data after the PEM block")
    return ders


def der_from_pem(text: bytes) -> bytes:
    """Exactly one PEM certificate block → its DER."""
    ders = ders_from_pem(text)
    if len(ders) != 1:
        raise IntakeError("malformed", f"{len(ders)} PEM blocks where one was expected")
    return ders[0]


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """The leaf certificate a request presented, with what OAuth needs from it precomputed."""

    der: bytes = field(repr=False)
    x5t_s256: str
    subject: str
    san_dns: tuple[str, ...] = ()
    san_uri: tuple[str, ...] = ()
    san_email: tuple[str, ...] = ()
    san_ip: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
    not_before: datetime | None = None
    not_after: datetime | None = None
    chain: tuple[bytes, ...] = field(default=(), repr=False)
    proxy_verified: bool | None = None
    certificate: x509.Certificate | None = field(default=None, repr=False, compare=False)


def certificate_from_der(der: bytes, chain: tuple[bytes, ...] = ()) -> ClientCertificate:
    """Parse a DER certificate; anything else raises ``IntakeError("not_a_certificate")``.

    The chain's members are checked to be certificates too, so a later chain validation never
    meets garbage.
    """
    try:
        cert = x509.load_der_x509_certificate(der)
        for member in chain:
            x509.load_der_x509_certificate(member)
        subject = cert.subject.rfc4514_string()
        san_dns: tuple[str, ...] = ()
        san_uri: tuple[str, ...] = ()
        san_email: tuple[str, ...] = ()
        san_ip: tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, ...] = ()
        if cert.version is not x509.Version.v1:
            try:
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            except x509.ExtensionNotFound:
                pass
            else:
                san_dns = tuple(san.get_values_for_type(x509.DNSName))
                san_uri = tuple(san.get_values_for_type(x509.UniformResourceIdentifier))
                san_email = tuple(san.get_values_for_type(x509.RFC822Name))
                san_ip = tuple(
                    ip
                    for ip in san.get_values_for_type(x509.IPAddress)
                    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address)
                )
        not_before = cert.not_valid_before_utc
        not_after = cert.not_valid_after_utc
    except (
        ValueError,
        TypeError,
        x509.DuplicateExtension,
        x509.UnsupportedGeneralNameType,
        x509.InvalidVersion,  # an X.509 version other than v1-v3; not a ValueError
    ) as exc:
        raise IntakeError("not_a_certificate", "not a parseable X.509 certificate") from exc
    return ClientCertificate(
        der=der,
        x5t_s256=x5t_s256(der),
        subject=subject,
        san_dns=san_dns,
        san_uri=san_uri,
        san_email=san_email,
        san_ip=san_ip,
        not_before=not_before,
        not_after=not_after,
        chain=chain,
        certificate=cert,
    )
