"""Typed access to the ``OAUTH2_MTLS`` settings dict.

Every property reads ``django.conf.settings`` at access time, never at import time, so
``override_settings`` keeps working and a project can import this module before its settings
are configured. Values are validated by the system checks in :mod:`django_oauth_mtls.checks`;
at run time an odd value fails closed (e.g. a malformed ``TRUSTED_PROXIES`` entry trusts nobody).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings

SETTINGS_NAME = "OAUTH2_MTLS"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Every key of the public contract with its default (``docs/api.md``).
DEFAULTS: dict[str, Any] = {
    "CERTIFICATE_SOURCE": None,
    "CERTIFICATE_HEADER": None,
    "CERTIFICATE_CHAIN_HEADER": None,
    "VERIFY_HEADER": None,
    "VERIFY_SUCCESS_VALUES": None,
    "TRUSTED_PROXIES": [],
    "TRUST_UNIX_SOCKET_PEERS": False,
    "MAX_HEADER_BYTES": 16384,
    "TRUSTED_CA_CERTIFICATES": [],
    "INTERMEDIATE_CERTIFICATES": [],
    "TRUST_PROXY_VERIFICATION": False,
    "MIN_RSA_KEY_BITS": 2048,
    "CLOCK_SKEW_SECONDS": 60,
    "SUBJECT_DN_MATCH_ORDER": False,
    "CHECK_SELF_SIGNED_VALIDITY": True,
    "JWKS_CACHE_SECONDS": 300,
    "JWKS_REFETCH_INTERVAL_SECONDS": 30,
    "JWKS_FETCH_TIMEOUT_SECONDS": 5.0,
    "JWKS_MAX_BYTES": 65536,
    "JWKS_ALLOW_PRIVATE_ADDRESSES": False,
    "BIND_ALL_TOKENS": False,
    "BOUND_TOKEN_WITHOUT_CERTIFICATE": "error",
    "REFRESH_TOKEN_BINDING": "public",
    "REQUIRE_BOUND_TOKENS": False,
    "RESOURCE_SERVER_CERTIFICATE": None,
    "RESOURCE_SERVER_CA_BUNDLE": None,
    "RESOURCE_SERVER_CLIENT_ID": None,
    "MTLS_BASE_URL": None,
    # JWT access tokens (RFC 9068 with RFC 8705 §3.1)
    "ACCESS_TOKEN_FORMAT": "opaque",
    "JWT_SIGNING_KEYS": [],
    "JWT_PUBLISHED_KEYS": [],
    "JWT_AUDIENCE": None,
    "JWT_RESOURCES": [],
    "JWT_EXTRA_CLAIMS": None,
    "JWT_LEEWAY_SECONDS": 30,
    "RESOURCE_SERVER_TOKEN_VALIDATION": "database",
    "RESOURCE_SERVER_AUDIENCE": None,
    "RESOURCE_SERVER_JWT_ISSUER": None,
    "RESOURCE_SERVER_JWKS_URI": None,
    "RESOURCE_SERVER_JWT_USER": "local",
    "RESOURCE_SERVER_JWT_ALGORITHMS": ["ES256", "ES384", "PS256", "RS256", "EdDSA"],
    # A security profile (``fapi``, docs/fapi.md)
    "PROFILE": None,
}

#: ``ACCESS_TOKEN_FORMAT`` values.
ACCESS_TOKEN_FORMATS = ("opaque", "jwt")
#: ``RESOURCE_SERVER_TOKEN_VALIDATION`` values.
TOKEN_VALIDATION_MODES = (
    "database",
    "introspection",
    "jwt",
    "jwt_or_database",
    "jwt_or_introspection",
)
#: The modes in which a resource checks a JWS itself (RFC 9068), with or without a fallback.
JWT_MODES = frozenset({"jwt", "jwt_or_database", "jwt_or_introspection"})
#: ``alg`` values a resource may accept; ``none`` and every ``HS*`` never are.
JWT_ALGORITHMS = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384",
                  "RS512", "EdDSA")  # fmt: skip


@lru_cache(maxsize=32)
def parse_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """Parse ``TRUSTED_PROXIES``; invalid entries are dropped (the system check reports them)."""
    networks: list[IPNetwork] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            continue
    return tuple(networks)


class MTLSSettings:
    """One property per key of ``OAUTH2_MTLS``, each with its default inline."""

    def _get(self, name: str) -> Any:
        user = getattr(settings, SETTINGS_NAME, None) or {}
        return user.get(name, DEFAULTS[name])

    def user_keys(self) -> set[str]:
        """Keys the project set (for the unknown-key check)."""
        return set((getattr(settings, SETTINGS_NAME, None) or {}).keys())

    @property
    def CERTIFICATE_SOURCE(self) -> str | None:
        value = self._get("CERTIFICATE_SOURCE")
        return str(value) if value else None

    @property
    def CERTIFICATE_HEADER(self) -> str | None:
        return self._get("CERTIFICATE_HEADER")  # type: ignore[no-any-return]

    @property
    def CERTIFICATE_CHAIN_HEADER(self) -> str | None:
        return self._get("CERTIFICATE_CHAIN_HEADER")  # type: ignore[no-any-return]

    @property
    def VERIFY_HEADER(self) -> str | None:
        return self._get("VERIFY_HEADER")  # type: ignore[no-any-return]

    @property
    def VERIFY_SUCCESS_VALUES(self) -> Sequence[str] | None:
        return self._get("VERIFY_SUCCESS_VALUES")  # type: ignore[no-any-return]

    @property
    def TRUSTED_PROXIES(self) -> tuple[IPNetwork, ...]:
        raw = self._get("TRUSTED_PROXIES") or ()
        if isinstance(
            raw, str
        ):  # a lone string is a mistake the check reports; trust it as one entry
            raw = (raw,)
        return parse_networks(tuple(str(item) for item in raw))

    @property
    def TRUST_UNIX_SOCKET_PEERS(self) -> bool:
        return self._get("TRUST_UNIX_SOCKET_PEERS") is True

    @property
    def MAX_HEADER_BYTES(self) -> int:
        return int(self._get("MAX_HEADER_BYTES"))

    @property
    def TRUSTED_CA_CERTIFICATES(self) -> list[str]:
        return list(self._get("TRUSTED_CA_CERTIFICATES") or [])

    @property
    def INTERMEDIATE_CERTIFICATES(self) -> list[str]:
        return list(self._get("INTERMEDIATE_CERTIFICATES") or [])

    @property
    def TRUST_PROXY_VERIFICATION(self) -> bool:
        return self._get("TRUST_PROXY_VERIFICATION") is True

    @property
    def MIN_RSA_KEY_BITS(self) -> int:
        return int(self._get("MIN_RSA_KEY_BITS"))

    @property
    def CLOCK_SKEW_SECONDS(self) -> int:
        return int(self._get("CLOCK_SKEW_SECONDS"))

    @property
    def SUBJECT_DN_MATCH_ORDER(self) -> bool:
        return self._get("SUBJECT_DN_MATCH_ORDER") is True

    @property
    def CHECK_SELF_SIGNED_VALIDITY(self) -> bool:
        return self._get("CHECK_SELF_SIGNED_VALIDITY") is not False

    @property
    def JWKS_CACHE_SECONDS(self) -> int:
        return int(self._get("JWKS_CACHE_SECONDS"))

    @property
    def JWKS_REFETCH_INTERVAL_SECONDS(self) -> int:
        return int(self._get("JWKS_REFETCH_INTERVAL_SECONDS"))

    @property
    def JWKS_FETCH_TIMEOUT_SECONDS(self) -> float:
        return float(self._get("JWKS_FETCH_TIMEOUT_SECONDS"))

    @property
    def JWKS_MAX_BYTES(self) -> int:
        return int(self._get("JWKS_MAX_BYTES"))

    @property
    def JWKS_ALLOW_PRIVATE_ADDRESSES(self) -> bool:
        return self._get("JWKS_ALLOW_PRIVATE_ADDRESSES") is True

    @property
    def BIND_ALL_TOKENS(self) -> bool:
        return self._get("BIND_ALL_TOKENS") is True

    @property
    def BOUND_TOKEN_WITHOUT_CERTIFICATE(self) -> str:
        value = self._get("BOUND_TOKEN_WITHOUT_CERTIFICATE")
        return "unbound" if value == "unbound" else "error"  # fail closed

    @property
    def REFRESH_TOKEN_BINDING(self) -> str:
        value = self._get("REFRESH_TOKEN_BINDING")
        return value if value in ("public", "all", "none") else "public"

    @property
    def REQUIRE_BOUND_TOKENS(self) -> bool:
        # FAPI 2.0 §5.3.4: under a profile every resource accepts sender-constrained tokens only.
        return self._get("REQUIRE_BOUND_TOKENS") is True or self.PROFILE is not None

    @property
    def PROFILE(self) -> str | None:
        """``"fapi2"`` or ``None``; any other set value is read as ``"fapi2"`` (fail closed;
        check ``oauth_mtls.F001``)."""
        return "fapi2" if self._get("PROFILE") else None

    @property
    def RESOURCE_SERVER_CERTIFICATE(self) -> tuple[str, str] | None:
        value = self._get("RESOURCE_SERVER_CERTIFICATE")
        return (str(value[0]), str(value[1])) if value else None

    @property
    def RESOURCE_SERVER_CA_BUNDLE(self) -> str | None:
        return self._get("RESOURCE_SERVER_CA_BUNDLE")  # type: ignore[no-any-return]

    @property
    def RESOURCE_SERVER_CLIENT_ID(self) -> str | None:
        value = self._get("RESOURCE_SERVER_CLIENT_ID")
        return str(value) if value else None

    @property
    def MTLS_BASE_URL(self) -> str | None:
        return self._get("MTLS_BASE_URL")  # type: ignore[no-any-return]

    # --- JWT access tokens ----------------------------------------------------------------

    @property
    def ACCESS_TOKEN_FORMAT(self) -> str:
        return "jwt" if self._get("ACCESS_TOKEN_FORMAT") == "jwt" else "opaque"

    @property
    def JWT_SIGNING_KEYS(self) -> tuple[str, ...]:
        return tuple(str(path) for path in self._get("JWT_SIGNING_KEYS") or ())

    @property
    def JWT_PUBLISHED_KEYS(self) -> tuple[str, ...]:
        return tuple(str(path) for path in self._get("JWT_PUBLISHED_KEYS") or ())

    @property
    def JWT_AUDIENCE(self) -> tuple[str, ...]:
        """``JWT_AUDIENCE`` as a tuple (a string is one audience; ``None`` none)."""
        value = self._get("JWT_AUDIENCE")
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        return tuple(str(entry) for entry in value)

    @property
    def JWT_RESOURCES(self) -> tuple[str, ...]:
        return tuple(str(uri) for uri in self._get("JWT_RESOURCES") or ())

    @property
    def JWT_EXTRA_CLAIMS(self) -> str | None:
        value = self._get("JWT_EXTRA_CLAIMS")
        return str(value) if value else None

    @property
    def JWT_LEEWAY_SECONDS(self) -> int:
        return max(0, int(self._get("JWT_LEEWAY_SECONDS")))

    @property
    def RESOURCE_SERVER_TOKEN_VALIDATION(self) -> str:
        """How a resource checks a bearer token; when unset, ``"introspection"`` if DOT's
        ``RESOURCE_SERVER_INTROSPECTION_URL`` is set, else ``"database"``."""
        if "RESOURCE_SERVER_TOKEN_VALIDATION" not in self.user_keys():
            from oauth2_provider.settings import oauth2_settings

            introspection = oauth2_settings.RESOURCE_SERVER_INTROSPECTION_URL
            return "introspection" if introspection else "database"
        value = self._get("RESOURCE_SERVER_TOKEN_VALIDATION")
        # Fail closed: an unknown mode checks JWTs only (the system check reports it).
        return value if value in TOKEN_VALIDATION_MODES else "jwt"

    @property
    def RESOURCE_SERVER_AUDIENCE(self) -> str | None:
        value = self._get("RESOURCE_SERVER_AUDIENCE")
        return str(value) if value else None

    @property
    def RESOURCE_SERVER_JWT_ISSUER(self) -> str | None:
        """The exact ``iss`` accepted; when unset, DOT's ``OIDC_ISS_ENDPOINT``."""
        value = self._get("RESOURCE_SERVER_JWT_ISSUER")
        if value:
            return str(value)
        from oauth2_provider.settings import oauth2_settings

        issuer = oauth2_settings.OIDC_ISS_ENDPOINT
        return str(issuer) if issuer else None

    @property
    def RESOURCE_SERVER_JWKS_URI(self) -> str | None:
        value = self._get("RESOURCE_SERVER_JWKS_URI")
        return str(value) if value else None

    @property
    def RESOURCE_SERVER_JWT_USER(self) -> str | None:
        """``"local"``, ``None`` or a dotted path; when unset, ``"local"`` without
        ``RESOURCE_SERVER_JWKS_URI`` and ``None`` with it."""
        if "RESOURCE_SERVER_JWT_USER" not in self.user_keys():
            return None if self.RESOURCE_SERVER_JWKS_URI else "local"
        value = self._get("RESOURCE_SERVER_JWT_USER")
        return str(value) if value else None

    @property
    def RESOURCE_SERVER_JWT_ALGORITHMS(self) -> tuple[str, ...]:
        """Accepted ``alg`` values: the setting, minus anything outside ``JWT_ALGORITHMS``
        (``none`` and ``HS*`` can never be switched on)."""
        value = self._get("RESOURCE_SERVER_JWT_ALGORITHMS") or ()
        if not isinstance(value, list | tuple | set | frozenset):
            return ()  # fail closed: a lone string or a number allows nothing (check E025/E026)
        return tuple(alg for alg in value if alg in JWT_ALGORITHMS)


mtls_settings = MTLSSettings()
