"""What a refused client is told: one fixed ``error_description`` per reason (RFC 6749 §5.2).

Pure module: no Django import. RFC 6749 §5.2 makes ``error_description`` human-readable text
"to assist the client developer". Ours names what was wrong, from a closed set of phrases: one
per client-auth reason code (``exceptions.CLIENT_AUTH_REASONS``), and for ``no_certificate`` one
per intake reason code (``exceptions.INTAKE_REASONS``). It never carries variable content: no
distinguished name, no repr, no library or exception text, no host, address, port, status or
timing. Those stay in ``ClientAuthError.description``, which goes to the log line only.

A protected resource that refuses an access token (RFC 6750 §3.1 ``invalid_token``) says why
with one phrase per access-token reason code (``ACCESS_TOKEN_REASONS``); for ``token_invalid``
the phrase DOT chose (invalid, expired, not valid for this resource) stands, each fixed too.

For a ``jwks_uri`` that could not be fetched (``jwk_set_unavailable``) the phrase is the same
whatever happened, so a client cannot use the token endpoint to learn whether a host or port
of its choosing answered.
"""

from __future__ import annotations

from typing import Final

from .exceptions import ACCESS_TOKEN_REASONS

__all__ = [
    "ACCESS_TOKEN_PHRASES",
    "ACCESS_TOKEN_REASONS",
    "BEARER_CONFLICT",
    "GENERIC",
    "access_token_description",
    "client_auth_description",
]

#: For a code outside the closed list (never raised; a refusal must still say something).
GENERIC: Final = "client authentication failed"

#: One phrase per client-auth reason code (``no_certificate`` is completed by the intake's).
CLIENT_AUTH_PHRASES: Final[dict[str, str]] = {
    "no_certificate": "the client certificate was refused",
    "client_id_missing": "client_id is required with certificate authentication",
    "method_conflict": (
        "this client authenticates with its certificate alone: "
        "no client secret, Basic credentials or client assertion"
    ),
    "chain_invalid": (
        "the client certificate does not validate to a trusted certification authority"
    ),
    "expired": "the client certificate has expired",
    "not_yet_valid": "the client certificate is not yet valid",
    "wrong_eku": (
        "the client certificate's extended key usage does not allow TLS client authentication"
    ),
    "wrong_key_usage": "the client certificate's key usage does not allow digital signatures",
    "weak_key": "the client certificate's key is too weak or of an unsupported type",
    "pin_mismatch": (
        "the client certificate is not issued under the certification authority pinned for "
        "this client"
    ),
    "subject_mismatch": (
        "the client certificate does not match the subject registered for this client"
    ),
    "not_in_jwk_set": "the client certificate is not in the client's registered JWK set",
    "jwk_set_unavailable": "the client's JWK set could not be obtained",
}

#: Why no certificate reached client authentication, by intake reason code.
INTAKE_PHRASES: Final[dict[str, str]] = {
    "source_disabled": "the server reads no client certificates",
    "absent": "no client certificate was presented",
    "untrusted_peer": "the certificate did not come through a trusted proxy",
    "duplicate": "more than one client certificate field was received",
    "too_large": "the client certificate field is too large",
    "malformed": "the client certificate could not be decoded",
    "not_a_certificate": "the client certificate could not be parsed",
    "chain_without_leaf": "the certificate chain carries no client certificate",
    "hash_mismatch": "the certificate does not match the hash the proxy sent",
}

#: ``method_conflict`` when the second credential is a bearer token (any client).
BEARER_CONFLICT: Final = "a bearer token was sent alongside client credentials"

#: The methods a ``no_certificate`` phrase may name (RFC 8705 §2.1.1, §2.2.1).
_CERTIFICATE_METHODS: Final = frozenset({"tls_client_auth", "self_signed_tls_client_auth"})


def client_auth_description(code: str, intake: str | None = None, method: str | None = None) -> str:
    """The ``error_description`` for a refusal with client-auth reason ``code``.

    ``intake`` (an intake reason code) completes ``no_certificate``; ``method`` (the client's
    registered ``token_endpoint_auth_method``) names what requires the certificate when it is a
    certificate method. Other arguments are ignored; nothing passed in is echoed, and an
    unknown ``code`` gets a generic phrase rather than an error.
    """
    phrase = CLIENT_AUTH_PHRASES.get(code)
    if phrase is None:
        return GENERIC
    if code != "no_certificate":
        return phrase
    reason = INTAKE_PHRASES.get(intake or "", phrase)
    if method in _CERTIFICATE_METHODS:
        return f"{method} requires a client certificate: {reason}"
    return f"a client certificate is required: {reason}"


#: One ``error_description`` per access-token reason code (RFC 6750 §3, ``invalid_token``).
ACCESS_TOKEN_PHRASES: Final[dict[str, str]] = {
    "token_invalid": "the access token is invalid",
    "certificate_missing": (
        "the access token is certificate-bound; no client certificate was presented"
    ),
    "certificate_mismatch": "the access token is bound to another client certificate",
    "unbound_refused": "a certificate-bound access token is required",
    "jwt_malformed": "the access token is not a well-formed JWT access token",
    "jwt_signature": "the access token's signature does not verify",
    "jwt_algorithm": "the access token's signing algorithm is not accepted here",
    "jwt_type": "the access token is not typed at+jwt",
    "jwt_issuer": "the access token is not from the expected issuer",
    "jwt_audience": "the access token is not intended for this resource",
    "jwt_expired": "the access token has expired",
    "jwt_not_yet_valid": "the access token is not yet valid",
    "jwt_unknown_key": "the access token is signed with a key this resource does not know",
    "jwt_keys_unavailable": "the keys that verify access tokens are unavailable",
}


def access_token_description(reason: str) -> str:
    """The ``error_description`` for an access token refused with ``reason``."""
    return ACCESS_TOKEN_PHRASES.get(reason, ACCESS_TOKEN_PHRASES["token_invalid"])
