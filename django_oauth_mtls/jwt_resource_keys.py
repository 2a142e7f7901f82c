"""The keys a resource server verifies JWT access tokens with (RFC 9068 §4; RFC 8414 ``jwks_uri``).

Two sources, chosen by ``RESOURCE_SERVER_JWKS_URI``:

* unset: this server's own files, ``jwt_keys.published_keys()`` (``JWT_SIGNING_KEYS`` and
  ``JWT_PUBLISHED_KEYS``), each pinned to the one ``alg`` it signs with. A ``VerificationKey`` is
  built once per key and reused while ``jwt_keys`` keeps the same set.
* set: the authorization server's JWK set, fetched with ``jwks_fetch.download`` (https only, no
  redirect, one deadline, ``JWKS_MAX_BYTES``), trusting ``RESOURCE_SERVER_CA_BUNDLE`` (the system
  CAs when unset) and allowing private addresses: the URL is the operator's, not a client's.

The fetched set (its usable public JWKs, never the document) is shared through Django's
``default`` cache, so a multi-node deployment fetches once per interval. It is fresh for
``JWKS_CACHE_SECONDS``; after that the next request re-fetches, at most once per
``JWKS_REFETCH_INTERVAL_SECONDS`` for all processes together (``jwks_cache.claim_attempt``). A
token whose ``kid`` is not in the set asks for a re-fetch too (the AS may have rotated), under
the same limit. While the AS is unreachable, or answers with no usable key, the last good set
keeps serving for ``LAST_GOOD_SECONDS`` (24 h) after it was fetched, with a warning at each failed
re-fetch; after that every token is refused with ``jwt_keys_unavailable``.

Each process keeps its own copy of the set too and looks at the shared cache only when that copy
is due (fresh period over, or an unknown ``kid`` and the interval passed): the request path
touches neither the network nor the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import ssl
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from django.core.cache import caches

from .bearer import resource_config
from .conf import mtls_settings
from .jwks_cache import claim_attempt, fresh
from .jwt_checks import UnusableKey, VerificationKey, key_from_jwk, keys_from_jwk_set

__all__ = [
    "LAST_GOOD_SECONDS",
    "REMOTE_CACHE_PREFIX",
    "KeysUnavailable",
    "local_keys",
    "remote_keys",
    "reset",
    "trusted_keys",
]

log = logging.getLogger(__name__)

CACHE_ALIAS: Final = "default"
REMOTE_CACHE_PREFIX: Final = "django_oauth_mtls:rs_jwks:"
#: How long the last good set serves while the AS's JWK set cannot be fetched (API.md: 24 h).
LAST_GOOD_SECONDS: Final = 24 * 3600


class KeysUnavailable(Exception):
    """No set of keys can be had (never fetched, or the last good one is older than 24 h)."""


def _clock() -> float:
    """Wall-clock seconds, shared by every process (tests replace it to move time)."""
    return time.time()


# --- this server's own keys ------------------------------------------------------------------

_local: tuple[object, dict[str, VerificationKey]] = ((), {})


def local_keys() -> Mapping[str, VerificationKey]:
    """``jwt_keys.published_keys()`` by ``kid``, each pinned to its ``alg``."""
    global _local
    from . import jwt_keys

    published = jwt_keys.published_keys()
    source, keys = _local
    if source is published:
        return keys
    rebuilt: dict[str, VerificationKey] = {}
    for key in published:
        previous = keys.get(key.kid)  # kid is the RFC 7638 thumbprint: same kid, same key
        if previous is not None and previous.algorithms == {key.alg}:
            rebuilt[key.kid] = previous
            continue
        try:
            rebuilt[key.kid] = VerificationKey(key.kid, key.jwk.get_op_key("verify"), key.alg)
        except Exception as exc:  # UnusableKey, and the many types jwcrypto raises
            log.error("access-token key not usable for verification: kid=%s (%s)", key.kid, exc)
    _local = (published, rebuilt)
    return rebuilt


# --- the authorization server's keys, fetched ------------------------------------------------


@dataclass(frozen=True)
class _Copy:
    """This process's copy of the shared set."""

    keys: dict[str, VerificationKey]
    fetched: float  # when the AS answered (identifies the version)
    fresh_until: float
    good_until: float
    #: Before this time this process does not look at the shared cache again.
    check_after: float
    #: Before this time an unknown kid does not send this process to the shared cache again.
    kid_check_after: float


_copies: dict[str, _Copy] = {}
_lock = threading.Lock()


def reset() -> None:
    """Forget every process-local copy (tests; a settings change)."""
    global _local
    with _lock:
        _copies.clear()
        _local = ((), {})


def _cache_key(uri: str) -> str:
    return REMOTE_CACHE_PREFIX + hashlib.sha256(uri.encode("utf-8")).hexdigest()


def _interval() -> float:
    return max(float(mtls_settings.JWKS_REFETCH_INTERVAL_SECONDS), 0.0)


def _tls_context() -> ssl.SSLContext | None:
    bundle = mtls_settings.RESOURCE_SERVER_CA_BUNDLE
    if not bundle:
        return None  # jwks_fetch's system-CA context
    context = ssl.create_default_context(cafile=bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _fetch(uri: str) -> list[dict[str, Any]]:
    """The usable public JWKs at ``uri``; raises ``jwks_fetch.FetchError``."""
    from .jwks_fetch import FetchError, download

    try:
        context = _tls_context()
    except (OSError, ssl.SSLError) as exc:
        raise FetchError("RESOURCE_SERVER_CA_BUNDLE cannot be loaded", repr(exc)) from None
    body = download(uri, context=context, allow_private=True)
    try:
        document = json.loads(body)
        keys, skipped = keys_from_jwk_set(document)
    except (ValueError, UnicodeError, RecursionError) as exc:  # UnusableKey is a ValueError
        raise FetchError("not a JWK set", str(exc)) from None
    for problem in skipped:
        log.warning("AS JWK set: key skipped: uri=%s %s", uri, problem)
    if not keys:
        raise FetchError("no usable key in the JWK set")
    return [
        dict(member)
        for member in document["keys"]
        if isinstance(member, Mapping) and member.get("kid") in keys
    ]


def _adopt(uri: str, entry: Mapping[str, Any], now: float, previous: _Copy | None) -> _Copy:
    """A process copy of a shared entry (keys rebuilt only when the version changed)."""
    if previous is not None and previous.fetched == entry["fetched"]:
        keys = previous.keys
    else:
        keys = {}
        for member in entry["members"]:
            try:
                key = key_from_jwk(member)
            except UnusableKey:  # pragma: no cover - stored only when usable
                continue
            keys[key.kid] = key
    copy = _Copy(
        keys=keys,
        fetched=float(entry["fetched"]),
        fresh_until=float(entry["fresh_until"]),
        good_until=float(entry["good_until"]),
        check_after=min(float(entry["fresh_until"]), now + max(_interval(), 1.0)),
        kid_check_after=now + _interval(),
    )
    _copies[uri] = copy
    return copy


def _shared_entry(cache: Any, uri: str, now: float) -> dict[str, Any] | None:
    try:
        entry = fresh(cache.get(_cache_key(uri)), now, "good_until")
    except Exception as exc:  # a cache backend down is an outage of the cache, not a 500
        log.warning("AS JWK set: the cache cannot be read: %r", exc)
        return None
    if entry is None or not isinstance(entry.get("members"), list):
        return None
    return entry


def remote_keys(uri: str, *, unknown_kid: bool = False) -> Mapping[str, VerificationKey]:
    """The AS's keys at ``uri`` by ``kid`` (see the module docstring); ``unknown_kid`` asks for
    a re-fetch, rate-limited. Raises ``KeysUnavailable`` when no usable set can be had."""
    now = _clock()
    copy = _copies.get(uri)
    if copy is not None and not _due(copy, unknown_kid, now):
        return copy.keys
    with _lock:
        return _remote_keys_locked(uri, unknown_kid, now)


def _due(copy: _Copy | None, unknown_kid: bool, now: float) -> bool:
    return copy is None or now >= copy.check_after or (unknown_kid and now >= copy.kid_check_after)


def _remote_keys_locked(uri: str, unknown_kid: bool, now: float) -> Mapping[str, VerificationKey]:
    copy = _copies.get(uri)
    if copy is not None and not _due(copy, unknown_kid, now):
        return copy.keys  # another thread did the work while this one waited for the lock
    cache = caches[CACHE_ALIAS]
    entry = _shared_entry(cache, uri, now)
    if entry is not None and (copy is None or float(entry["fetched"]) > copy.fetched):
        copy = _adopt(uri, entry, now, copy)  # another process fetched a newer set
        if unknown_kid:
            return copy.keys  # the caller retries with it; a re-fetch waits for the next miss
    if copy is not None and now < copy.fresh_until and not unknown_kid:
        # Fresh: look at the shared cache again in one interval (a set another process
        # fetched for an unknown kid reaches this one then).
        check_after = min(copy.fresh_until, now + max(_interval(), 1.0))
        copy = _Copy(
            copy.keys, copy.fetched, copy.fresh_until, copy.good_until, check_after,
            copy.kid_check_after,
        )  # fmt: skip
        _copies[uri] = copy
        return copy.keys
    interval = _interval()
    try:
        recent = claim_attempt(cache, f"{_cache_key(uri)}:attempt", now, interval)
    except Exception as exc:
        log.warning("AS JWK set: the cache cannot be written: %r", exc)
        recent = None
    if recent is not None:
        # Another request or process fetched (or tried) within the interval.
        if copy is not None and now < copy.good_until:
            _copies[uri] = _delay(copy, now)
            return copy.keys
        if recent.get("error"):
            raise KeysUnavailable(f"the AS JWK set is unavailable: {recent['error']}")
    return _fetch_and_share(uri, cache, copy, now, interval)


def _delay(copy: _Copy, now: float) -> _Copy:
    """The same copy, not checked again in this process for one interval."""
    wait = now + max(_interval(), 1.0)
    return _Copy(copy.keys, copy.fetched, copy.fresh_until, copy.good_until, wait, wait)


def _fetch_and_share(
    uri: str, cache: Any, copy: _Copy | None, now: float, interval: float
) -> Mapping[str, VerificationKey]:
    from .jwks_fetch import FetchError

    try:
        members = _fetch(uri)
    except FetchError as exc:
        serving = copy is not None and now < copy.good_until
        log.warning(
            "AS JWK set fetch failed: uri=%s reason=%s%s%s",
            uri,
            exc.reason,
            f" detail={exc.detail}" if exc.detail else "",
            f" (the last good set, fetched {now - copy.fetched:.0f} s ago, keeps serving)"
            if serving and copy is not None
            else "",
        )
        if interval > 0:
            marker = {"until": now + interval, "error": exc.reason}
            # A cache that cannot be written is an outage the warning above already reports.
            with contextlib.suppress(Exception):
                cache.set(f"{_cache_key(uri)}:attempt", marker, max(math.ceil(interval), 1))
        if copy is not None and serving:
            _copies[uri] = _delay(copy, now)
            return copy.keys
        raise KeysUnavailable(f"the AS JWK set is unavailable: {exc.reason}") from None
    lifetime = max(float(mtls_settings.JWKS_CACHE_SECONDS), 0.0)
    entry = {
        "members": members,
        "fetched": now,
        "fresh_until": now + lifetime,
        "good_until": now + LAST_GOOD_SECONDS,
    }
    try:
        cache.set(_cache_key(uri), entry, LAST_GOOD_SECONDS)
    except Exception as exc:
        log.warning("AS JWK set: the cache cannot be written: %r", exc)
    log.info("AS JWK set fetched: uri=%s keys=%d", uri, len(members))
    return _adopt(uri, entry, now, None).keys


def trusted_keys(*, unknown_kid: bool = False) -> Mapping[str, VerificationKey]:
    """The keys this resource trusts by ``kid``: the AS's (``RESOURCE_SERVER_JWKS_URI``) or this
    server's own files. Raises ``KeysUnavailable``."""
    uri = resource_config().jwks_uri
    if uri:
        return remote_keys(uri, unknown_kid=unknown_kid)
    return local_keys()
