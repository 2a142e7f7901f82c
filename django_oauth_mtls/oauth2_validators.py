"""The OAuthLib request validator with RFC 8705: client authentication (§2) and
certificate-bound tokens (§3, §4, §6.3).

``MTLSOAuth2Validator`` is DOT's ``OAuth2Validator`` with ``MTLSValidatorMixin``; projects that
already subclass DOT's validator add the mixin in front of their own class::

    class MyValidator(MTLSValidatorMixin, MyExistingValidator): ...

A class placed in front of the mixin is outside the client-authentication guarantee (see
``validator_client_auth``). Client authentication lives in ``validator_client_auth``; this module
decides and stores bindings and enforces them at protected resources. An application without
an mTLS registration is handled by DOT, unchanged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import Any

from django.utils import timezone
from oauth2_provider.models import get_access_token_model, get_refresh_token_model
from oauth2_provider.oauth2_validators import OAuth2Validator
from oauth2_provider.settings import oauth2_settings
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError

from . import jwt_issue
from .access_tokens import create_access_token, dot_creates_access_tokens
from .bearer import resource_config
from .binding import thumbprints_match, x5t_s256_of
from .certificates import ClientCertificate
from .conf import mtls_settings
from .fapi import fapi2_active
from .intake import get_client_certificate
from .models import AccessTokenBinding, RefreshTokenBinding, mtls_client_of
from .prepared import PreparedInsert, PreparedLookup, objects_manager
from .resource_server import ResourceServerMixin
from .state import explicit, note_issued, oauth2_error_of, request_state, set_default
from .validator_client_auth import (
    CONFLICTING_PARAMETERS,
    ClientAuthenticationMixin,
    RefreshRaceError,
    UnauthenticatedClientError,
)
from .validator_device import DeviceCodeMixin
from .validator_jwt import JWTValidatorMixin, refuse_access_token, token_client_id

__all__ = [
    "CONFLICTING_PARAMETERS",
    "MTLSOAuth2Validator",
    "MTLSValidatorMixin",
    "RefreshRaceError",
    "UnauthenticatedClientError",
    "mtls_client_of",
]

log = logging.getLogger("django_oauth_mtls.client_auth")

#: A presented access token with what enforcing it needs (application, user, binding) in one
#: query, compiled once per connection.
ACCESS_TOKEN_WITH_BINDING = PreparedLookup(
    lambda model, checksum: (
        objects_manager(model)
        .select_related("application", "user", "mtls_binding")
        .filter(token_checksum=checksum)
    )
)
#: The binding of a newly issued token (one INSERT, no ``Model.save``).
NEW_ACCESS_TOKEN_BINDING = PreparedInsert(AccessTokenBinding, ("access_token", "x5t_s256"))


class MTLSValidatorMixin(
    ClientAuthenticationMixin, JWTValidatorMixin, ResourceServerMixin, DeviceCodeMixin
):
    """RFC 8705 on top of any DOT ``OAuth2Validator``: client authentication (§2, from
    ``ClientAuthenticationMixin``), certificate-bound tokens (§3, §4) and remote resource
    servers (§3.2, from ``ResourceServerMixin``)."""

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
        fapi2 = fapi2_active()  # FAPI 2.0 §5.3.2.1: every access token bound, whatever the flag
        flagged = fapi2 or _flagged(request.client)
        if certificate is not None and (flagged or grant_bound or mtls_settings.BIND_ALL_TOKENS):
            request_state(request).bind_to = certificate.x5t_s256
            return
        request_state(request).bind_to = None
        if (
            flagged
            and certificate is None
            and (fapi2 or mtls_settings.BOUND_TOKEN_WITHOUT_CERTIFICATE == "error")
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
        if valid:  # token-endpoint grants only: JWT_RESOURCES, and may mint a JWT (RFC 9068)
            jwt_issue.note_token_request(request)
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
        if fapi2_active() and response_type != "code":
            return False  # FAPI 2.0 §5.3.2.2: response_type code only (no hybrid either)
        front_channel_token = "token" in (response_type or "").split()
        if front_channel_token and (_flagged(client) or _mtls_registered(client)):
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
            previous_x5t = x5t_s256_of(previous)
            if previous_x5t is not None and not thumbprints_match(previous_x5t, presented):
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
        # RFC 9068: a jwt-format token is minted here, after DOT settled expiry and resource.
        with jwt_issue.minted(request, token, expires) as expires:
            # DOT's own method would run: the same row, by one prepared INSERT.
            if dot_creates_access_tokens(type(self), MTLSValidatorMixin):
                access_token = create_access_token(
                    self, expires, request, token, source_refresh_token
                )
            else:
                access_token = super()._create_access_token(  # type: ignore[misc]
                    expires, request, token, source_refresh_token=source_refresh_token
                )
        x5t = request_state(request).bind_to
        if x5t:
            # Same transaction as the token (DOT's save_bearer_token is atomic).
            binding = NEW_ACCESS_TOKEN_BINDING.insert(access_token_id=access_token.pk, x5t_s256=x5t)
            access_token.mtls_binding = binding  # cached both ways, as objects.create() did
        note_issued(access_token)  # the token view sends app_authorized with this object
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
        previous_x5t = x5t_s256_of(previous)
        certificate = self._presented_certificate(request)
        if previous_x5t is not None and not thumbprints_match(
            previous_x5t, certificate.x5t_s256 if certificate else None
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
            # DOT refreshed the access token in place: a new JWS (jwt format), rebound to this
            # request's certificate.
            jwt_issue.reissue_in_place(request, token, stored.access_token_id)
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
        return ACCESS_TOKEN_WITH_BINDING.first(get_access_token_model(), checksum)

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        """DOT's check, or the jwt modes' (``JWTValidatorMixin``), then the binding against the
        presented certificate (RFC 8705 §3). Every refusal of a token is reported once
        (``refuse_access_token``: log line and ``access_token_refused``)."""
        # DOT and its DRF class read ``oauth2_error`` with a fallback to the query string.
        set_default(request, "oauth2_error", {})
        set_default(request, "access_token", None)
        if not super().validate_bearer_token(token, scopes, request):
            self._report_stored_refusal(token, request)
            return False
        access_token = request.access_token
        bound = x5t_s256_of(access_token)
        if bound is None and not resource_config().require_bound:
            return True
        request_state(request).certificate_dependent = True
        certificate, _problem = get_client_certificate(request.headers)
        if bound is None:
            reason = "unbound_refused"
        elif thumbprints_match(bound, certificate.x5t_s256 if certificate else None):
            return True
        elif certificate is None:
            reason = "certificate_missing"
        else:
            reason = "certificate_mismatch"
        refuse_access_token(
            type(self),
            request,
            reason,
            client_id=token_client_id(access_token),
            detail="bound token refused",
        )
        request_state(request).binding_refused = True
        request.access_token = None
        request.user = None
        request.client = None
        return False

    def _report_stored_refusal(self, token: str, request: Any) -> None:
        """``token_invalid`` for a token the database or introspection refused (unknown,
        expired, revoked); nothing for no token or for ``insufficient_scope``."""
        if not token or request_state(request).refusal_reason is not None:
            return  # no token presented, or refused and reported by the jwt modes
        error = oauth2_error_of(request) or {}
        if error.get("error", "invalid_token") != "invalid_token":
            return  # insufficient_scope: the token itself was fine
        refuse_access_token(type(self), request, "token_invalid", keep_description=True)


def _flagged(client: Any) -> bool:
    mtls = mtls_client_of(client)
    return bool(mtls is not None and mtls.tls_client_certificate_bound_access_tokens)


def _mtls_registered(client: Any) -> bool:
    mtls = mtls_client_of(client)
    return bool(mtls is not None and mtls.is_mtls)


class MTLSOAuth2Validator(MTLSValidatorMixin, OAuth2Validator):  # type: ignore[misc]
    """DOT's validator with RFC 8705 client authentication."""
