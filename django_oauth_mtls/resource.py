"""Protecting plain Django views with certificate-bound tokens (RFC 8705 §3; RFC 6750 §3).

DOT's ``ProtectedResourceView`` answers a bare 403. Here a refused token gets a 401 with
``WWW-Authenticate: Bearer error="invalid_token", error_description=…`` (DOT 3.4's challenge
builder), and responses that depended on the certificate carry ``Cache-Control: no-store``
(RFC 9440 §2.4). The binding itself is enforced by the validator, so DOT's own views and
middleware refuse a bound token without its certificate too; these helpers add the right
status and headers, and ``require_bound`` (FAPI 1 §8.2) refuses unbound tokens.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.utils.cache import patch_cache_control
from oauth2_provider.oauth2_backends import get_oauthlib_core
from oauth2_provider.www_authenticate import build_bearer_challenge, challenge_status

from .middleware import NO_STORE_KEY
from .oauth2_validators import binding_of
from .state import oauth2_error_of, request_state

UNBOUND_REFUSED = {
    "error": "invalid_token",
    "error_description": "a certificate-bound access token is required",
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
    valid, oauthlib_request = get_oauthlib_core().verify_request(request, scopes=list(scopes))
    if oauthlib_request is not None and request_state(oauthlib_request).certificate_dependent:
        mark_certificate_dependent(request)
    if not valid:
        return challenge_response(request, oauth2_error_of(oauthlib_request))
    token = oauthlib_request.access_token
    if require_bound and binding_of(token) is None:
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
