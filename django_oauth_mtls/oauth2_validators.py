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
import logging
from typing import Any
from urllib.parse import unquote_plus

from django.core.exceptions import ObjectDoesNotExist
from oauth2_provider.models import get_application_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauthlib.oauth2.rfc6749.errors import InvalidClientError

from . import signals
from .certificates import ClientCertificate
from .client_auth import authenticate_certificate
from .exceptions import ClientAuthError
from .intake import get_client_certificate
from .models import MTLSClient

log = logging.getLogger("django_oauth_mtls.client_auth")

#: Parameters that mean "another client authentication method" (RFC 6749 §2.3, RFC 7523 §2.2).
CONFLICTING_PARAMETERS = ("client_secret", "client_assertion", "client_assertion_type")

INTAKE_DESCRIPTIONS = {
    "source_disabled": "the server reads no client certificates",
    "absent": "no client certificate was presented",
    "untrusted_peer": "the certificate did not come through a trusted proxy",
}


def mtls_client_of(application: Any) -> MTLSClient | None:
    """The application's mTLS row, without a query when it was ``select_related``."""
    if application is None:
        return None
    try:
        return application.mtls  # type: ignore[no-any-return]
    except ObjectDoesNotExist:
        return None


class MTLSValidatorMixin:
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
        body_client_id = _param(request, "client_id")
        basic_client_id = self._basic_client_id(request)
        client_id = body_client_id or basic_client_id
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
                reason = INTAKE_DESCRIPTIONS.get(
                    problem or "", f"the client certificate was refused ({problem})"
                )
                raise ClientAuthError(
                    "no_certificate",
                    f"{mtls.token_endpoint_auth_method} requires a client certificate: {reason}",
                )
            authenticate_certificate(mtls, certificate)
        except ClientAuthError as error:
            self._refuse(request, client_id, error, certificate)
        request.client_certificate = certificate
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
        error: ClientAuthError,
        certificate: ClientCertificate | None,
    ) -> None:
        log.warning(
            "client authentication refused: client_id=%s reason=%s x5t#S256=%s detail=%s",
            client_id or "-",
            error.code,
            certificate.x5t_s256 if certificate else "-",
            error.description,
        )
        signals.client_authentication_failed.send(
            sender=type(self),
            request=request,
            client_id=client_id,
            reason=error.code,
            description=error.description,
            x5t_s256=certificate.x5t_s256 if certificate else None,
        )
        request.mtls_error_code = error.code
        raise InvalidClientError(description=error.description, request=request)


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
