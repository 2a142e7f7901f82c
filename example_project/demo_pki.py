"""The demo's PKI, made at run time with ``cryptography``: nothing is stored in the repository.

- a demo root CA (the app trusts it: ``OAUTH2_MTLS_TRUSTED_CA``), which also issues the TLS
  server certificate for ``localhost``;
- a PKI client certificate issued by that CA (SAN dns, EKU clientAuth) for ``tls_client_auth``;
- a self-signed client certificate for ``self_signed_tls_client_auth`` (registered as ``x5c[0]``
  of a JWK);
- a stranger's self-signed certificate, registered nowhere.

Every key is EC P-256; certificates are valid from five minutes ago for one day.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class Issued:
    """A certificate, its key, and the files they were written to."""

    label: str
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    @property
    def x5t_s256(self) -> str:
        """RFC 8705 §3.1: base64url SHA-256 of the DER certificate."""
        return b64url(self.cert.fingerprint(hashes.SHA256()))

    @property
    def san_dns(self) -> list[str]:
        try:
            san = self.cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return list(san.value.get_values_for_type(x509.DNSName))

    def write(self, directory: Path, stem: str) -> Issued:
        """``<stem>.pem`` (0644) and ``<stem>-key.pem`` (0600, readable by its owner only)."""
        self.cert_file = directory / f"{stem}.pem"
        self.key_file = directory / f"{stem}-key.pem"
        self.cert_file.write_text(self.pem)
        descriptor = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(
                self.key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        self.cert_file.chmod(0o644)
        return self

    def jwk(self) -> dict[str, object]:
        """The public JWK of this certificate's key with the certificate as ``x5c[0]``
        (RFC 8705 §2.2.2; ``x5c`` is standard base64, not base64url)."""
        numbers = self.key.public_key().public_numbers()
        size = (self.key.curve.key_size + 7) // 8
        der = self.cert.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64url(numbers.x.to_bytes(size, "big")),
            "y": b64url(numbers.y.to_bytes(size, "big")),
            "x5c": [base64.b64encode(der).decode("ascii")],
        }


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "django-oauth-mtls demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )


def make_ca(common_name: str) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return Issued("CA", cert, key)


def issue(
    common_name: str,
    issuer: Issued,
    *,
    dns: tuple[str, ...] = (),
    ips: tuple[str, ...] = (),
    server: bool = False,
) -> Issued:
    """A leaf issued by ``issuer``: clientAuth (or serverAuth with ``server``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(value) for value in dns]
    names += [x509.IPAddress(ipaddress.ip_address(value)) for value in ips]
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(_name(common_name), issuer.cert.subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()),
            critical=False,
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(common_name, builder.sign(issuer.key, hashes.SHA256()), key)


def self_signed(common_name: str) -> Issued:
    """A self-signed client certificate (RFC 8705 §2.2): no CA vouches for it."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(common_name)
    cert = (
        _builder(subject, subject, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(common_name, cert, key)


@dataclass
class DemoPki:
    ca: Issued
    server: Issued
    pki_client: Issued
    self_signed_client: Issued
    stranger: Issued


#: The DNS name in the PKI client's certificate, registered as ``tls_client_auth_san_dns``.
PKI_CLIENT_DNS = "pki-client.demo.example"


def make_demo_pki(directory: Path) -> DemoPki:
    """Make every certificate the demo uses and write them (with their keys) to ``directory``."""
    ca = make_ca("Demo Root CA").write(directory, "demo-root-ca")
    return DemoPki(
        ca=ca,
        server=issue(
            "localhost", ca, dns=("localhost",), ips=("127.0.0.1", "::1"), server=True
        ).write(directory, "server"),
        pki_client=issue("pki-client", ca, dns=(PKI_CLIENT_DNS,)).write(directory, "pki-client"),
        self_signed_client=self_signed("self-signed-client").write(directory, "self-signed-client"),
        stranger=self_signed("stranger").write(directory, "stranger"),
    )
