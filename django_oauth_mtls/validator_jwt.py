"""The resource side of JWT access tokens: ``RESOURCE_SERVER_TOKEN_VALIDATION`` (RFC 9068 §4).

``JWTValidatorMixin`` sits in ``MTLSValidatorMixin``'s bases, in front of the introspection and
database path (``ResourceServerMixin``, then DOT). Its ``validate_bearer_token`` decides by mode:

* ``"database"``, ``"introspection"``: today's path, unchanged (DOT's
  ``RESOURCE_SERVER_INTROSPECTION_URL`` decides whether a miss is introspected);
* ``"jwt"``: a JWS (``jwt_checks.is_jws``) is checked locally; anything else is refused with
  ``jwt_malformed``;
* ``"jwt_or_database"``, ``"jwt_or_introspection"``: a JWS locally, anything else by today's path.

DOT's own endpoints on the authorization server — userinfo and bearer-authenticated
introspection (``oauth2_provider:user-info``, ``oauth2_provider:introspect``) — always take the
database path, whatever the mode: a JWT is stored in DOT's table too, so revocation counts there.
They are recognised by the request's path (``reverse`` of those names, computed once per URLconf).

A JWS accepted locally becomes ``request.access_token``, a ``JWTAccessToken`` built from the
claims with no query; ``request.user`` follows ``RESOURCE_SERVER_JWT_USER``. The certificate
binding is then enforced by ``MTLSValidatorMixin`` exactly as for an opaque token.

``refuse_access_token`` is the one place a refusal is reported: a fixed ``error_description``
per reason code (``descriptions.ACCESS_TOKEN_PHRASES``), one log line, and the
``access_token_refused`` signal.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Any, Final

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject
from django.utils.module_loading import import_string

from . import signals
from .bearer import BearerRequest, at_authorization_server_endpoint, resource_config
from .conf import JWT_MODES
from .descriptions import access_token_description
from .intake import get_client_certificate
from .jwt_checks import JWTError, check_access_token, is_jws
from .jwt_resource_keys import KeysUnavailable, trusted_keys
from .jwt_tokens import JWTAccessToken
from .state import request_state

__all__ = [
    "JWTValidatorMixin",
    "refuse_access_token",
    "token_client_id",
]

log = logging.getLogger("django_oauth_mtls.resource")

#: Routine refusals, logged at INFO; every other one at WARNING.
_ROUTINE: Final = frozenset({"token_invalid", "jwt_expired"})


def token_client_id(token: Any) -> str | None:
    """The ``client_id`` of a token: a JWT's claim, or a stored token's application (loaded
    with it by the validator: no query)."""
    client_id = getattr(token, "client_id", None)
    if isinstance(client_id, str):
        return client_id
    application = getattr(token, "application", None)
    value = getattr(application, "client_id", None)
    return value if isinstance(value, str) else None


def refuse_access_token(
    sender: Any,
    request: Any,
    reason: str,
    *,
    client_id: str | None = None,
    detail: str = "",
    keep_description: bool = False,
) -> None:
    """Report a refused access token: ``invalid_token`` with the reason's phrase (DOT's own
    phrase kept with ``keep_description``), one log line, ``access_token_refused``.

    ``request`` is oauthlib's request, or Django's where the refusal happens after oauthlib
    (``TokenIsCertificateBound``, ``require_bound``).
    """
    error = request.__dict__.get("oauth2_error")
    if not (keep_description and isinstance(error, dict) and error.get("error_description")):
        request.oauth2_error = OrderedDict(
            [("error", "invalid_token"), ("error_description", access_token_description(reason))]
        )
    state = request_state(request)
    state.refusal_reason = reason
    state.refusal_client_id = client_id
    certificate, problem = get_client_certificate(
        request if isinstance(request, HttpRequest) else request.headers
    )
    presented = certificate.x5t_s256 if certificate else None
    log.log(
        logging.INFO if reason in _ROUTINE else logging.WARNING,
        "access token refused: reason=%s client_id=%s presented=%s intake=%s%s",
        reason,
        client_id or "-",
        presented or "-",
        problem or "-",
        f" detail={detail}" if detail else "",
    )
    signals.access_token_refused.send(
        sender=sender, request=request, reason=reason, client_id=client_id, x5t_s256=presented
    )


@lru_cache(maxsize=8)
def _user_callable(path: str) -> Any:
    return import_string(path)


def _local_user(sub: str) -> Any:
    """This database's user with pk ``sub``, or an ``AnonymousUser`` (deleted, or a ``sub``
    that is no pk here)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser
    from django.core.exceptions import ValidationError

    try:
        user = get_user_model()._default_manager.filter(pk=sub).first()
    except (ValueError, TypeError, ValidationError):
        user = None
    return user if user is not None else AnonymousUser()


class JWTValidatorMixin:
    """The jwt modes of ``RESOURCE_SERVER_TOKEN_VALIDATION`` in front of the stored-token path."""

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        mode = resource_config().mode
        if mode not in JWT_MODES or not token:  # database, introspection: no JWS checked here
            return super().validate_bearer_token(token, scopes, request)  # type: ignore[misc,no-any-return]
        jws = isinstance(token, str) and is_jws(token)
        # A BearerRequest was made only after bearer.py found the path is no AS endpoint.
        at_as = not isinstance(request, BearerRequest) and at_authorization_server_endpoint(request)
        if at_as or (not jws and mode != "jwt"):
            return super().validate_bearer_token(token, scopes, request)  # type: ignore[misc,no-any-return]
        if not jws:
            refuse_access_token(type(self), request, "jwt_malformed", detail="not a JWS")
            return False
        return self._validate_jwt(token, scopes, request)

    def _validate_jwt(self, token: str, scopes: Any, request: Any) -> bool:
        """RFC 9068 §4 locally; on success ``request.access_token`` is a ``JWTAccessToken``."""
        config = resource_config()
        audience, issuer = config.audience, config.issuer
        if not audience or not issuer:
            # Fails closed; the system check reports the missing setting.
            reason = "jwt_audience" if not audience else "jwt_issuer"
            refuse_access_token(type(self), request, reason, detail="not configured")
            return False
        options: dict[str, Any] = {
            "algorithms": config.algorithms,
            "issuer": issuer,
            "audience": audience,
            "leeway": config.leeway,
            "now": time.time(),
        }
        try:
            keys = trusted_keys()
            try:
                verified = check_access_token(token, keys, **options)
            except JWTError as exc:
                if exc.reason != "jwt_unknown_key":
                    raise
                # The AS may have rotated: one re-fetch, rate-limited (remote keys only).
                refreshed = trusted_keys(unknown_kid=True)
                if refreshed is keys:
                    raise
                verified = check_access_token(token, refreshed, **options)
        except KeysUnavailable as exc:
            refuse_access_token(type(self), request, "jwt_keys_unavailable", detail=str(exc))
            return False
        except JWTError as exc:
            refuse_access_token(type(self), request, exc.reason, detail=exc.detail)
            return False
        access_token = JWTAccessToken(token, verified, leeway=options["leeway"], user=None)
        access_token.user = self._jwt_user(access_token)
        if not access_token.allow_scopes(scopes):
            # RFC 6750 §3.1, as DOT says it (a 403, not a refusal of the token).
            request.oauth2_error = OrderedDict(
                [
                    ("error", "insufficient_scope"),
                    (
                        "error_description",
                        "The access token is valid but does not have enough scope.",
                    ),
                ]
            )
            return False
        # Set explicitly: oauthlib's request would otherwise answer a request parameter.
        request.client = SimpleLazyObject(lambda: access_token.application)
        request.user = access_token.user
        request.scopes = access_token.scope.split()
        request.access_token = access_token
        return True

    def _jwt_user(self, access_token: JWTAccessToken) -> Any:
        """``RESOURCE_SERVER_JWT_USER`` for this token: ``None`` for a client's own token."""
        sub = access_token.sub
        if sub is None or access_token.is_client_token:
            return None
        policy = resource_config().user
        if policy is None:
            return None
        if policy == "local":
            return SimpleLazyObject(lambda: _local_user(sub))
        return _user_callable(policy)(access_token.claims)
