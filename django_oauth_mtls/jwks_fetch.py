"""Fetching ``jwks_uri`` sets (RFC 8705 §2.2.2). Placeholder until the safe fetcher lands."""

from __future__ import annotations

from .exceptions import ClientAuthError


def fetched_certificates(uri: str, *, refresh: bool = False) -> frozenset[bytes]:
    raise ClientAuthError("jwk_set_unavailable", "jwks_uri fetching is not available yet")
