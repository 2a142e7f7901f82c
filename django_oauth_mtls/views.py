"""Views that replace DOT's where RFC 8705 extends them (introspection; metadata and
registration join later). Mounted by ``django_oauth_mtls.urls`` under DOT's URL names.
"""

from __future__ import annotations

import calendar
import hashlib
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.models import get_access_token_model
from oauth2_provider.views import IntrospectTokenView, TokenView
from oauth2_provider.www_authenticate import build_bearer_challenge, challenge_status
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from .state import oauth2_error_of


def invalid_client_response(description: str) -> JsonResponse:
    """RFC 6749 §5.2 / RFC 7662 §2.3: 401 with ``invalid_client`` and a description."""
    response = JsonResponse(
        {"error": "invalid_client", "error_description": description}, status=401
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class MTLSTokenView(TokenView):  # type: ignore[misc]
    """DOT's token view. A device_code grant without ``device_code`` is a 400: DOT 3.4.1 reads
    ``request.POST["device_code"]`` unguarded (a 500)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.POST.get("grant_type") == DEVICE_CODE_GRANT and not request.POST.get(
            "device_code"
        ):
            response = JsonResponse(
                {
                    "error": "invalid_request",
                    "error_description": "device_code is required (RFC 8628 §3.4)",
                },
                status=400,
            )
            response["Cache-Control"] = "no-store"
            return response
        return super().post(request, *args, **kwargs)  # type: ignore[no-any-return]


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class MTLSIntrospectTokenView(IntrospectTokenView):  # type: ignore[misc]
    """RFC 7662 introspection with certificate client authentication and ``cnf`` (RFC 8705 §3.2).

    DOT authenticates the caller outside oauthlib's error handling, so a refused certificate
    would surface as a 500, and any other failure as a bare 403. Here a failed client
    authentication is a 401 ``invalid_client`` with a description, and a failed bearer token a
    401 (or 403 for insufficient scope) with a ``WWW-Authenticate: Bearer`` challenge.
    """

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if (request.method or "").upper() == "OPTIONS":
            return View.dispatch(self, request, *args, **kwargs)  # type: ignore[return-value]
        try:
            authenticated = self.authenticate_client(request)
        except OAuth2Error as error:
            return invalid_client_response(error.description or "client authentication failed")
        if authenticated:
            return View.dispatch(self, request, *args, **kwargs)  # type: ignore[return-value]
        if request.META.get("HTTP_AUTHORIZATION", "").lower().startswith("bearer "):
            valid, oauthlib_request = self.verify_request(request)
            if valid:
                request.resource_owner = oauthlib_request.user  # type: ignore[attr-defined]
                return View.dispatch(self, request, *args, **kwargs)  # type: ignore[return-value]
            oauth2_error = oauth2_error_of(oauthlib_request)
            response = HttpResponse(status=challenge_status(oauth2_error))
            response["WWW-Authenticate"] = build_bearer_challenge(
                request, oauth2_error=oauth2_error, resource_metadata_url=None
            )
            return response
        return invalid_client_response("client authentication failed")

    def get_token_response(self, token_value: str | None = None) -> JsonResponse:
        """DOT's response plus top-level ``cnf`` for a bound, active token (one query)."""
        if token_value is None:
            return JsonResponse(
                {"error": "invalid_request", "error_description": "Token parameter is missing."},
                status=400,
            )
        checksum = hashlib.sha256(token_value.encode("utf-8")).hexdigest()
        try:
            token = (
                get_access_token_model()
                .objects.select_related("user", "application", "mtls_binding")
                .get(token_checksum=checksum)
            )
        except ObjectDoesNotExist:
            return JsonResponse({"active": False})
        if not token.is_valid():
            # RFC 7662 §2.2: an inactive token reveals nothing else.
            return JsonResponse({"active": False})
        data: dict[str, Any] = {
            "active": True,
            "scope": token.scope,
            "exp": int(calendar.timegm(token.expires.timetuple())),
        }
        if token.application:
            data["client_id"] = token.application.client_id
        if token.user:
            data["username"] = token.user.get_username()
        if token.resource:
            data["aud"] = token.resource
        binding = _binding_of(token)
        if binding is not None:
            # RFC 8705 §3.2: the confirmation method, top-level, as in a JWT.
            data["cnf"] = {"x5t#S256": binding.x5t_s256}
        return JsonResponse(data)


def _binding_of(token: Any) -> Any:
    try:
        return token.mtls_binding
    except ObjectDoesNotExist:
        return None
