"""Test PKI made at test time with ``cryptography``: CAs, leaves, and header encodings.

Dates are FIXED unless a test asks otherwise: ``NOT_BEFORE`` 2026-01-01, ``NOT_AFTER`` 2036-01-01
(ten years, so nothing here expires while the suite is maintained). Validation-time tests pin
their own clock.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NOT_BEFORE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2036, 1, 1, tzinfo=dt.UTC)

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_key(kind: str = "ec", bits: int = 2048) -> PrivateKey:
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=bits)
    curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "ec": ec.SECP256R1()}[kind]
    return ec.generate_private_key(curve)


def name(**attributes: str) -> x509.Name:
    """``name(CN="client", O="Example")`` → an ``x509.Name`` in the order given."""
    oids = {
        "CN": NameOID.COMMON_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "C": NameOID.COUNTRY_NAME,
        "L": NameOID.LOCALITY_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
        "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
    }
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes.items()])


@dataclass
class Issued:
    """A certificate with its key, and the encodings proxies use."""

    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def key_pem(self) -> str:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @property
    def x5t_s256(self) -> str:
        digest = self.cert.fingerprint(hashes.SHA256())
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    # --- header encodings, as each proxy sends them ---
    def nginx(self) -> str:
        """``$ssl_client_escaped_cert``: URL-encoded PEM."""
        return quote(self.pem, safe="-")

    def apache(self) -> str:
        """``%{SSL_CLIENT_CERT}s``: PEM with newlines as spaces."""
        return self.pem.strip().replace("\n", " ")

    def b64(self) -> str:
        """HAProxy ``%[ssl_c_der,base64]``, Azure ``X-ARR-ClientCert``."""
        return base64.b64encode(self.der).decode("ascii")

    def rfc9440(self) -> str:
        return f":{self.b64()}:"


def issue(
    subject: x509.Name,
    *,
    issuer: Issued | None = None,
    key: PrivateKey | None = None,
    ca: bool = False,
    dns: tuple[str, ...] = (),
    uris: tuple[str, ...] = (),
    emails: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    eku: tuple[x509.ObjectIdentifier, ...] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
    not_before: dt.datetime = NOT_BEFORE,
    not_after: dt.datetime = NOT_AFTER,
    path_length: int | None = None,
    key_usage: x509.KeyUsage | None | str = "default",
) -> Issued:
    """Issue a certificate; without ``issuer`` it is self-signed.

    ``key_usage``: ``"default"`` (keyCertSign and cRLSign for a CA, digitalSignature for a leaf),
    ``None`` (no keyUsage extension) or an ``x509.KeyUsage`` (see ``key_usage()``).
    """
    key = key or make_key()
    signer_key = issuer.key if issuer else key
    issuer_name = issuer.cert.subject if issuer else subject
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), False
        )
    if isinstance(key_usage, x509.KeyUsage):
        builder = builder.add_extension(key_usage, True)
    elif key_usage is None:
        pass
    elif ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
    else:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            True,
        )
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.UniformResourceIdentifier(u) for u in uris]
    names += [x509.RFC822Name(e) for e in emails]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
    if eku and not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), False)
    cert = builder.sign(signer_key, hashes.SHA256())
    chain = [issuer.cert, *issuer.chain] if issuer else []
    return Issued(cert=cert, key=key, chain=chain)


def key_usage(**flags: bool) -> x509.KeyUsage:
    """``key_usage(key_encipherment=True)``: a keyUsage extension with only the bits named."""
    bits = dict.fromkeys(
        (
            "digital_signature",
            "content_commitment",
            "key_encipherment",
            "data_encipherment",
            "key_agreement",
            "key_cert_sign",
            "crl_sign",
            "encipher_only",
            "decipher_only",
        ),
        False,
    )
    unknown = set(flags) - set(bits)
    if unknown:
        raise TypeError(f"unknown keyUsage bits {sorted(unknown)}")
    bits.update(flags)
    return x509.KeyUsage(**bits)


def make_ca(common_name: str = "Test Root CA", **kwargs: object) -> Issued:
    return issue(name(CN=common_name, O="Test PKI"), ca=True, **kwargs)  # type: ignore[arg-type]
