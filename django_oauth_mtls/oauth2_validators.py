"""The OAuthLib request validator with RFC 8705 client authentication (§2).

``MTLSOAuth2Validator`` is DOT's ``OAuth2Validator`` with ``MTLSValidatorMixin``; projects that
already subclass DOT's validator add the mixin in front of their own class::

    class MyValidator(MTLSValidatorMixin, MyExistingValidator): ...

The method a client authenticates with comes from its registration (``MTLSClient``), never from
the shape of the certificate chain. A client registered for ``tls_client_auth`` or
``self_signed_tls_client_auth`` must present a matching certificate and send ``client_id``; a
secret, Basic credentials or a ``client_assertion`` alongside is refused (RFC 6749 §2.3). An
application without an mTLS registration is handled by DOT, unchanged.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import logging
from typing import Any, NoReturn
from urllib.parse import unquote_plus

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from oauth2_provider.models import (
    get_access_token_model,
    get_application_model,
    get_refresh_token_model,
)
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
)

from . import signals
from .binding import thumbprints_match
from .certificates import ClientCertificate
from .client_auth import authenticate_certificate
from .conf import mtls_settings
from .descriptions import BEARER_CONFLICT, INTAKE_PHRASES, client_auth_description
from .exceptions import ClientAuthError
from .intake import get_client_certificate
from .models import AccessTokenBinding, MTLSClient, RefreshTokenBinding
from .resource_server import ResourceServerMixin
from .state import explicit, request_state, set_default

log = logging.getLogger("django_oauth_mtls.client_auth")

#: Parameters that mean "another client authentication method" (RFC 6749 §2.3, RFC 7523 §2.2).
CONFLICTING_PARAMETERS = ("client_secret", "client_assertion", "client_assertion_type")

class _TokenEndpointHeaders:
    """For errors raised while tokens are saved, past oauthlib's error handling: they carry
    the token endpoint's headers themselves (RFC 6749 §5.1, §5.2)."""

    @property
    def headers(self) -> dict[str, str]:
        return {
            **super().headers,  # type: ignore[misc]
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            "Pragma": "no-cache",
        }


class RefreshRaceError(_TokenEndpointHeaders, InvalidGrantError):  # type: ignore[misc]
    """``invalid_grant`` raised while the tokens are saved (a concurrent refresh)."""


class UnauthenticatedClientError(_TokenEndpointHeaders, InvalidClientError):  # type: ignore[misc]
    """``invalid_client`` raised while a token is saved for a client that registered an mTLS
    method and that no certificate authenticated in this request."""


def mtls_client_of(application: Any) -> MTLSClient | None:
    """The application's mTLS row, without a query when it was ``select_related``."""
    if application is None:
        return None
    try:
        return application.mtls  # type: ignore[no-any-return]
    except ObjectDoesNotExist:
        return None


class MTLSValidatorMixin(ResourceServerMixin):
    """RFC 8705 §2 client authentication on top of any DOT ``OAuth2Validator``."""

    # --- loading -------------------------------------------------------------------------

    def _load_application(self, client_id: str, request: Any) -> Any:
        # One query for the application and its mTLS row; DOT then reuses request.client.
        if client_id and not request.client:
            with contextlib.suppress(ObjectDoesNotExist, ValueError):
                request.client = (
                    get_application_model().objects.select_related("mtls").get(client_id=client_id)
                )
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

    # --- certificate-bound tokens (RFC 8705 §3, §4, §6.3) ------------------------------------

    def _presented_certificate(self, request: Any) -> ClientCertificate | None:
        certificate = request_state(request).certificate
        if certificate is None:
            certificate, _problem = get_client_certificate(request.headers)
        return certificate

    def _decide_binding(self, request: Any, *, grant_bound: bool = False) -> None:
        """Set the state's ``bind_to`` to the thumbprint new tokens are bound to, or ``None``.

        Binding needs proof of possession, not a trusted chain (RFC 8705 §4, §6.2): any
        certificate from a trusted proxy binds, whatever the client authenticated with.
        """
        certificate = self._presented_certificate(request)
        flagged = _flagged(request.client)
        if certificate is not None and (flagged or grant_bound or mtls_settings.BIND_ALL_TOKENS):
            request_state(request).bind_to = certificate.x5t_s256
            return
        request_state(request).bind_to = None
        if (
            flagged
            and certificate is None
            and mtls_settings.BOUND_TOKEN_WITHOUT_CERTIFICATE == "error"
        ):
            log.warning(
                "bound token refused: client_id=%s reason=no_certificate",
                getattr(request.client, "client_id", "-"),
            )
            raise InvalidRequestError(
                description="client certificate required for certificate-bound tokens",
                request=request,
            )

    def validate_grant_type(
        self, client_id: str, grant_type: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        valid: bool = super().validate_grant_type(  # type: ignore[misc]
            client_id, grant_type, client, request, *args, **kwargs
        )
        if valid and grant_type != "refresh_token":  # refresh decides in validate_refresh_token
            self._decide_binding(request)
        return valid

    def validate_response_type(
        self,
        client_id: str,
        response_type: str,
        client: Any,
        request: Any,
        *args: Any,
        **kwargs: Any,
    ) -> bool:
        # RFC 8705 §3: a front-channel token cannot be bound; flagged clients get none. Nor do
        # clients registered with an mTLS method: the front channel authenticates no client.
        if "token" in (response_type or "").split() and (_flagged(client) or _mtls(client)):
            return False
        return super().validate_response_type(  # type: ignore[misc,no-any-return]
            client_id, response_type, client, request, *args, **kwargs
        )

    def validate_refresh_token(
        self, refresh_token: str, client: Any, request: Any, *args: Any, **kwargs: Any
    ) -> bool:
        if not super().validate_refresh_token(refresh_token, client, request, *args, **kwargs):  # type: ignore[misc]
            return False
        stored = request.refresh_token_instance
        rt_binding = RefreshTokenBinding.objects.filter(refresh_token=stored).first()
        certificate = self._presented_certificate(request)
        presented = certificate.x5t_s256 if certificate else None
        grant_bound = bool(rt_binding and rt_binding.grant_bound)
        if (
            rt_binding
            and rt_binding.x5t_s256
            and not thumbprints_match(rt_binding.x5t_s256, presented)
        ):
            # RFC 8705 §4: a bound refresh token needs the certificate it was issued with.
            self._refuse_refresh(
                request,
                "the refresh token is bound to another client certificate"
                if presented
                else "the refresh token is certificate-bound; present its client certificate",
            )
        if (
            grant_bound
            and certificate is None
            and mtls_settings.BOUND_TOKEN_WITHOUT_CERTIFICATE == "error"
        ):
            # FAPI 2: a grant issued bound is never refreshed without a certificate.
            self._refuse_refresh(
                request, "this grant was issued certificate-bound; present a client certificate"
            )
        if stored.revoked is not None:
            # DOT's reuse grace period returns the previous access token as it is.
            previous = (
                get_access_token_model()
                .objects.select_related("mtls_binding")
                .filter(source_refresh_token=stored)
                .first()
            )
            previous_binding = binding_of(previous)
            if previous_binding is not None and not thumbprints_match(
                previous_binding.x5t_s256, presented
            ):
                self._refuse_refresh(
                    request, "within the grace period the refresh needs the same client certificate"
                )
        request_state(request).grant_bound = grant_bound
        self._decide_binding(request, grant_bound=grant_bound)
        return True

    def _refuse_refresh(
        self, request: Any, description: str, error: type[InvalidGrantError] = InvalidGrantError
    ) -> None:
        log.warning(
            "refresh refused: client_id=%s reason=binding detail=%s",
            getattr(request.client, "client_id", "-"),
            description,
        )
        raise error(description=description, request=request)

    def _create_access_token(
        self, expires: Any, request: Any, token: Any, source_refresh_token: Any = None
    ) -> Any:
        access_token = super()._create_access_token(  # type: ignore[misc]
            expires, request, token, source_refresh_token=source_refresh_token
        )
        x5t = request_state(request).bind_to
        if x5t:
            # Same transaction as the token (DOT's save_bearer_token is atomic).
            AccessTokenBinding.objects.create(access_token=access_token, x5t_s256=x5t)
        return access_token

    def _create_refresh_token(
        self, request: Any, refresh_token_code: str, access_token: Any, previous_refresh_token: Any
    ) -> Any:
        refresh_token = super()._create_refresh_token(  # type: ignore[misc]
            request, refresh_token_code, access_token, previous_refresh_token
        )
        state = request_state(request)
        x5t = state.bind_to
        if x5t or state.grant_bound:
            RefreshTokenBinding.objects.create(
                refresh_token=refresh_token,
                x5t_s256=self._refresh_token_thumbprint(request, x5t),
                grant_bound=True,
            )
        return refresh_token

    def _refresh_token_thumbprint(self, request: Any, x5t: str | None) -> str:
        """``REFRESH_TOKEN_BINDING``: which refresh tokens carry the thumbprint themselves."""
        policy = mtls_settings.REFRESH_TOKEN_BINDING
        if not x5t or policy == "none":
            return ""
        if policy == "all" or getattr(request.client, "client_type", None) == "public":
            return x5t
        return ""  # confidential clients under "public": bound to the client, may rotate (§6.3)

    def _refuse_concurrent_refresh(self, token: Any, request: Any) -> None:
        """Re-check a rotating refresh under DOT's lock (inside ``save_bearer_token``'s
        transaction). DOT 3.4.1 checks reuse only in ``validate_refresh_token``, before the lock:
        a request that validated while a concurrent one rotated the same refresh token is
        answered with that rotation's pair. Outside the grace period that is a replay; inside
        it, the certificate rule of a retry applies."""
        stored = explicit(request, "refresh_token_instance")
        if not (
            token.get("refresh_token")
            and self.rotate_refresh_token(request)  # type: ignore[attr-defined]
            and isinstance(stored, get_refresh_token_model())
            and stored.revoked is None
        ):
            return
        row = (
            get_refresh_token_model()
            .objects.select_for_update()
            .filter(pk=stored.pk)
            .values("revoked")
            .first()
        )
        if row is None or row["revoked"] is None:
            return  # still this request's to rotate
        grace = dt.timedelta(seconds=oauth2_settings.REFRESH_TOKEN_GRACE_PERIOD_SECONDS)
        if row["revoked"] <= timezone.now() - grace:
            self._refuse_refresh(
                request, "the refresh token was used by a concurrent request", RefreshRaceError
            )
        previous = (
            get_access_token_model()
            .objects.select_related("mtls_binding")
            .filter(source_refresh_token_id=stored.pk)
            .first()
        )
        previous_binding = binding_of(previous)
        certificate = self._presented_certificate(request)
        if previous_binding is not None and not thumbprints_match(
            previous_binding.x5t_s256, certificate.x5t_s256 if certificate else None
        ):
            self._refuse_refresh(
                request,
                "within the grace period the refresh needs the same client certificate",
                RefreshRaceError,
            )

    def _save_bearer_token(self, token: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The second check of the invariant, before anything is written (the token endpoint
        # catches this OAuth2Error itself: it carries its own JSON headers).
        self._enforce_registration(request, error=UnauthenticatedClientError)
        self._prepare(request)
        self._refuse_concurrent_refresh(token, request)
        result = super()._save_bearer_token(token, request, *args, **kwargs)  # type: ignore[misc]
        stored = explicit(request, "refresh_token_instance")
        if (
            token.get("refresh_token")
            and not self.rotate_refresh_token(request)  # type: ignore[attr-defined]
            and isinstance(stored, get_refresh_token_model())
            and stored.access_token_id
        ):
            # DOT refreshed the access token in place: rebind it to this request's certificate.
            x5t = request_state(request).bind_to
            if x5t:
                AccessTokenBinding.objects.update_or_create(
                    access_token_id=stored.access_token_id, defaults={"x5t_s256": x5t}
                )
                RefreshTokenBinding.objects.get_or_create(
                    refresh_token=stored,
                    defaults={"x5t_s256": self._refresh_token_thumbprint(request, x5t)},
                )
            else:
                AccessTokenBinding.objects.filter(access_token_id=stored.access_token_id).delete()
        return result

    # --- enforcement at protected resources (RFC 8705 §3) ---------------------------------------

    def _load_access_token(self, token: str) -> Any:
        # The binding comes in the same query as the token: no extra query to enforce it.
        checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        return (
            get_access_token_model()
            .objects.select_related("application", "user", "mtls_binding")
            .filter(token_checksum=checksum)
            .first()
        )

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        # DOT and its DRF class read ``oauth2_error`` with a fallback to the query string.
        set_default(request, "oauth2_error", {})
        set_default(request, "access_token", None)
        if not super().validate_bearer_token(token, scopes, request):
            return False
        binding = binding_of(request.access_token)
        if binding is None and not mtls_settings.REQUIRE_BOUND_TOKENS:
            return True
        request_state(request).certificate_dependent = True
        certificate, problem = get_client_certificate(request.headers)
        if binding is None:
            description = "a certificate-bound access token is required"
        elif thumbprints_match(binding.x5t_s256, certificate.x5t_s256 if certificate else None):
            return True
        elif certificate is None:
            description = (
                "the access token is certificate-bound; no client certificate was presented"
            )
        else:
            description = "the access token is bound to another client certificate"
        log.warning(
            "bound token refused: client_id=%s presented=%s intake=%s detail=%s",
            getattr(request.access_token.application, "client_id", "-"),
            certificate.x5t_s256 if certificate else "-",
            problem or "-",
            description,
        )
        request.oauth2_error = {"error": "invalid_token", "error_description": description}
        request_state(request).binding_refused = True
        request.access_token = None
        request.user = None
        request.client = None
        return False

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
            "client authentication refused: client_id=%s reason=%s intake=%s x5t#S256=%s "
            "detail=%s",
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


def binding_of(token: Any) -> Any:
    """A token's binding row, or ``None`` (no query when it was ``select_related``)."""
    if token is None:
        return None
    try:
        return token.mtls_binding
    except ObjectDoesNotExist:
        return None


def _flagged(client: Any) -> bool:
    mtls = mtls_client_of(client)
    return bool(mtls is not None and mtls.tls_client_certificate_bound_access_tokens)


def _mtls(client: Any) -> bool:
    mtls = mtls_client_of(client)
    return bool(mtls is not None and mtls.is_mtls)


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


class MTLSOAuth2Validator(MTLSValidatorMixin, OAuth2Validator):  # type: ignore[misc]
    """DOT's validator with RFC 8705 client authentication."""
