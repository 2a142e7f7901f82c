"""Does this certificate authenticate this client? (RFC 8705 §2.1, §2.2)

One function, used by the token endpoint's validator, the admin's "check a certificate" view
and the ``explain`` command, so the three always agree. It raises ``ClientAuthError`` with a
client-auth reason code and a description safe to show the client.
"""

from __future__ import annotations

import base64
import datetime as dt
import hmac
from collections.abc import Callable

from .certificates import ClientCertificate
from .conf import mtls_settings
from .exceptions import ClientAuthError
from .matching import certificate_matches
from .models import SELF_SIGNED_TLS_CLIENT_AUTH, TLS_CLIENT_AUTH, MTLSClient
from .truststore import get_trust_store
from .validation import (
    check_client_usage,
    check_key_strength,
    check_key_usage,
    check_validity,
    spki_sha256,
    validate_chain,
)

#: Receives each step's name and outcome (the explain command prints them).
StepCallback = Callable[[str, str], None]


def _noop(step: str, outcome: str) -> None:
    return None


def authenticate_certificate(
    mtls: MTLSClient,
    certificate: ClientCertificate,
    *,
    now: dt.datetime | None = None,
    step: StepCallback = _noop,
) -> None:
    """Raise ``ClientAuthError`` unless ``certificate`` authenticates the client of ``mtls``."""
    now = now or dt.datetime.now(dt.UTC)
    method = mtls.token_endpoint_auth_method
    # Issue 14: a value stored over its bound (limits.py; written before the bounds, or by raw
    # SQL) is refused unparsed. The code is what that client would get anyway: a PKI client's
    # registered subject can then match nothing (subject_mismatch); a self-signed client's set
    # cannot be used (jwk_set_unavailable; not_in_jwk_set would claim a comparison that never
    # ran). The caller logs the reason and this description; the system check W008 lists them.
    over_bound = next(iter(mtls.bound_problems().values()), None)
    if over_bound is not None:
        self_signed = method == SELF_SIGNED_TLS_CLIENT_AUTH
        code = "jwk_set_unavailable" if self_signed else "subject_mismatch"
        raise ClientAuthError(code, f"the registered {over_bound}")
    if method == TLS_CLIENT_AUTH:
        _authenticate_pki(mtls, certificate, now, step)
    elif method == SELF_SIGNED_TLS_CLIENT_AUTH:
        _authenticate_self_signed(mtls, certificate, now, step)
    else:
        raise ClientAuthError(
            "method_conflict", f"the client is registered for {method}, not a certificate method"
        )


def _authenticate_pki(
    mtls: MTLSClient, certificate: ClientCertificate, now: dt.datetime, step: StepCallback
) -> None:
    """RFC 8705 §2.1: a trusted chain, then the one registered subject value (leaf only)."""
    registered = mtls.subject_field
    if registered is None:
        raise ClientAuthError("subject_mismatch", "the client has no registered subject value")
    leaf = certificate.certificate
    if leaf is None:  # pragma: no cover - the intake always sets it
        raise ClientAuthError("chain_invalid", "the certificate could not be read")
    pinned = mtls.trust_pin_spki_sha256
    if mtls_settings.TRUST_PROXY_VERIFICATION and not pinned:
        if certificate.proxy_verified is not True:
            raise ClientAuthError("chain_invalid", "the proxy did not verify the certificate chain")
        if leaf.version.name != "v3":
            raise ClientAuthError(
                "chain_invalid", "X.509 v1 certificates are refused for tls_client_auth"
            )
        check_validity(leaf, now, mtls_settings.CLOCK_SKEW_SECONDS)
        check_key_strength(leaf, mtls_settings.MIN_RSA_KEY_BITS)
        check_client_usage(leaf)  # the verdict replaces the chain, not the EKU/keyUsage checks
        step("chain", "verified by the proxy (TRUST_PROXY_VERIFICATION)")
    else:
        path = validate_chain(
            leaf,
            certificate.der,
            certificate.chain,
            get_trust_store(),
            now=now,
            skew_seconds=mtls_settings.CLOCK_SKEW_SECONDS,
            min_rsa_bits=mtls_settings.MIN_RSA_KEY_BITS,
        )
        if step is not _noop:  # the description costs ~9 µs a request (RFC 4514 of each CA)
            step(
                "chain",
                "valid: " + " → ".join(c.subject.rfc4514_string() for c in path.chain),
            )
        if pinned:
            pin = base64.urlsafe_b64decode(pinned + "=")
            # Pinned by key, never by name: a CA with the same DN and another key fails.
            if not any(hmac.compare_digest(spki_sha256(ca), pin) for ca in path.chain[1:]):
                raise ClientAuthError(
                    "pin_mismatch", "no CA on the validated path carries the pinned key"
                )
            step("pin", "a CA on the path carries the pinned key")
    field, value = registered
    if not certificate_matches(
        certificate, field, value, match_order=mtls_settings.SUBJECT_DN_MATCH_ORDER
    ):
        raise ClientAuthError(
            "subject_mismatch", f"the certificate does not match the registered {field}"
        )
    step("match", f'{field} = "{value}" matches')


def _authenticate_self_signed(
    mtls: MTLSClient, certificate: ClientCertificate, now: dt.datetime, step: StepCallback
) -> None:
    """RFC 8705 §2.2: the certificate must be one of the client's registered certificates."""
    leaf = certificate.certificate
    if leaf is None:  # pragma: no cover
        raise ClientAuthError("not_in_jwk_set", "the certificate could not be read")
    if mtls_settings.CHECK_SELF_SIGNED_VALIDITY:
        check_validity(leaf, now, mtls_settings.CLOCK_SKEW_SECONDS)
    check_key_strength(leaf, mtls_settings.MIN_RSA_KEY_BITS)
    check_key_usage(leaf)  # RFC 5280 §4.2.1.3; before any jwks_uri fetch
    step("certificate", "validity and key strength ok (no chain validation for self-signed)")
    from .jwks_client import client_certificates

    # P21: whole-DER equality with x5c[0], not the key alone.
    if certificate.der in client_certificates(mtls):
        step("match", "the certificate is x5c[0] of a JWK in the client's set")
        return
    # Not found: the client may have rotated its jwks_uri set (re-fetch is rate-limited).
    if certificate.der not in client_certificates(mtls, refresh=True):
        raise ClientAuthError(
            "not_in_jwk_set", "the certificate is not in the client's registered JWK set"
        )
    step("match", "the certificate is x5c[0] of a JWK in the client's re-fetched set")
