"""RFC 8628 device-code polling in the OAuthLib validator: ``validate_device_code``.

oauthlib 4 asks the validator, at the token endpoint, for the status of the ``device_code`` the
client polls with (``RequestValidator.validate_device_code``); DOT 3.4.1 does not implement it
(``NotImplementedError``, a 500) and instead loads the grant in a pre-token hook by
``device_code`` alone, before the client is authenticated and without comparing its client.

``DeviceCodeMixin.validate_device_code`` runs after client authentication (oauthlib calls
``validate_client_authentication`` and ``validate_grant_type`` first, so the mTLS invariant and
the binding decision of ``MTLSValidatorMixin`` already applied). It answers:

* ``None`` (``invalid_grant``) for an unknown ``device_code``, or one issued to another client
  (RFC 8628 §3.4: the grant belongs to the client that requested it);
* ``access_denied``, ``expired_token`` (past ``expires``, or already redeemed) and
  ``authorization_pending`` (RFC 8628 §3.5);
* ``authorized``, with ``request.user`` and ``request.scopes`` from the stored grant.

DOT stores no poll time it could compare (``last_checked`` moves on every save), so
``slow_down`` is never answered. An authorized ``device_code`` gives one token response: the grant
is consumed (set to ``expired``) in a transaction around the token's, so a replay or a concurrent
redemption gets ``invalid_grant`` or ``expired_token`` instead of a second token.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import router, transaction
from oauth2_provider.models import get_device_grant_model
from oauthlib.oauth2.rfc6749.errors import InvalidGrantError

from .exceptions import TokenEndpointHeaders
from .state import explicit

log = logging.getLogger("django_oauth_mtls.client_auth")

#: ``DeviceCodeGrant.DEVICE_CODE_*`` (oauthlib 4): the statuses ``validate_device_code`` returns.
DEVICE_CODE_AUTHORIZED = "authorized"
DEVICE_CODE_PENDING = "authorization_pending"
DEVICE_CODE_EXPIRED = "expired_token"
DEVICE_CODE_DENIED = "access_denied"

#: Instance-``__dict__`` key of the device grant validated in this request (never a parameter).
GRANT_KEY = "_django_oauth_mtls_device_grant"


class DeviceCodeRedeemedError(TokenEndpointHeaders, InvalidGrantError):  # type: ignore[misc]
    """``invalid_grant`` raised while the tokens are saved: a concurrent request redeemed the
    same ``device_code``."""


class DeviceCodeMixin:
    """RFC 8628 §3.4, §3.5 on top of any DOT ``OAuth2Validator``."""

    def validate_device_code(
        self, client_id: str | None, code: str, request: Any, *args: Any, **kwargs: Any
    ) -> str | None:
        client = explicit(request, "client")
        model = get_device_grant_model()
        grant = (
            model.objects.select_related("user").filter(device_code=code).first()
            if isinstance(code, str)
            else None
        )
        authenticated_id = getattr(client, "client_id", None)
        if grant is None or authenticated_id is None or grant.client_id != authenticated_id:
            if grant is not None:
                log.warning(
                    "device_code refused: client_id=%s reason=another_client",
                    authenticated_id or "-",
                )
            return None
        if client_id and client_id != authenticated_id:
            return None
        if grant.status == model.DENIED:
            return DEVICE_CODE_DENIED
        if grant.is_expired():  # past ``expires``: DOT records it as expired
            return DEVICE_CODE_EXPIRED
        if grant.status == model.AUTHORIZATION_PENDING:
            return DEVICE_CODE_PENDING
        if grant.status != model.AUTHORIZED or grant.user is None:
            return None
        request.user = grant.user
        request.scopes = grant.scope.split() if grant.scope else []
        vars(request)[GRANT_KEY] = grant.pk
        return DEVICE_CODE_AUTHORIZED

    def save_bearer_token(self, token: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        # The authorized grant gives this one token response: consumed in a transaction around
        # DOT's (a refusal while the tokens are saved rolls the consumption back).
        grant_pk = explicit(request, GRANT_KEY)
        if grant_pk is None:
            return super().save_bearer_token(token, request, *args, **kwargs)  # type: ignore[misc]
        model = get_device_grant_model()
        with transaction.atomic(using=router.db_for_write(model)):
            consumed = model.objects.filter(pk=grant_pk, status=model.AUTHORIZED).update(
                status=model.EXPIRED
            )
            if not consumed:
                raise DeviceCodeRedeemedError(
                    description="the device_code was redeemed by a concurrent request",
                    request=request,
                )
            return super().save_bearer_token(token, request, *args, **kwargs)  # type: ignore[misc]
