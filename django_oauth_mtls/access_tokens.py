"""DOT's access-token row, written by one prepared ``INSERT`` (issue #16, speed).

Every token response writes an ``AccessToken``. ``Model.save`` compiled the ``INSERT`` anew each
time, under the database's write lock (DOT's ``save_bearer_token`` is one transaction): on
SQLite that made the lock the queue the token endpoint waited in. ``create_access_token`` is
DOT 3.4's ``OAuth2Validator._create_access_token``, line for line, with the row written by
``PreparedCreate`` (same signals, same field ``pre_save``, same values).

It is used only where DOT's own method would run: ``dot_creates_access_tokens`` is false when a
class between our mixin and DOT's validator overrides ``_create_access_token`` (that override
runs, as before), and for any DOT other than 3.4.x (whose method this repeats; a test compares
the rows both write).
"""

from __future__ import annotations

import functools
from typing import Any

import oauth2_provider
from oauth2_provider import oauth2_validators as dot_validators

from .prepared import PreparedCreate

__all__ = ["NEW_ACCESS_TOKEN", "create_access_token", "dot_creates_access_tokens"]

#: The access-token row of a token response.
NEW_ACCESS_TOKEN = PreparedCreate()
_DOT_METHOD = dot_validators.OAuth2Validator._create_access_token
#: The DOT releases whose ``_create_access_token`` ``create_access_token`` repeats.
_REPEATED_RELEASES = ("3.4.",)


@functools.lru_cache(maxsize=64)
def dot_creates_access_tokens(cls: Any, after: Any) -> bool:
    """Whether ``super()._create_access_token()`` called from ``after`` in ``cls`` is DOT's own,
    in a DOT release whose method ``create_access_token`` repeats."""
    if not oauth2_provider.__version__.startswith(_REPEATED_RELEASES):
        return False
    mro = cls.__mro__
    for klass in mro[mro.index(after) + 1 :]:
        method = vars(klass).get("_create_access_token")
        if method is not None:
            return method is _DOT_METHOD
    return False


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
