"""JWK sets of self-signed clients (RFC 8705 §2.2; RFC 7517 §4.7 ``x5c``).

Pure module: no Django, no settings, no network. ``parse_jwk_set`` checks that every JWK's
``x5c[0]`` carries the JWK's own key (via jwcrypto), so a set whose certificate and key disagree
is refused when it is stored or fetched, and returns the DER of each ``x5c[0]`` — the
certificates a client may present. Which set a client has (its inline ``jwks``, or its
``jwks_uri`` through the fetcher) is decided in :mod:`django_oauth_mtls.jwks_client`.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes

__all__ = ["JWKSetError", "parse_jwk_set"]

#: RFC 7518 §6.2.2, §6.3.2, §6.4.1: members that only a private or symmetric key carries.
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class JWKSetError(ValueError):
    """A JWK set that cannot be used for ``self_signed_tls_client_auth``."""


def _x5c_der(item: Any, index: int) -> bytes:
    # P22: x5c is standard base64 (not base64url), possibly shown wrapped: strip whitespace.
    if not isinstance(item, str):
        raise JWKSetError(f"keys[{index}].x5c[0] is not a string")
    try:
        return base64.b64decode("".join(item.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise JWKSetError(f"keys[{index}].x5c[0] is not standard base64") from exc


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _check_thumbprint_member(
    member: Mapping[str, Any], name: str, certificate: x509.Certificate, index: int
) -> None:
    # RFC 7517 §4.8, §4.9: x5t / x5t#S256, when present, are the thumbprints of x5c[0].
    value = member.get(name)
    if value is None:
        return
    algorithm = hashes.SHA256() if name == "x5t#S256" else hashes.SHA1()
    expected = _b64url(certificate.fingerprint(algorithm))
    if not isinstance(value, str) or not hmac.compare_digest(
        value.encode("utf-8", "surrogatepass"), expected.encode("ascii")
    ):
        raise JWKSetError(f"keys[{index}].{name} is not the thumbprint of x5c[0]")


def parse_jwk_set(value: Mapping[str, Any] | str | bytes) -> tuple[bytes, ...]:
    """The DER certificates of a JWK set; raise ``JWKSetError`` with a message on any defect.

    Keys without ``x5c`` are allowed (a set may hold other keys) but contribute nothing. A key
    with private members is refused outright: a published set must be public.
    """
    from jwcrypto import jwk

    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (ValueError, UnicodeError, RecursionError) as exc:
            raise JWKSetError("the JWK set is not valid JSON") from exc
    if not isinstance(value, Mapping) or not isinstance(value.get("keys"), list):
        raise JWKSetError('a JWK set is an object with a "keys" array')
    certificates: list[bytes] = []
    for index, member in enumerate(value["keys"]):
        if not isinstance(member, Mapping):
            raise JWKSetError(f"keys[{index}] is not an object")
        private = sorted(PRIVATE_MEMBERS.intersection(member))
        if private:
            raise JWKSetError(
                f"keys[{index}] contains private or symmetric key material ({', '.join(private)})"
            )
        x5c = member.get("x5c")
        if x5c is None:
            continue  # keys without certificates are allowed in a set but never match
        if not isinstance(x5c, list) or not x5c:
            raise JWKSetError(f"keys[{index}].x5c must be a non-empty array")
        der = _x5c_der(x5c[0], index)
        try:
            certificate = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion) as exc:
            raise JWKSetError(f"keys[{index}].x5c[0] is not an X.509 certificate") from exc
        public_members = {k: v for k, v in member.items() if k != "x5c"}
        try:
            key = jwk.JWK(**public_members)
            from_cert = jwk.JWK.from_pyca(certificate.public_key())
        except Exception as exc:  # jwcrypto raises a variety of types for bad members
            raise JWKSetError(f"keys[{index}] is not a valid JWK: {type(exc).__name__}") from exc
        if key.has_private:
            raise JWKSetError(f"keys[{index}] contains private key material")
        # RFC 7517 §4.7: the key in x5c[0] MUST match the JWK's key members.
        if key.thumbprint() != from_cert.thumbprint():
            raise JWKSetError(f"keys[{index}].x5c[0] does not match the JWK's key")
        _check_thumbprint_member(member, "x5t#S256", certificate, index)
        _check_thumbprint_member(member, "x5t", certificate, index)
        certificates.append(der)
    return tuple(certificates)
