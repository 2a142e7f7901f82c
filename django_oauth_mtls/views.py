"""Views that replace DOT's where RFC 8705 extends them (introspection; metadata and
registration join later), or where DOT 3.4.1 breaks under oauthlib 4 (the device grant, RFC 8628).
Mounted by ``django_oauth_mtls.urls`` under DOT's URL names.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters
from django.views.generic import View
from oauth2_provider.compat import login_not_required
from oauth2_provider.models import (
    DeviceCodeResponse,
    DeviceRequest,
    create_device_grant,
    get_access_token_model,
    get_application_model,
)
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.signals import app_authorized
from oauth2_provider.utils import set_oauthlib_user_to_device_request_user
from oauth2_provider.views import DeviceAuthorizationView, IntrospectTokenView, TokenView
from oauth2_provider.www_authenticate import build_bearer_challenge, challenge_status
from oauthlib.common import Request as OAuthlibRequest
from oauthlib.common import urlencode
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from oauthlib.oauth2.rfc8628.grant_types import DeviceCodeGrant

from .binding import cnf, x5t_s256_of
from .state import collecting_issued_tokens, oauth2_error_of

log = logging.getLogger("django_oauth_mtls.views")


def invalid_client_response(description: str) -> JsonResponse:
    """RFC 6749 §5.2 / RFC 7662 §2.3: 401 with ``invalid_client`` and a description."""
    response = JsonResponse(
        {"error": "invalid_client", "error_description": description}, status=401
    )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

#: What a request whose parameters carry a NUL character is told (RFC 6749 §5.2).
NUL_REFUSED = "a request parameter contains a NUL character"


def parameters_without_nul(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse, with 400 ``invalid_request``, a request whose query or form parameters (names or
    values) or ``Authorization`` header carry a NUL character: PostgreSQL refuses NUL in text
    (a ``DataError``, a 500 past DOT), and no OAuth parameter may contain one (RFC 6749 §A)."""

    @functools.wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if _carries_nul(request):
            log.info("request refused: reason=nul_character path=%s", request.path)
            response = JsonResponse(
                {"error": "invalid_request", "error_description": NUL_REFUSED}, status=400
            )
            response["Cache-Control"] = "no-store"
            return response
        return view(request, *args, **kwargs)

    return wrapped


def _carries_nul(request: HttpRequest) -> bool:
    if "\x00" in request.META.get("HTTP_AUTHORIZATION", ""):
        return True
    for query in (request.GET, request.POST if request.method == "POST" else None):
        if query is None:
            continue
        for name, values in query.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return True
    return False


#: oauthlib 4 asks the validator for the device_code's status (``validate_device_code``) after
#: client authentication; oauthlib 3.3 leaves it to DOT's token view and pre-token hook.
OAUTHLIB_VALIDATES_DEVICE_CODE = hasattr(DeviceCodeGrant, "validate_device_code")


class MTLSTokenView(TokenView):  # type: ignore[misc]
    """DOT's token view. A device_code grant without ``device_code`` is a 400: DOT 3.4.1 reads
    ``request.POST["device_code"]`` unguarded (a 500).

    With oauthlib 4, a device_code grant goes through oauthlib like the other grants: client
    authentication, then the validator's ``validate_device_code`` (``DeviceCodeMixin``), which
    checks that the grant belongs to the authenticated client and maps its status to RFC 8628
    §3.5. DOT 3.4.1's own path answers the grant's status before authenticating the client, for
    any client, and its pre-token hook (``set_oauthlib_user_to_device_request_user``, left out of
    this view's server) loads the grant by ``device_code`` alone, raising for an unknown one.
    """

    #: DOT's ``TokenView`` marks ``dispatch`` ``csrf_exempt`` and ``login_not_required`` with
    #: ``method_decorator``, which builds and decorates a new bound method on every request.
    #: Here Django's two decorators are applied once; ``as_view()`` copies their marks onto the
    #: view function, which is where ``CsrfViewMiddleware`` and ``LoginRequiredMiddleware`` read
    #: them (issue #16). ``csrf_exempt`` first: it returns a new function, which
    #: ``login_not_required`` then marks (it marks the function it is given, in place).
    dispatch = login_not_required(csrf_exempt(View.dispatch))

    @classmethod
    def get_server(cls) -> Any:
        if not OAUTHLIB_VALIDATES_DEVICE_CODE:
            return super().get_server()
        server_kwargs = dict(oauth2_settings.server_kwargs)
        server_kwargs["pre_token"] = [
            hook
            for hook in server_kwargs.get("pre_token") or ()
            if hook is not set_oauthlib_user_to_device_request_user
        ]
        return cls.get_server_class()(cls.get_validator_class()(), **server_kwargs)

    @method_decorator(sensitive_post_parameters("password", "client_secret"))
    def authorization_flow_token_response(
        self, request: HttpRequest, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        """DOT's, but ``app_authorized`` gets the token the validator just created: DOT parses
        the response body and reads the token back from the database (a query per request)."""
        with collecting_issued_tokens() as issued:
            _url, headers, body, status = self.create_token_response(request)
        if status == 200:
            token = issued[-1] if issued else self._token_from_body(body)
            if token is not None:
                app_authorized.send(sender=self, request=request, token=token)
        response = HttpResponse(content=body, status=status)
        for name, value in headers.items():
            response[name] = value
        return response

    @staticmethod
    def _token_from_body(body: str) -> Any:
        """DOT's lookup, for a token this request updated in place (non-rotating refresh)."""
        value = json.loads(body).get("access_token")
        if value is None:
            return None
        checksum = hashlib.sha256(value.encode("utf-8")).hexdigest()
        return get_access_token_model().objects.filter(token_checksum=checksum).first()

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.POST.get("grant_type") == DEVICE_CODE_GRANT:
            if not request.POST.get("device_code"):
                response = JsonResponse(
                    {
                        "error": "invalid_request",
                        "error_description": "device_code is required (RFC 8628 §3.4)",
                    },
                    status=400,
                )
                response["Cache-Control"] = "no-store"
                return response
            if OAUTHLIB_VALIDATES_DEVICE_CODE:
                return self.authorization_flow_token_response(request)
        return super().post(request, *args, **kwargs)  # type: ignore[no-any-return]


@method_decorator(csrf_exempt, name="dispatch")
@method_decorator(login_not_required, name="dispatch")
class MTLSDeviceAuthorizationView(DeviceAuthorizationView):  # type: ignore[misc]
    """RFC 8628 §3.1, §3.2: DOT's device authorization view, working with oauthlib 4.

    oauthlib 4 adds ``scope`` (the resolved scopes) to the response data, which DOT 3.4.1 passes
    whole to its ``DeviceCodeResponse`` dataclass (a ``TypeError``, a 500). Here the stored grant
    takes ``scope`` from that data, or, as DOT does (oauthlib 3.3), from the request or the
    client's default scopes; ``DeviceCodeResponse`` gets the members its signature names. The
    response carries the members RFC 8628 §3.2 defines, with ``Cache-Control: no-store``.
    Client authentication is oauthlib's, through the validator (the mTLS invariant applies).
    """

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        headers, data, status = self.create_device_authorization_response(request)
        if status != 200:
            return JsonResponse(json.loads(data), status=status, headers=headers)
        client_id = request.POST.get("client_id", "")  # oauthlib required and validated it
        resolved_scope = data.pop("scope", None)
        scope = resolved_scope if resolved_scope is not None else self._fallback_scope(request)
        if scope is None:
            return JsonResponse(
                {"error": "invalid_client", "error_description": "No application found."},
                status=401,
                headers=headers,
            )
        accepted = inspect.signature(DeviceCodeResponse).parameters
        members = {"interval": 5, **data}  # RFC 8628 §3.2: no interval means 5 seconds
        create_device_grant(
            DeviceRequest(client_id=client_id, scope=scope),
            DeviceCodeResponse(**{key: value for key, value in members.items() if key in accepted}),
        )
        response = JsonResponse(data, status=status, headers=headers)
        response["Cache-Control"] = "no-store"
        return response

    def _fallback_scope(self, request: HttpRequest) -> str | None:
        """DOT 3.4.1's scope for the grant: the request's, else the client's default scopes
        (``None`` for an unknown client)."""
        requested = request.POST.get("scope", "").strip()
        if requested:
            return requested
        client_id = request.POST.get("client_id", "")
        application = get_application_model().objects.filter(client_id=client_id).first()
        if application is None:
            return None
        core = self.get_oauthlib_core()
        oauthlib_request = OAuthlibRequest(
            request.build_absolute_uri(),
            http_method=request.method,
            body=urlencode(core.extract_body(request)),
            headers=core.extract_headers(request),
        )
        oauthlib_request.client_id = client_id
        oauthlib_request.client = application
        validator = core.server.request_validator
        return " ".join(validator.get_default_scopes(client_id, oauthlib_request))


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
        x5t = x5t_s256_of(token)
        if x5t is not None:
            # RFC 8705 §3.2: the confirmation method, top-level, as in a JWT.
            data["cnf"] = cnf(x5t)
        return JsonResponse(data)
