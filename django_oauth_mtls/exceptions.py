"""Errors that carry the project's closed lists of reason codes (``docs/api.md``)."""

from __future__ import annotations

from typing import Final

#: Why a request has no usable client certificate (closed list; extend ``docs/api.md`` first).
INTAKE_REASONS: Final = frozenset(
    {
        "source_disabled",
        "absent",
        "untrusted_peer",
        "duplicate",
        "too_large",
        "malformed",
        "not_a_certificate",
        "chain_without_leaf",
        "hash_mismatch",
    }
)

#: Why a certificate did not authenticate a client (closed list).
CLIENT_AUTH_REASONS: Final = frozenset(
    {
        "no_certificate",
        "client_id_missing",
        "method_conflict",
        "chain_invalid",
        "expired",
        "not_yet_valid",
        "wrong_eku",
        "wrong_key_usage",
        "weak_key",
        "pin_mismatch",
        "subject_mismatch",
        "not_in_jwk_set",
        "jwk_set_unavailable",
    }
)


#: Why a JWT access token was refused at a resource (closed list).
JWT_REASONS: Final = frozenset(
    {
        "jwt_malformed",
        "jwt_signature",
        "jwt_algorithm",
        "jwt_type",
        "jwt_issuer",
        "jwt_audience",
        "jwt_expired",
        "jwt_not_yet_valid",
        "jwt_unknown_key",
        "jwt_keys_unavailable",
    }
)

#: Why a protected resource refused an access token, opaque or JWT (closed list).
ACCESS_TOKEN_REASONS: Final = (
    frozenset({"token_invalid", "certificate_missing", "certificate_mismatch", "unbound_refused"})
    | JWT_REASONS
)


class TokenEndpointHeaders:
    """For OAuth2 errors raised while tokens are saved, past oauthlib's error handling: they
    carry the token endpoint's headers themselves (RFC 6749 §5.1, §5.2), and DOT's
    ``OAuthLibCore`` turns them into the response."""

    @property
    def headers(self) -> dict[str, str]:
        return {
            **super().headers,  # type: ignore[misc]
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }


class IntakeError(ValueError):
    """A certificate field could not be accepted; ``code`` is one of ``INTAKE_REASONS``."""

    def __init__(self, code: str, detail: str = "") -> None:
        if code not in INTAKE_REASONS:
            raise ValueError(f"unknown intake reason code {code!r}")
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}" if detail else code)


class ClientAuthError(Exception):
    """A certificate did not authenticate a client; ``code`` is one of ``CLIENT_AUTH_REASONS``.

    ``description`` is safe to send to the client (RFC 6749 §5.2 ``error_description``): it
    names what was wrong, never a secret.
    """

    def __init__(self, code: str, description: str) -> None:
        if code not in CLIENT_AUTH_REASONS:
            raise ValueError(f"unknown client-auth reason code {code!r}")
        self.code = code
        self.description = description
        super().__init__(f"{code}: {description}")
