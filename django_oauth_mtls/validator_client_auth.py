"""RFC 8705 §2 client authentication in the OAuthLib validator, and its one invariant.

``ClientAuthenticationMixin`` authenticates clients registered with ``tls_client_auth`` or
``self_signed_tls_client_auth`` by their certificate (``client_auth.authenticate_certificate``)
and hands every other client to DOT (or to the base validator). Whatever authenticated the
request, ``_enforce_registration`` then checks the client that ended up in ``request.client``: a
client registered with an mTLS method is authenticated only if this request's certificate
matched it (``docs/security.md``, "One invariant for client authentication"). It runs after
``authenticate_client`` and ``authenticate_client_id`` and again before a token is saved.

The method a client authenticates with comes from its registration (``MTLSClient``), never from
the shape of the certificate chain. A secret, Basic credentials, a ``client_assertion`` or a
bearer token alongside certificate authentication is refused (RFC 6749 §2.3).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
from typing import Any, NoReturn
from urllib.parse import unquote_plus

from oauth2_provider.models import get_application_model
from oauthlib.oauth2.rfc6749.errors import InvalidClientError, InvalidGrantError

from . import signals
from .certificates import ClientCertificate
from .client_auth import authenticate_certificate
from .descriptions import BEARER_CONFLICT, INTAKE_PHRASES, client_auth_description
from .exceptions import ClientAuthError, TokenEndpointHeaders
from .fapi import METHOD_REFUSED, fapi2_active
from .intake import get_client_certificate
from .models import mtls_client_of
from .prepared import PreparedLookup, objects_manager
from .state import explicit, request_state, set_default

log = logging.getLogger("django_oauth_mtls.client_auth")

#: The client's application and its mTLS row in one query, compiled once per connection.
APPLICATION_WITH_MTLS = PreparedLookup(
    lambda model, client_id: (
        objects_manager(model).select_related("mtls").filter(client_id=client_id)
    )
)

#: Parameters that mean "another client authentication method" (RFC 6749 §2.3, RFC 7523 §2.2).
CONFLICTING_PARAMETERS = ("client_secret", "client_assertion", "client_assertion_type")


class RefreshRaceError(TokenEndpointHeaders, InvalidGrantError):  # type: ignore[misc]
    """``invalid_grant`` raised while the tokens are saved (a concurrent refresh)."""


class UnauthenticatedClientError(TokenEndpointHeaders, InvalidClientError):  # type: ignore[misc]
    """``invalid_client`` raised while a token is saved for a client that registered an mTLS
    method and that no certificate authenticated in this request."""


class ClientAuthenticationMixin:
    """RFC 8705 §2 client authentication on top of any DOT ``OAuth2Validator``."""

    # --- loading -------------------------------------------------------------------------

    def _load_application(self, client_id: str, request: Any) -> Any:
        if isinstance(client_id, str) and "\x00" in client_id:
            # No client_id holds a NUL (a Basic header decodes to anything); PostgreSQL would
            # refuse the lookup itself (a DataError, a 500).
            request.client = None
            return None
        # One query for the application and its mTLS row; DOT then reuses request.client.
        if client_id and not request.client:
            with contextlib.suppress(ValueError):  # a value the field cannot take: no client
                request.client = APPLICATION_WITH_MTLS.first(get_application_model(), client_id)
        return super()._load_application(client_id, request)  # type: ignore[misc]

    # --- client authentication -----------------------------------------------------------

    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        """RFC 8705 §2 for clients registered with an mTLS method; DOT (or the base validator)
        for the others. Whatever authenticated the request, ``_enforce_registration`` then
        checks the client that ended up in ``request.client`` (the choke point)."""
        self._prepare(request)
        authenticated = self._authenticate_client(request, *args, **kwargs)
        if authenticated:
            self._enforce_registration(request)
        return authenticated

    def authenticate_client_id(
        self, client_id: str, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        """DOT's check for clients that need no authentication (public clients), then the
        invariant: a client registered with an mTLS method is never among them."""
        self._prepare(request)
        authenticated: bool = super().authenticate_client_id(  # type: ignore[misc]
            client_id, request, *args, **kwargs
        )
        if authenticated:
            self._enforce_registration(request)
        return authenticated

    def client_authentication_required(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        """A client registered with an mTLS method always authenticates (RFC 8705 §2)."""
        self._prepare(request)
        if super().client_authentication_required(request, *args, **kwargs):  # type: ignore[misc]
            return True
        client_id = _param(request, "client_id")
        application = self._load_application(client_id, request) if client_id else None
        mtls = mtls_client_of(application)
        return bool(mtls is not None and mtls.is_mtls)

    def _prepare(self, request: Any) -> None:
        """Set what DOT and oauthlib read with a fallback to request parameters."""
        set_default(request, "client", None)
        set_default(request, "refresh_token_instance", None)
        # RFC 6749 §2.3.1: Basic credentials are form-urlencoded UTF-8, whatever ``encoding``
        # the body names; DOT decodes them with ``request.encoding`` (a body parameter).
        vars(request)["encoding"] = "utf-8"

    def _enforce_registration(
        self, request: Any, error: type[InvalidClientError] = InvalidClientError
    ) -> None:
        """The invariant, after any authentication path: a client registered with an mTLS
        method is authenticated only if this request's certificate matched it."""
        client = explicit(request, "client")
        if client is None:
            return
        if not isinstance(client, get_application_model()):
            self._refuse(
                request,
                None,
                ClientAuthError("method_conflict", "the client is not an application"),
                None,
                error=error,
            )
        mtls = mtls_client_of(client)
        if mtls is None or not mtls.is_mtls:
            if fapi2_active():  # FAPI 2.0 §5.3.2.1: clients authenticate by MTLS (docs/fapi.md)
                failure = ClientAuthError("method_conflict", "not registered for an mTLS method")
                self._refuse(
                    request, client.client_id, failure, None, error=error, public=METHOD_REFUSED
                )
            return
        state = request_state(request)
        if state.authenticated_client_pk is not None and state.authenticated_client_pk == client.pk:
            return
        certificate, _problem = get_client_certificate(request.headers)
        self._refuse(
            request,
            client.client_id,
            ClientAuthError(
                "method_conflict",
                f"the client is registered for {mtls.token_endpoint_auth_method} and was "
                "authenticated another way",
            ),
            certificate,
            error=error,
        )

    def _authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        body_client_id = _param(request, "client_id")
        basic_client_id = self._basic_client_id(request)
        client_id = body_client_id or basic_client_id
        if _bearer_credential(request):
            if client_id or self._extract_basic_auth(request):  # type: ignore[attr-defined]
                # RFC 6749 §2.3: one credential per request.
                self._refuse(
                    request,
                    client_id,
                    ClientAuthError(
                        "method_conflict",
                        "a bearer token was sent alongside client credentials",
                    ),
                    None,
                    public=BEARER_CONFLICT,
                )
            return False  # DOT's bearer mode (introspection with a token of scope introspection)
        application = self._load_application(client_id, request) if client_id else None
        mtls = mtls_client_of(application)
        if mtls is None or not mtls.is_mtls:
            if client_id is None:
                certificate, _problem = get_client_certificate(request.headers)
                if certificate is not None:
                    # RFC 8705 §2: with certificate authentication client_id is REQUIRED.
                    self._refuse(
                        request,
                        None,
                        ClientAuthError(
                            "client_id_missing",
                            "client_id is required with certificate authentication (RFC 8705 §2)",
                        ),
                        certificate,
                    )
            return super().authenticate_client(request, *args, **kwargs)  # type: ignore[misc,no-any-return]
        certificate, problem = get_client_certificate(request.headers)
        try:
            self._check_no_other_method(request, basic_client_id)
            if not body_client_id:
                raise ClientAuthError(
                    "client_id_missing",
                    "client_id is required with certificate authentication (RFC 8705 §2)",
                )
            if certificate is None:
                reason = INTAKE_PHRASES.get(problem or "", f"refused ({problem})")
                raise ClientAuthError(
                    "no_certificate",
                    f"{mtls.token_endpoint_auth_method} requires a client certificate: {reason}",
                )
            authenticate_certificate(mtls, certificate)
        except ClientAuthError as error:
            self._refuse(
                request,
                client_id,
                error,
                certificate,
                problem,
                method=mtls.token_endpoint_auth_method,
            )
        state = request_state(request)
        state.authenticated_client_pk = mtls.application_id
        state.certificate = certificate
        log.info(
            "client authenticated by certificate: client_id=%s method=%s x5t#S256=%s",
            client_id,
            mtls.token_endpoint_auth_method,
            certificate.x5t_s256 if certificate else "-",
        )
        signals.client_authenticated.send(
            sender=type(self),
            request=request,
            client_id=client_id,
            method=mtls.token_endpoint_auth_method,
            x5t_s256=certificate.x5t_s256 if certificate else None,
        )
        return True

    def _authenticate_basic_auth(self, request: Any) -> bool:
        try:
            return super()._authenticate_basic_auth(request)  # type: ignore[misc,no-any-return]
        except ValueError:
            # DOT 3.4.1 lets base64.b64decode's ValueError escape for a non-ASCII credential
            # ("Authorization: Basic é"): a failed authentication, not a server error.
            return False

    def _basic_client_id(self, request: Any) -> str | None:
        auth = self._extract_basic_auth(request)  # type: ignore[attr-defined]
        if not auth:
            return None
        try:
            decoded = base64.b64decode(auth).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        return unquote_plus(decoded.split(":", 1)[0]) or None

    def _check_no_other_method(self, request: Any, basic_client_id: str | None) -> None:
        # RFC 6749 §2.3: a client MUST NOT use more than one authentication method (P23).
        if basic_client_id is not None or self._extract_basic_auth(request):  # type: ignore[attr-defined]
            raise ClientAuthError(
                "method_conflict",
                "this client authenticates with its certificate; HTTP Basic credentials are not "
                "accepted",
            )
        for name in CONFLICTING_PARAMETERS:
            if _param(request, name):
                raise ClientAuthError(
                    "method_conflict",
                    f"this client authenticates with its certificate; {name} is not accepted",
                )

    def _refuse(
        self,
        request: Any,
        client_id: str | None,
        failure: ClientAuthError,
        certificate: ClientCertificate | None,
        problem: str | None = None,
        *,
        method: str | None = None,
        error: type[InvalidClientError] = InvalidClientError,
        public: str | None = None,
    ) -> NoReturn:
        """Log why (the detail stays in the log), signal, and raise ``invalid_client`` with a
        fixed description for the reason code (``descriptions``), never the detail."""
        log.warning(
            "client authentication refused: client_id=%s reason=%s intake=%s x5t#S256=%s detail=%s",
            client_id or "-",
            failure.code,
            problem or "-",
            certificate.x5t_s256 if certificate else "-",
            failure.description,
        )
        signals.client_authentication_failed.send(
            sender=type(self),
            request=request,
            client_id=client_id,
            reason=failure.code,
            description=failure.description,
            x5t_s256=certificate.x5t_s256 if certificate else None,
        )
        request_state(request).error_code = failure.code
        description = public or client_auth_description(failure.code, problem, method)
        raise error(description=description, request=request)


def _bearer_credential(request: Any) -> bool:
    """The request carries ``Authorization: Bearer`` (DOT's bearer mode at introspection)."""
    auth = request.headers.get("HTTP_AUTHORIZATION") or request.headers.get("Authorization")
    return isinstance(auth, str) and auth[:7].lower() == "bearer "


def _param(request: Any, name: str) -> str | None:
    """A request parameter oauthlib parsed, or ``None`` (never raises)."""
    try:
        value = getattr(request, name, None)
    except (AttributeError, KeyError):
        value = None
    if value is None:
        value = dict(request.decoded_body or ()).get(name) if request.decoded_body else None
    return value or None
