"""PKI validation of a client certificate for ``tls_client_auth`` (RFC 8705 §2.1, §6.1, §7.5).

Pure module: no Django import. A proxy that also serves self-signed clients must request
certificates without validating them (nginx ``optional_no_ca``), so the app validates the chain
itself with ``cryptography``'s X.509 verifier.

Extension policy. The verifier's defaults are the Web PKI's (CA/Browser Forum), made for TLS
servers. We keep them for CA certificates (basicConstraints, keyUsage keyCertSign, path length,
name constraints) and relax exactly one end-entity rule: the subjectAltName extension may be
absent, because the private CAs of Open Banking and eIDAS issue DN-only client certificates and
RFC 8705 §2.1.2 matches on the subject DN alone. On top of the verifier we check what a client
certificate needs: the EKU, when present, includes clientAuth (the client verifier enforces
this too); the keyUsage, when present, includes digitalSignature (RFC 5280 §4.2.1.3; the
verifier does not check it for an end entity); the validity period with
``CLOCK_SKEW_SECONDS`` of tolerance; RSA keys of at least ``MIN_RSA_KEY_BITS`` and EC keys of
at least P-256; X.509 v3 (v1 cannot carry the extensions a PKI relies on, so it is refused
here; self-signed clients may use v1). ``check_client_usage`` (EKU and keyUsage) also runs when
the proxy's verdict replaces the chain validation; ``check_key_usage`` for self-signed clients.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from .exceptions import ClientAuthError

__all__ = [
    "TrustStore",
    "ValidatedPath",
    "check_client_usage",
    "check_key_strength",
    "check_key_usage",
    "check_validity",
    "spki_sha256",
    "validate_chain",
]

MAX_CHAIN_DEPTH = 8


@dataclass(frozen=True)
class TrustStore:
    """Trust anchors and known intermediates; ``version`` changes whenever their content does."""

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...] = ()
    version: str = ""

    @classmethod
    def from_pem(cls, anchors_pem: bytes, intermediates_pem: bytes = b"") -> TrustStore:
        try:
            anchors = (
                tuple(x509.load_pem_x509_certificates(anchors_pem)) if anchors_pem.strip() else ()
            )
            intermediates = (
                tuple(x509.load_pem_x509_certificates(intermediates_pem))
                if intermediates_pem.strip()
                else ()
            )
        except x509.InvalidVersion as exc:  # not a ValueError: callers expect one
            raise ValueError(str(exc)) from exc
        version = hashlib.sha256(anchors_pem + b"\0" + intermediates_pem).hexdigest()
        return cls(anchors=anchors, intermediates=intermediates, version=version)


@dataclass(frozen=True)
class ValidatedPath:
    """The path the verifier built, leaf first, and until when the result may be reused."""

    chain: tuple[x509.Certificate, ...]
    valid_until: dt.datetime


def spki_sha256(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the SubjectPublicKeyInfo DER: what a trust pin names (key, not DN)."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def check_validity(certificate: x509.Certificate, now: dt.datetime, skew_seconds: int) -> None:
    """Refuse an expired or not yet valid certificate, with ``skew_seconds`` of tolerance."""
    skew = dt.timedelta(seconds=max(skew_seconds, 0))
    if now - skew > certificate.not_valid_after_utc:
        raise ClientAuthError(
            "expired",
            f"client certificate expired at {certificate.not_valid_after_utc.isoformat()}",
        )
    if now + skew < certificate.not_valid_before_utc:
        raise ClientAuthError(
            "not_yet_valid",
            f"client certificate is not valid before "
            f"{certificate.not_valid_before_utc.isoformat()}",
        )


def check_key_strength(certificate: x509.Certificate, min_rsa_bits: int) -> None:
    """RSA keys of at least ``min_rsa_bits``, EC keys of at least 256 bits; EdDSA is fine."""
    try:
        key = certificate.public_key()
    except (ValueError, TypeError) as exc:
        raise ClientAuthError("weak_key", "client certificate key cannot be read") from exc
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < min_rsa_bits:
            raise ClientAuthError(
                "weak_key", f"RSA key of {key.key_size} bits, at least {min_rsa_bits} required"
            )
    elif isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.key_size < 256:
            raise ClientAuthError(
                "weak_key", f"EC key on {key.curve.name}, at least P-256 required"
            )
    elif isinstance(key, dsa.DSAPublicKey):
        raise ClientAuthError("weak_key", "DSA keys are not accepted")
    elif not isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
        raise ClientAuthError("weak_key", "unsupported public key type")


def _check_eku(certificate: x509.Certificate) -> None:
    # RFC 8705 §7.5 / RFC 5280 §4.2.1.12: when an EKU is present it must allow clientAuth.
    try:
        eku = certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise ClientAuthError(
            "chain_invalid", "malformed extensions in client certificate"
        ) from exc
    if (
        ExtendedKeyUsageOID.CLIENT_AUTH not in eku
        and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    ):
        raise ClientAuthError("wrong_eku", "client certificate EKU does not include clientAuth")


def check_key_usage(certificate: x509.Certificate) -> None:
    """Refuse a certificate whose keyUsage, when present, does not list digitalSignature.

    RFC 5280 §4.2.1.3: with the extension present, the key may be used only as it lists; a TLS
    client proves its key by signing the handshake (RFC 8446 §4.4.3, RFC 5246 §7.4.8), which
    needs digitalSignature. No keyUsage extension: no restriction.
    """
    try:
        usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    except ValueError as exc:
        raise ClientAuthError(
            "wrong_key_usage", "the keyUsage extension of the client certificate cannot be read"
        ) from exc
    if not usage.digital_signature:
        raise ClientAuthError(
            "wrong_key_usage",
            "client certificate keyUsage does not include digitalSignature (TLS client "
            "authentication signs with the key)",
        )


def check_client_usage(certificate: x509.Certificate) -> None:
    """What a client certificate may be used for, beside its chain: the EKU allows clientAuth
    (``wrong_eku``) and the keyUsage allows signing (``wrong_key_usage``), each when present."""
    _check_eku(certificate)
    check_key_usage(certificate)


def _policies() -> tuple[xv.ExtensionPolicy, xv.ExtensionPolicy]:
    ee = xv.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, xv.Criticality.AGNOSTIC, None
    )
    return xv.ExtensionPolicy.webpki_defaults_ca(), ee


class _ValidationCache:
    """Successful validations per (leaf, chain, trust-store version) until the path expires."""

    def __init__(self, maxsize: int = 1024) -> None:
        self._entries: OrderedDict[bytes, ValidatedPath] = OrderedDict()
        self._lock = threading.Lock()
        self._maxsize = maxsize

    def get(self, key: bytes, now: dt.datetime) -> ValidatedPath | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if now >= entry.valid_until:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry

    def put(self, key: bytes, value: ValidatedPath) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self._maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


validation_cache = _ValidationCache()


def validate_chain(
    leaf: x509.Certificate,
    leaf_der: bytes,
    presented_chain: Sequence[bytes],
    store: TrustStore,
    *,
    now: dt.datetime,
    skew_seconds: int,
    min_rsa_bits: int,
) -> ValidatedPath:
    """Validate ``leaf`` up to one of ``store.anchors``; raise ``ClientAuthError`` with a code.

    Cheap checks with precise reasons first (version, dates, key, EKU), then the verifier.
    Successful results are cached until the earliest expiry on the path.
    """
    key = hashlib.sha256(b"\0".join([store.version.encode(), leaf_der, *presented_chain])).digest()
    cached = validation_cache.get(key, now)
    if cached is not None:
        return cached
    if leaf.version is not x509.Version.v3:
        raise ClientAuthError(
            "chain_invalid", "X.509 v1 certificates are refused for tls_client_auth"
        )
    check_validity(leaf, now, skew_seconds)
    check_key_strength(leaf, min_rsa_bits)
    check_client_usage(leaf)
    if not store.anchors:
        raise ClientAuthError("chain_invalid", "no trust anchors are configured")
    try:
        intermediates = [x509.load_der_x509_certificate(der) for der in presented_chain]
    except (ValueError, x509.InvalidVersion) as exc:
        raise ClientAuthError("chain_invalid", "the certificate chain is not parseable") from exc
    intermediates += list(store.intermediates)
    # Inside the skew window, verify at the nearest instant the leaf is valid.
    at = min(max(now, leaf.not_valid_before_utc), leaf.not_valid_after_utc)
    ca_policy, ee_policy = _policies()
    verifier = (
        xv.PolicyBuilder()
        .store(xv.Store(list(store.anchors)))
        .time(at)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=ca_policy, ee_policy=ee_policy)
        .build_client_verifier()
    )
    try:
        verified = verifier.verify(leaf, intermediates)
    except xv.VerificationError as exc:
        message = str(exc)
        if "EKU" in message:
            raise ClientAuthError(
                "wrong_eku", "client certificate EKU does not allow clientAuth"
            ) from exc
        raise ClientAuthError(
            "chain_invalid", f"certificate chain does not validate to a trusted CA ({message})"
        ) from exc
    chain = tuple(verified.chain)
    result = ValidatedPath(chain=chain, valid_until=min(c.not_valid_after_utc for c in chain))
    validation_cache.put(key, result)
    return result
