"""Bounds on what a client may register (RFC 8705 §2.1.2, §2.2.2; RFC 7591 §2, §3.2.2).

Pure module: no Django import. RFC 8705 and RFC 7591 put no size on a registered subject value, a
``jwks_uri`` or a ``jwks``, yet every one is stored, parsed and kept in memory; unbounded, one
registration of a 2.4 MB ``tls_client_auth_subject_dn`` cost a second of CPU on each token
request and megabytes in a per-process cache. The numbers here are this server's bounds, used by
every path that writes or reads one (registration, the admin, ``mtls_set_client``, the model's
validation, the system check, client authentication): a subject DN of 4,096 characters is ten
times any real one, and 2,048 characters is the usual ceiling for URLs. ``jwks`` is bounded by
the ``JWKS_MAX_BYTES`` setting, the bound of a fetched set too.

Also here: ``json_too_deep``, a non-recursive scan that refuses a JSON text nested deeper than
``MAX_JSON_DEPTH`` before any recursive parser sees it, and ``BoundedLRU``, a cache of parsed
registered values bounded by an estimate of their size as well as by their number.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from collections.abc import Hashable, Mapping
from typing import Any, Final, Generic, TypeVar

__all__ = [
    "MAX_CHARACTERS",
    "MAX_JSON_DEPTH",
    "MAX_SAN_CHARACTERS",
    "MAX_SUBJECT_DN_CHARACTERS",
    "BoundedLRU",
    "json_size",
    "json_too_deep",
    "jwks_too_large",
    "too_long",
]

MAX_SUBJECT_DN_CHARACTERS: Final = 4096
#: Each SAN value, and ``jwks_uri``.
MAX_SAN_CHARACTERS: Final = 2048

#: Registered string members → the most characters this server stores (RFC 8705 names).
MAX_CHARACTERS: Final[Mapping[str, int]] = {
    "tls_client_auth_subject_dn": MAX_SUBJECT_DN_CHARACTERS,
    "tls_client_auth_san_dns": MAX_SAN_CHARACTERS,
    "tls_client_auth_san_uri": MAX_SAN_CHARACTERS,
    "tls_client_auth_san_ip": MAX_SAN_CHARACTERS,
    "tls_client_auth_san_email": MAX_SAN_CHARACTERS,
    "jwks_uri": MAX_SAN_CHARACTERS,
}

#: The deepest nesting of a registration request (a ``jwks`` inside it needs four levels).
MAX_JSON_DEPTH: Final = 32


def too_long(field: str, value: object) -> str | None:
    """The error description when ``value`` is longer than ``field``'s bound, else ``None``.

    Fixed text naming the field and the bound, never the value (it may be megabytes).
    """
    bound = MAX_CHARACTERS.get(field)
    if bound is None or not isinstance(value, str) or len(value) <= bound:
        return None
    return f"{field} is longer than {bound} characters"


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON: how a ``jwks`` is measured everywhere."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def jwks_too_large(jwks: Any, max_bytes: int) -> str | None:
    """The error description when ``jwks`` is larger than ``max_bytes`` (``JWKS_MAX_BYTES``)."""
    if jwks is None:
        return None
    try:
        size = json_size(jwks)
    except RecursionError:  # nested far deeper than any JWK set (stored past every check)
        return f"jwks nests JSON deeper than {MAX_JSON_DEPTH} levels"
    if size <= max_bytes:
        return None
    return f"jwks is larger than {max_bytes} bytes; publish it at a jwks_uri"


# --- nesting -------------------------------------------------------------------------------

# A string (its end quote optional: an unterminated one runs to the end) or a bracket. Strings are
# matched whole, so brackets inside them never count; the unrolled loop is linear.
_JSON_TOKEN: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[\[\]{}]', re.DOTALL)
_OPENERS: Final = frozenset("[{")


def json_too_deep(body: bytes | str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``limit``.

    A scan, not a parse: no recursion, so no ``RecursionError`` whatever the depth, and it stops
    at the first bracket past the limit. Bytes are decoded as ``json.loads`` would (UTF-8, -16 or
    -32, detected); a text ``json.loads`` cannot decode is not judged here (it fails there).
    """
    if isinstance(body, bytes):
        try:
            text = body.decode(json.detect_encoding(body), "surrogatepass")
        except (UnicodeError, LookupError):
            return False
    else:
        text = body
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        char = text[match.start()]  # not match.group(): a string token may be megabytes
        if char in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif char != '"':
            depth = max(depth - 1, 0)
    return False


# --- caches of parsed registered values ------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedLRU(Generic[K, V]):
    """A thread-safe LRU cache bounded by ``max_entries`` and by the sum of the entries'
    ``weight`` (an estimate of their size in bytes). An entry heavier than ``max_weight`` is
    never cached."""

    def __init__(self, *, max_entries: int, max_weight: int) -> None:
        self.max_entries = max_entries
        self.max_weight = max_weight
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: K, value: V, weight: int) -> None:
        if weight > self.max_weight:
            return
        with self._lock:
            previous = self._entries.pop(key, None)
            if previous is not None:
                self._weight -= previous[1]
            self._entries[key] = (value, weight)
            self._weight += weight
            while len(self._entries) > self.max_entries or self._weight > self.max_weight:
                _key, (_value, dropped) = self._entries.popitem(last=False)
                self._weight -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._weight = 0

    @property
    def weight(self) -> int:
        return self._weight

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries
