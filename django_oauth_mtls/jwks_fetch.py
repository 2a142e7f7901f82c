"""Fetching a self-signed client's ``jwks_uri`` set, safely (RFC 8705 §2.2.2; RFC 7591 §2).

A ``jwks_uri`` is a URL the client chose and the authorization server fetches: a server-side
request forgery risk. So the fetcher speaks https only (certificate and host name verified,
SNI sent), never follows a redirect, resolves the host once and connects to the address it
checked (no second lookup an attacker's DNS could answer differently), connects only to
addresses the explicit policy of :mod:`django_oauth_mtls.jwks_addresses` allows (checked for
every resolved address, and again as each socket connects) unless
``JWKS_ALLOW_PRIVATE_ADDRESSES``, stops at ``JWKS_FETCH_TIMEOUT_SECONDS`` (one deadline for the
whole exchange) and at ``JWKS_MAX_BYTES``, and ignores proxy environment variables.

Sets are cached in Django's ``default`` cache (shared by every app server) for
``JWKS_CACHE_SECONDS``, as the DER of each ``x5c[0]``, never the document. The cache is bounded
by bytes: a set takes one of ``CACHE_BYTE_BUDGET // JWKS_MAX_BYTES`` slots, so however many
clients there are, the sets cached add up to at most ``CACHE_BYTE_BUDGET`` (16 MiB); a set that
loses its slot is fetched again when next needed. A certificate that is not in the cached set
asks for a re-fetch (``refresh=True``, the client may have rotated its keys), at most once per
``JWKS_REFETCH_INTERVAL_SECONDS`` per URI; a failed fetch is not retried within that interval
either. A failed fetch keeps the last good set until that set's own expiry, and never extends
it: a client that removed a compromised certificate must not be held to it longer because its
host is unreachable.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import json
import logging
import math
import socket
import ssl
import threading
import time
from typing import Any, Final
from urllib.parse import urlsplit

from django.core.cache import caches

from .conf import mtls_settings
from .exceptions import ClientAuthError
from .jwks import JWKSetError, parse_jwk_set
from .jwks_addresses import address_problem
from .jwks_addresses import uri_problem as _uri_problem
from .jwks_cache import CACHE_PREFIX, attempt_key, claim_attempt, lookup, store

__all__ = [
    "CACHE_PREFIX",
    "FetchError",
    "address_problem",
    "download",
    "fetched_certificates",
    "uri_problem",
]

log = logging.getLogger(__name__)

CACHE_ALIAS: Final = "default"
USER_AGENT: Final = "django-oauth-mtls (jwks_uri fetcher)"
ACCEPT: Final = "application/jwk-set+json, application/json;q=0.9"
_CHUNK: Final = 8192


class FetchError(Exception):
    """Why a ``jwks_uri`` set could not be had. ``reason`` (no secret, no address) becomes the
    ``ClientAuthError`` description and the log's ``reason=``; ``detail`` (a resolved address,
    an exception) goes to the log only. The client is told neither: its ``error_description``
    is the fixed phrase of ``descriptions.client_auth_description("jwk_set_unavailable")``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason} ({detail})" if detail else reason)


def _clock() -> float:
    """Wall-clock seconds for cache freshness (tests replace it to move time)."""
    return time.time()


def _ssl_context() -> ssl.SSLContext:
    """The TLS client context for ``jwks_uri`` servers: system CAs, host name checked.

    Tests replace this function to trust their own CA; the settings contract has no key for it.
    """
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


# --- addresses ----------------------------------------------------------------------------------


def _allow_private(allow_private: bool | None) -> bool:
    """The address policy of one fetch: ``None`` means the ``JWKS_ALLOW_PRIVATE_ADDRESSES``
    setting (a client's ``jwks_uri``); an operator-configured URL passes ``True``."""
    if allow_private is None:
        return mtls_settings.JWKS_ALLOW_PRIVATE_ADDRESSES
    return allow_private


def uri_problem(uri: str, *, allow_private: bool | None = None) -> str | None:
    """``jwks_addresses.uri_problem`` under this fetch's address policy (``None``: the
    ``JWKS_ALLOW_PRIVATE_ADDRESSES`` setting)."""
    return _uri_problem(uri, allow_private=_allow_private(allow_private))


def _refused(sockaddr: Any, allow_private: bool | None = None) -> tuple[str, str] | None:
    """(problem, address text) when policy refuses the socket address ``sockaddr``."""
    text = str(sockaddr[0]).split("%", 1)[0]  # drop an IPv6 zone id
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return "unusable", text
    if _allow_private(allow_private):
        return None
    problem = address_problem(address)
    return (problem, text) if problem else None


def _resolve(host: str, port: int, allow_private: bool | None = None) -> list[tuple[int, Any]]:
    """Every (family, sockaddr) ``host`` resolves to, each one checked: one refused address
    refuses them all, so a DNS answer mixing public and private addresses gets nowhere."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError) as exc:
        raise FetchError("the host name could not be resolved", repr(exc)) from None
    resolved: list[tuple[int, Any]] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        refused = _refused(sockaddr, allow_private)
        if refused is not None:
            problem, text = refused
            if problem == "unusable":
                raise FetchError("the host resolved to an unusable address", text)
            raise FetchError(f"{problem} address refused", f"{host} → {text}")
        if (family, sockaddr) not in resolved:
            resolved.append((family, sockaddr))
    if not resolved:
        raise FetchError("the host name could not be resolved", "no IPv4/IPv6 address")
    return resolved


# --- the exchange ------------------------------------------------------------------------------


class _ResolvedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to one already-checked address; SNI and certificate check use the host name."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        family: int,
        sockaddr: Any,
        timeout: float,
        context: ssl.SSLContext,
        allow_private: bool | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._family = family
        self._sockaddr = sockaddr
        self._tls_context = context
        self._allow_private = allow_private

    def connect(self) -> None:
        # Checked again here, at the one place a socket is connected: no path gets around it.
        refused = _refused(self._sockaddr, self._allow_private)
        if refused is not None:
            raise FetchError(f"{refused[0]} address refused", f"{self.host} → {refused[1]}")
        raw = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            raw.settimeout(self.timeout)
            raw.connect(self._sockaddr)
            self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _abort(sock: socket.socket | None) -> None:
    # The deadline passed mid-exchange: shut the TCP stream down under the TLS layer, which
    # wakes the blocked read (a server dripping bytes would outlast any per-read timeout).
    if sock is not None:
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def download(
    uri: str, *, context: ssl.SSLContext | None = None, allow_private: bool | None = None
) -> bytes:
    """The body of ``GET uri`` under this module's rules (https, no redirect, checked
    addresses, one deadline, ``JWKS_MAX_BYTES``); raises ``FetchError``.

    ``context`` replaces the system-CA TLS context (a resource server's
    ``RESOURCE_SERVER_CA_BUNDLE``); ``allow_private`` replaces ``JWKS_ALLOW_PRIVATE_ADDRESSES``
    (an operator-configured URL, never a client's, may point to an intranet).
    """
    return _download(uri, context=context, allow_private=allow_private)


def _download(
    uri: str, *, context: ssl.SSLContext | None = None, allow_private: bool | None = None
) -> bytes:
    problem = uri_problem(uri, allow_private=allow_private)
    if problem:
        raise FetchError(problem)
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = parts.port or 443
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    timeout = max(mtls_settings.JWKS_FETCH_TIMEOUT_SECONDS, 0.001)
    max_bytes = mtls_settings.JWKS_MAX_BYTES
    deadline = time.monotonic() + timeout
    timed_out = FetchError(f"timed out after {timeout:g} s")

    connection: _ResolvedHTTPSConnection | None = None
    failure = FetchError("connection failed")
    for family, sockaddr in _resolve(host, port, allow_private):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise timed_out
        candidate = _ResolvedHTTPSConnection(
            host,
            port,
            family=family,
            sockaddr=sockaddr,
            timeout=remaining,
            context=context or _ssl_context(),
            allow_private=allow_private,
        )
        try:
            candidate.connect()
        except ssl.SSLCertVerificationError as exc:
            raise FetchError("the server's TLS certificate was not accepted", str(exc)) from None
        except ssl.SSLError as exc:
            raise FetchError("the TLS handshake failed", str(exc)) from None
        except TimeoutError:
            failure = timed_out
            continue
        except OSError as exc:
            failure = FetchError("connection failed", f"{sockaddr[0]}: {exc}")
            continue
        connection = candidate
        break
    if connection is None:
        raise failure

    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), _abort, (connection.sock,))
    watchdog.daemon = True
    watchdog.start()
    try:
        connection.request(
            "GET",
            target,
            headers={
                "Accept": ACCEPT,
                "Accept-Encoding": "identity",
                "User-Agent": USER_AGENT,
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        status = response.status
        if 300 <= status < 400:
            # Never followed: the new location would escape the address check.
            raise FetchError(
                f"redirect refused (HTTP {status})", response.getheader("Location", "")
            )
        if status != 200:
            raise FetchError(f"HTTP {status}")
        declared = response.getheader("Content-Length")
        if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
            raise FetchError(f"too large (more than {max_bytes} bytes)", f"declared {declared}")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = response.read(min(_CHUNK, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise FetchError(f"too large (more than {max_bytes} bytes)")
        if time.monotonic() >= deadline:
            raise timed_out
        return b"".join(chunks)
    except FetchError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        if time.monotonic() >= deadline or isinstance(exc, TimeoutError):
            raise timed_out from None
        raise FetchError("the server's response could not be read", repr(exc)) from None
    finally:
        watchdog.cancel()
        connection.close()


def _fetch(uri: str) -> frozenset[bytes]:
    body = _download(uri)
    try:
        document = json.loads(body)
    except (ValueError, UnicodeError, RecursionError):
        raise FetchError("not JSON") from None
    try:
        return frozenset(parse_jwk_set(document))
    except JWKSetError as exc:
        # e.g. "keys[0].x5c[0] does not match the JWK's key": the whole set is refused.
        raise FetchError(f"unusable JWK set: {exc}") from None


# --- the fetch, through the cache ---------------------------------------------------------


def fetched_certificates(uri: str, *, refresh: bool = False) -> frozenset[bytes]:
    """The ``x5c[0]`` certificates (DER) of the set at ``uri``, cached; see the module docstring.

    Raises ``ClientAuthError("jwk_set_unavailable", …)`` when there is no usable set.
    """
    cache = caches[CACHE_ALIAS]
    marker_key = attempt_key(uri)
    now = _clock()
    _key, entry = lookup(cache, uri, now)
    if entry is not None and not refresh:
        return frozenset(entry["certificates"])
    interval = float(mtls_settings.JWKS_REFETCH_INTERVAL_SECONDS)
    recent = claim_attempt(cache, marker_key, now, interval)
    if recent is not None:
        if entry is not None:
            return frozenset(entry["certificates"])  # re-fetch already done in this interval
        if recent.get("error"):
            raise ClientAuthError(
                "jwk_set_unavailable",
                f"the jwks_uri set is unavailable: {recent['error']} (not retried within "
                f"{interval:g} s)",
            )
        # The last fetch succeeded but its set is gone (evicted, or expired): fetch again.
    try:
        certificates = _fetch(uri)
    except FetchError as exc:
        log.warning(
            "jwks_uri fetch failed: uri=%s reason=%s%s%s",
            uri,
            exc.reason,
            f" detail={exc.detail}" if exc.detail else "",
            " (keeping the last good set until it expires)" if entry is not None else "",
        )
        if interval > 0:
            marker = {"until": now + interval, "error": exc.reason}
            cache.set(marker_key, marker, max(math.ceil(interval), 1))
        if entry is not None:
            return frozenset(entry["certificates"])
        raise ClientAuthError(
            "jwk_set_unavailable", f"the jwks_uri set is unavailable: {exc.reason}"
        ) from None
    lifetime = float(mtls_settings.JWKS_CACHE_SECONDS)
    if lifetime > 0:
        store(cache, uri, certificates, now, lifetime)
    log.info("jwks_uri fetched: uri=%s certificates=%d", uri, len(certificates))
    return certificates
