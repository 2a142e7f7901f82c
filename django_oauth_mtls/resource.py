"""Protecting plain Django views with certificate-bound tokens (RFC 8705 §3; RFC 6750 §3).

DOT's ``ProtectedResourceView`` answers a bare 403. Here a refused token gets a 401 with
``WWW-Authenticate: Bearer error="invalid_token", error_description=…`` (DOT 3.4's challenge
builder), and responses that depended on the certificate carry ``Cache-Control: no-store``
(RFC 9440 §2.4). The binding itself is enforced by the validator, so DOT's own views and
middleware refuse a bound token without its certificate too; these helpers add the right
status and headers, and ``require_bound`` (FAPI 1 §8.2) refuses unbound tokens.

Opaque and JWT access tokens alike (RFC 9068; ``RESOURCE_SERVER_TOKEN_VALIDATION``):
``request.access_token`` is then DOT's ``AccessToken`` or a ``JWTAccessToken``, and
``binding.x5t_s256_of`` reads the binding of either. Tokens are verified through
``bearer.verify_request``; every refusal is reported by ``validator_jwt.refuse_access_token``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_cache_control
from oauth2_provider.www_authenticate import build_bearer_challenge, challenge_status

from .bearer import verify_request
from .binding import x5t_s256_of
from .descriptions import access_token_description
from .middleware import NO_STORE_KEY
from .state import oauth2_error_of, request_state
from .validator_jwt import refuse_access_token, token_client_id

UNBOUND_REFUSED = {
    "error": "invalid_token",
    "error_description": access_token_description("unbound_refused"),
}


def mark_certificate_dependent(request: HttpRequest) -> None:
    request.META[NO_STORE_KEY] = True


def challenge_response(request: HttpRequest, oauth2_error: dict[str, str] | None) -> HttpResponse:
    """401 (403 for insufficient_scope) with a Bearer challenge, never cached."""
    response = HttpResponse(status=challenge_status(oauth2_error))
    response["WWW-Authenticate"] = build_bearer_challenge(
        request, oauth2_error=oauth2_error, resource_metadata_url=None
    )
    patch_cache_control(response, no_store=True)
    return response


def verify(
    request: HttpRequest, scopes: Sequence[str] = (), *, require_bound: bool = False
) -> HttpResponse | None:
    """Validate the bearer token of ``request``; ``None`` if it may proceed, else the 401."""
    valid, oauthlib_request = verify_request(request, scopes)
    if oauthlib_request is not None and request_state(oauthlib_request).certificate_dependent:
        mark_certificate_dependent(request)
    if not valid:
        return challenge_response(request, oauth2_error_of(oauthlib_request))
    token = oauthlib_request.access_token
    if require_bound and x5t_s256_of(token) is None:
        # FAPI 1 §8.2: an unbound token is refused where the view requires binding.
        mark_certificate_dependent(request)
        refuse_access_token(
            mtls_protected_resource,
            oauthlib_request,
            "unbound_refused",
            client_id=token_client_id(token),
        )
        return challenge_response(request, UNBOUND_REFUSED)
    request.resource_owner = oauthlib_request.user  # type: ignore[attr-defined]
    request.access_token = token  # type: ignore[attr-defined]
    return None


def mtls_protected_resource(
    scopes: Sequence[str] = (), *, require_bound: bool = False
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Decorator: like DOT's ``protected_resource``, with RFC 6750 401 challenges.

    ``@mtls_protected_resource(scopes=["read"], require_bound=True)``
    """

    def decorator(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            refused = verify(request, scopes, require_bound=require_bound)
            if refused is not None:
                return refused
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


class MTLSProtectedResourceMixin:
    """View mixin with the decorator's semantics; set ``required_scopes`` and
    ``require_bound_token`` on the view."""

    required_scopes: Sequence[str] = ()
    require_bound_token: bool = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if (request.method or "").upper() != "OPTIONS":
            refused = verify(request, self.required_scopes, require_bound=self.require_bound_token)
            if refused is not None:
                return refused
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
