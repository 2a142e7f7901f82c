"""RFC 8705 client metadata read off a client's certificate (PURE: no request, settings or ORM).

``tls_client_auth`` (§2.1.2) registers exactly one of the certificate's subject DN or SANs;
``self_signed_tls_client_auth`` (§2.2.2) registers the certificate itself, as ``x5c[0]`` of a JWK
in the client's ``jwks``. The admin's "from a certificate" helper and ``manage.py
mtls_set_client`` both build the registration with these functions.
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

from .certificates import ClientCertificate, certificate_from_der, ders_from_pem
from .exceptions import IntakeError
from .jwks import JWKSetError, parse_jwk_set
from .matching import SAN_DNS, SAN_EMAIL, SAN_IP, SAN_URI, SUBJECT_DN

__all__ = [
    "MAX_PEM_BYTES",
    "USE_CHOICES",
    "USE_JWKS",
    "ValueChoiceError",
    "add_to_jwk_set",
    "certificate_values",
    "choose_value",
    "read_pem_certificate",
    "self_signed_jwk",
]

#: ``--use`` names (and the helper's choice prefixes) → the RFC 8705 §2.1.2 metadata field.
USE_CHOICES: dict[str, str] = {
    "subject_dn": SUBJECT_DN,
    "san_dns": SAN_DNS,
    "san_uri": SAN_URI,
    "san_ip": SAN_IP,
    "san_email": SAN_EMAIL,
}
#: The helper's choice that registers the certificate itself (RFC 8705 §2.2.2, ``x5c``).
USE_JWKS = "jwks"
#: A pasted or uploaded PEM larger than this is refused (a certificate is a few kilobytes).
MAX_PEM_BYTES = 65536


class ValueChoiceError(ValueError):
    """The certificate has no value of the kind asked for (``problem="none"``), several and
    none was named (``"several"``), or not the one named (``"not_found"``)."""

    def __init__(
        self, problem: str, use: str, values: list[str], wanted: str | None = None
    ) -> None:
        self.problem = problem
        self.use = use
        self.values = values
        self.wanted = wanted
        super().__init__(f"{problem}: {use} {wanted or ''} ({', '.join(values)})")


def read_pem_certificate(text: bytes) -> ClientCertificate:
    """The first certificate of a PEM text (the leaf); later blocks become its presented chain.

    Raises ``IntakeError`` (``malformed``, ``not_a_certificate``, ``too_large``), as the intake
    would.
    """
    if len(text) > MAX_PEM_BYTES:
        raise IntakeError("too_large", f"more than {MAX_PEM_BYTES} bytes")
    ders = ders_from_pem(text)
    return certificate_from_der(ders[0], tuple(ders[1:]))


def certificate_values(certificate: ClientCertificate) -> list[tuple[str, str]]:
    """``(use name, value)`` for the subject DN and every SAN the certificate carries, in order."""
    values = [("subject_dn", certificate.subject)]
    values += [("san_dns", value) for value in certificate.san_dns]
    values += [("san_uri", value) for value in certificate.san_uri]
    values += [("san_ip", str(value)) for value in certificate.san_ip]
    values += [("san_email", value) for value in certificate.san_email]
    return values


def _same_value(use: str, a: str, b: str) -> bool:
    if use == "san_ip":
        try:
            return ipaddress.ip_address(a) == ipaddress.ip_address(b.strip())
        except ValueError:
            return False
    if use in ("san_dns", "san_email"):
        return a.casefold() == b.strip().casefold()
    return a == b.strip()


def choose_value(certificate: ClientCertificate, use: str, wanted: str | None = None) -> str:
    """The certificate's value for ``use``; ``wanted`` picks one of several (or confirms one).

    IP addresses compare as addresses, DNS names and emails case-insensitively. Raises
    ``ValueChoiceError`` with the values the certificate has of that kind.
    """
    values = [value for kind, value in certificate_values(certificate) if kind == use]
    if not values:
        raise ValueChoiceError("none", use, values, wanted)
    if wanted is None:
        if len(values) > 1:
            raise ValueChoiceError("several", use, values)
        return values[0]
    for value in values:
        if _same_value(use, value, wanted):
            return value
    raise ValueChoiceError("not_found", use, values, wanted)


def self_signed_jwk(certificate: ClientCertificate) -> dict[str, Any]:
    """A public JWK of the certificate's key with the certificate as ``x5c[0]`` (RFC 7517 §4.7).

    ``kid`` and ``x5t#S256`` are the certificate's thumbprint, so operators can find it again.
    """
    from jwcrypto import jwk

    leaf = certificate.certificate
    if leaf is None:  # pragma: no cover - certificate_from_der always sets it
        raise ValueError("the certificate was not parsed")
    key: dict[str, Any] = jwk.JWK.from_pyca(leaf.public_key()).export_public(as_dict=True)
    key["kid"] = certificate.x5t_s256
    key["x5t#S256"] = certificate.x5t_s256
    key["x5c"] = [base64.b64encode(certificate.der).decode("ascii")]
    return key


def add_to_jwk_set(jwks: Any, certificate: ClientCertificate) -> dict[str, Any]:
    """``jwks`` with a JWK for ``certificate`` appended (unless it is already x5c[0] of one).

    Keeping the existing keys lets a client rotate: both certificates work until the old JWK
    is removed. An unusable existing set is replaced.
    """
    keys: list[Any] = []
    if isinstance(jwks, dict) and isinstance(jwks.get("keys"), list):
        try:
            if certificate.der in parse_jwk_set(jwks):
                return jwks
            keys = list(jwks["keys"])
        except JWKSetError:
            keys = []
    return {"keys": [*keys, self_signed_jwk(certificate)]}
