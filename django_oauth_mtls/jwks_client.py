"""The certificates a self-signed client registered (RFC 8705 §2.2.2; RFC 7591 §2).

The one place that chooses between a client's two ways of registering its set: the inline
``jwks`` (parsed by the pure :mod:`django_oauth_mtls.jwks`, kept in a bounded in-process cache
keyed by its content) or the ``jwks_uri`` (fetched through the safe, cached fetcher of
:mod:`django_oauth_mtls.jwks_fetch`). Keeping the choice here keeps the layers one-way: the
parser knows nothing of the network, and the models import neither.
"""

from __future__ import annotations

import json
from typing import Any, Final

from .exceptions import ClientAuthError
from .jwks import JWKSetError, parse_jwk_set
from .jwks_fetch import fetched_certificates
from .limits import BoundedLRU

__all__ = ["INLINE_SETS", "client_certificates"]

#: Parsed inline sets, keyed by content (an edited jwks is parsed afresh). Bounded by the bytes
#: held (the key's text and the DER certificates), not only by the number of sets; a set heavier
#: than the whole budget is parsed on each use and never cached.
INLINE_SETS: Final[BoundedLRU[str, frozenset[bytes]]] = BoundedLRU(
    max_entries=256, max_weight=1024 * 1024
)


def client_certificates(mtls: Any, *, refresh: bool = False) -> frozenset[bytes]:
    """The certificates a self-signed client registered (``jwks``; ``jwks_uri`` is fetched).

    ``refresh=True`` asks for a re-fetch of a ``jwks_uri`` set (the presented certificate was
    not found; the client may have rotated it); the fetcher rate-limits it. Raises
    ``ClientAuthError("jwk_set_unavailable")`` when no usable set can be had.
    """
    if mtls.jwks:
        try:
            return _inline_set(json.dumps(mtls.jwks, sort_keys=True))
        except JWKSetError as exc:
            raise ClientAuthError(
                "jwk_set_unavailable", f"the registered jwks is unusable: {exc}"
            ) from exc
    if mtls.jwks_uri:
        return fetched_certificates(mtls.jwks_uri, refresh=refresh)
    raise ClientAuthError("jwk_set_unavailable", "the client has registered no JWK set")


def _inline_set(canonical_json: str) -> frozenset[bytes]:
    certificates = INLINE_SETS.get(canonical_json)
    if certificates is None:
        certificates = frozenset(parse_jwk_set(canonical_json))
        weight = len(canonical_json) + sum(len(der) for der in certificates)
        INLINE_SETS.put(canonical_json, certificates, weight=weight)
    return certificates
