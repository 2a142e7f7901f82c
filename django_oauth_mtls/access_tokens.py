"""DOT's access-token row, written by one prepared ``INSERT`` (issue #16, speed).

Every token response writes an ``AccessToken``. ``Model.save`` compiled the ``INSERT`` anew each
time, under the database's write lock (DOT's ``save_bearer_token`` is one transaction): on
SQLite that made the lock the queue the token endpoint waited in. ``create_access_token`` is
DOT 3.4's ``OAuth2Validator._create_access_token``, line for line, with the row written by
``PreparedCreate`` (same signals, same field ``pre_save``, same values).

It is used only where DOT's own method would run, and only while that method is the one it
repeats: ``dot_creates_access_tokens`` looks, on every call, at the method ``super()`` would
reach; it must be DOT's own function (its module and name, not a wrapper) with the source text
of DOT 3.4.1's. Anything else (a class between our mixin and DOT's validator that overrides
``_create_access_token``, a wrapper or patch of DOT's method, a DOT release that changed it)
runs as before.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import textwrap
from typing import Any

from oauth2_provider import oauth2_validators as dot_validators

from .prepared import PreparedCreate

__all__ = ["NEW_ACCESS_TOKEN", "create_access_token", "dot_creates_access_tokens"]

#: The access-token row of a token response.
NEW_ACCESS_TOKEN = PreparedCreate()
#: SHA-256 of DOT 3.4.1's ``OAuth2Validator._create_access_token`` source (dedented), the method
#: ``create_access_token`` repeats.
_REPEATED_SOURCE_SHA256 = "d78bdb8bcd81d41b717c5b2edb96dfa937c36f7b3bfffdfe61882a069b6affd2"


def dot_creates_access_tokens(cls: Any, after: Any) -> bool:
    """Whether ``super()._create_access_token()`` called from ``after`` in ``cls`` runs DOT's
    own method, the one ``create_access_token`` repeats. Looked up on every call: a method
    patched or wrapped at any time is seen."""
    mro = cls.__mro__
    for klass in mro[mro.index(after) + 1 :]:
        method = vars(klass).get("_create_access_token")
        if method is not None:
            return _repeated_here(method)
    return False


@functools.lru_cache(maxsize=16)
def _repeated_here(method: Any) -> bool:
    """DOT's own function (no wrapper) whose source is the text this module repeats."""
    if getattr(method, "__wrapped__", None) is not None or not hasattr(method, "__code__"):
        return False
    if (method.__module__, method.__qualname__) != (
        dot_validators.__name__,
        "OAuth2Validator._create_access_token",
    ):
        return False
    try:
        source = textwrap.dedent(inspect.getsource(method))
    except (OSError, TypeError):  # no source installed: cannot tell, so DOT's runs
        return False
    return hashlib.sha256(source.encode()).hexdigest() == _REPEATED_SOURCE_SHA256


def create_access_token(
    validator: Any, expires: Any, request: Any, token: Any, source_refresh_token: Any = None
) -> Any:
    """DOT 3.4's ``_create_access_token``; the row is written by ``NEW_ACCESS_TOKEN``."""
    id_token = token.get("id_token", None)
    if id_token:
        id_token = validator._load_id_token(id_token)
    access_token = dot_validators.AccessToken(
        user=request.user,
        scope=token["scope"],
        expires=expires,
        id_token=id_token,
        application=request.client,
        source_refresh_token=source_refresh_token,
        resource=getattr(request, "resource", []),  # RFC 8707
    )
    validator._set_token_value(access_token, token["access_token"])
    NEW_ACCESS_TOKEN.save_new(access_token)
    return access_token
