"""``MTLSOAuth2Authentication``: DOT's DRF authentication with RFC 8705 §3 refusals."""

from __future__ import annotations

from typing import Any

from oauth2_provider.contrib.rest_framework import OAuth2Authentication
from rest_framework.exceptions import AuthenticationFailed

from django_oauth_mtls.bearer import verify_request
from django_oauth_mtls.resource import mark_certificate_dependent
from django_oauth_mtls.state import oauth2_error_of, request_state


class MTLSOAuth2Authentication(OAuth2Authentication):  # type: ignore[misc]
    """Like DOT's ``OAuth2Authentication``, but a bound token presented without its
    certificate (or with another) is a 401 ``invalid_token``, not an anonymous request.

    No bearer token: ``None`` (DRF's contract). Other invalid tokens: as DOT (``None``, with
    the error in the challenge when a permission then refuses).
    """

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        if request is None:
            return None
        valid, oauthlib_request = verify_request(request, ())
        state = request_state(oauthlib_request) if oauthlib_request is not None else None
        if state is not None and state.certificate_dependent:
            mark_certificate_dependent(request._request)
        if valid:
            return oauthlib_request.user, oauthlib_request.access_token
        request.oauth2_error = oauth2_error_of(oauthlib_request) or {}
        if state is not None and state.binding_refused:
            raise AuthenticationFailed(request.oauth2_error.get("error_description"))
        return None
