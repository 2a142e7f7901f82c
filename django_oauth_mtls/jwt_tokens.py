"""``JWTAccessToken``: a verified JWT access token where DOT code expects an ``AccessToken``
(RFC 9068 §2.2 claims; RFC 8705 §3.1 ``cnf``).

A resource in a jwt mode sets ``request.access_token`` (and DRF's ``request.auth``) to one of
these. It answers what DOT's permissions and views read from an ``AccessToken`` — ``token``,
``scope``, ``scopes``, ``expires``, ``is_valid(scopes)``, ``allow_scopes(scopes)``,
``is_expired()``, ``application``, ``user`` — from the claims alone, plus ``claims``, ``header``
and ``x5t_s256`` (the bound thumbprint or ``None``). Nothing here queries the database until
``application`` (by the ``client_id`` claim) or ``user`` (by ``RESOURCE_SERVER_JWT_USER``) is
read; a view that reads only the claims, the scope and the binding makes no query.

A JWT is not a database row: it cannot be revoked or saved here. Expiry is judged with the same
leeway as the check that accepted it (``JWT_LEEWAY_SECONDS``), so a token accepted a moment
before ``exp`` is not refused by a scope permission a moment later.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Mapping
from functools import cached_property
from typing import Any

from django.conf import settings
from django.utils import timezone

from .jwt_checks import VerifiedAccessToken

__all__ = ["JWTAccessToken"]


class JWTAccessToken:
    """A JWT access token that passed ``jwt_checks.check_access_token`` (RFC 9068 §4)."""

    def __init__(
        self, token: str, verified: VerifiedAccessToken, *, leeway: float = 0.0, user: Any = None
    ) -> None:
        #: The compact JWS, as presented.
        self.token = token
        #: The verified claims set (RFC 9068 §2.2) and JOSE header.
        self.claims: Mapping[str, Any] = verified.claims
        self.header: Mapping[str, Any] = verified.header
        #: RFC 8705 §3.1: the thumbprint the token is bound to, or ``None``.
        self.x5t_s256: str | None = verified.x5t_s256
        #: RFC 9068 §2.2.3: space-separated scopes (``""`` without a ``scope`` claim).
        self.scope: str = verified.claims.get("scope", "")
        #: ``exp`` in seconds since the epoch.
        self.exp: float = verified.exp
        #: The user ``RESOURCE_SERVER_JWT_USER`` gives (lazy for ``"local"``), or ``None``.
        self.user = user
        self._leeway = leeway

    # --- what DOT's permissions and views read -------------------------------------------

    @property
    def client_id(self) -> str | None:
        """RFC 9068 §2.2: the ``client_id`` claim."""
        value = self.claims.get("client_id")
        return value if isinstance(value, str) else None

    @property
    def sub(self) -> str | None:
        value = self.claims.get("sub")
        return value if isinstance(value, str) else None

    @property
    def is_client_token(self) -> bool:
        """A token a client obtained for itself (``client_credentials``: ``sub`` is the
        ``client_id``, RFC 9068 §2.2)."""
        return self.sub is not None and self.sub == self.client_id

    @cached_property
    def expires(self) -> dt.datetime:
        """``exp`` as a datetime (aware UTC, or naive local time without ``USE_TZ``, as DOT's)."""
        value = dt.datetime.fromtimestamp(self.exp, tz=dt.UTC)
        if not settings.USE_TZ:
            return timezone.make_naive(value)
        return value

    @property
    def resource(self) -> list[str]:
        """The ``aud`` values (what DOT calls the token's RFC 8707 ``resource``)."""
        aud = self.claims.get("aud")
        return [aud] if isinstance(aud, str) else list(aud or [])

    @property
    def scopes(self) -> dict[str, str]:
        """As DOT's ``AccessToken.scopes``: name → description, for the scopes this server
        knows."""
        from oauth2_provider.scopes import get_scopes_backend

        names = self.scope.split()
        known = get_scopes_backend().get_all_scopes()
        return {name: known[name] for name in names if name in known}

    def is_expired(self) -> bool:
        return time.time() >= self.exp + self._leeway

    def allow_scopes(self, scopes: Iterable[str] | None) -> bool:
        """Whether the token carries every scope in ``scopes`` (RFC 6749 §3.3)."""
        if not scopes:
            return True
        return set(scopes).issubset(self.scope.split())

    def is_valid(self, scopes: Iterable[str] | None = None) -> bool:
        return not self.is_expired() and self.allow_scopes(scopes)

    @cached_property
    def application(self) -> Any:
        """The application of the ``client_id`` claim, loaded when first read (one query);
        ``None`` when this database does not know it (a remote resource server)."""
        client_id = self.client_id
        if client_id is None:
            return None
        from oauth2_provider.models import get_application_model

        return get_application_model().objects.filter(client_id=client_id).first()

    def __repr__(self) -> str:  # never the token itself
        return f"<JWTAccessToken client_id={self.client_id!r} x5t#S256={self.x5t_s256!r}>"
