"""The shared, byte-bounded cache of fetched ``jwks_uri`` sets (RFC 8705 §2.2.2).

Django's ``default`` cache, shared by every app server. A set is kept as the sorted DER of its
``x5c[0]`` certificates, never the document, with the SHA-256 of its URI (keys never carry the
URL). The cache is bounded by bytes, not only by entries, whatever the backend: a set occupies
one of ``CACHE_BYTE_BUDGET // JWKS_MAX_BYTES`` slots (``CACHE_WAYS`` candidate slots per URI,
chosen by its digest), and a set larger than ``JWKS_MAX_BYTES`` is never kept, so all the sets
together hold at most ``CACHE_BYTE_BUDGET`` bytes of certificates (16 MiB; one set if
``JWKS_MAX_BYTES`` is larger). A set that loses its slot to another URI is fetched again when
next needed. Besides the slots, each URI has a small attempt marker (``…:attempt``, under 100
bytes) that lives ``JWKS_REFETCH_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Any, Final

from .conf import mtls_settings

__all__ = [
    "CACHE_BYTE_BUDGET",
    "CACHE_PREFIX",
    "CACHE_WAYS",
    "attempt_key",
    "claim_attempt",
    "fresh",
    "lookup",
    "store",
]

log = logging.getLogger("django_oauth_mtls.jwks_fetch")

CACHE_PREFIX: Final = "django_oauth_mtls:jwks:"
#: The most certificate bytes (DER) the cache holds for all ``jwks_uri`` sets together.
CACHE_BYTE_BUDGET: Final = 16 * 1024 * 1024
#: How many slots a URI may take its place in (fewer collisions than one, cheap to read).
CACHE_WAYS: Final = 4


def _digest(uri: str) -> str:
    return hashlib.sha256(uri.encode("utf-8")).hexdigest()


def attempt_key(uri: str) -> str:
    return f"{CACHE_PREFIX}{_digest(uri)}:attempt"


def _slot_keys(digest: str, max_bytes: int) -> list[str]:
    """The cache keys a URI's set may occupy (``CACHE_WAYS`` of them, chosen by its digest).

    There are ``CACHE_BYTE_BUDGET // JWKS_MAX_BYTES`` slots in all (at least one), whatever the
    number of URIs, and a slot holds one set of at most ``JWKS_MAX_BYTES``: so the sets in the
    cache never add up to more than the budget (or one set, if ``JWKS_MAX_BYTES`` is larger).
    """
    slots = max(CACHE_BYTE_BUDGET // max(max_bytes, 1), 1)
    ways = min(CACHE_WAYS, slots)
    group = int(digest[:16], 16) % (slots // ways)
    return [f"{CACHE_PREFIX}slot:{group * ways + way}" for way in range(ways)]


def fresh(value: Any, now: float, field: str) -> dict[str, Any] | None:
    if isinstance(value, dict) and isinstance(value.get(field), int | float) and value[field] > now:
        return value
    return None


def claim_attempt(cache: Any, key: str, now: float, interval: float) -> dict[str, Any] | None:
    """Claim this interval's one fetch for a URI; return the recent attempt when one exists."""
    if interval <= 0:
        return None
    marker = {"until": now + interval, "error": None}
    timeout = max(math.ceil(interval), 1)
    if cache.add(key, marker, timeout):
        return None
    recent = fresh(cache.get(key), now, "until")
    if recent is not None:
        return recent
    cache.set(key, marker, timeout)  # the stored marker is older than the interval
    return None


def lookup(cache: Any, uri: str, now: float) -> tuple[str | None, dict[str, Any] | None]:
    """(cache key, entry) of ``uri``'s unexpired set, or ``(None, None)``."""
    digest = _digest(uri)
    keys = _slot_keys(digest, mtls_settings.JWKS_MAX_BYTES)
    found = cache.get_many(keys)
    for key in keys:
        entry = fresh(found.get(key), now, "expires")
        if entry is not None and entry.get("uri") == digest:  # a slot is shared: whose set?
            return key, entry
    return None, None


def store(
    cache: Any, uri: str, certificates: frozenset[bytes], now: float, lifetime: float
) -> None:
    """Keep ``uri``'s set in one of its slots: its own, else a free or expired one, else the
    one that expires first (that set is fetched again when next needed)."""
    max_bytes = mtls_settings.JWKS_MAX_BYTES
    size = sum(len(der) for der in certificates)
    if size > max_bytes:  # not from a document of at most JWKS_MAX_BYTES; keeps the bound local
        log.warning("jwks_uri set not cached: uri=%s bytes=%d over JWKS_MAX_BYTES", uri, size)
        return
    digest = _digest(uri)
    keys = _slot_keys(digest, max_bytes)
    found = cache.get_many(keys)

    def rank(key: str) -> tuple[int, float]:
        value = found.get(key)
        if isinstance(value, dict) and value.get("uri") == digest:
            return (0, 0.0)
        if not isinstance(value, dict):
            return (1, 0.0)
        expires = value.get("expires")
        if not isinstance(expires, int | float) or expires <= now:
            return (2, 0.0)
        return (3, float(expires))

    entry = {"uri": digest, "certificates": sorted(certificates), "expires": now + lifetime}
    cache.set(min(keys, key=rank), entry, max(math.ceil(lifetime), 1))
