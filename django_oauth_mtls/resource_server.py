"""Remote resource servers: introspection with ``cnf`` and ``tls_client_auth`` (RFC 8705 §3.2).

An RS that does not share the authorization server's database runs DOT in resource-server
mode (``OAUTH2_PROVIDER["RESOURCE_SERVER_INTROSPECTION_URL"]``): on a local miss it asks the AS
(RFC 7662) and caches the answer as a local ``AccessToken`` row. DOT 3.4.1 drops the answer's
``cnf``, so a remote RS would accept a stolen bound token; and it only introspects with a bearer
token or a client secret. ``ResourceServerMixin`` fixes both:

* the introspected ``cnf["x5t#S256"]`` is stored with the cached token (an
  ``AccessTokenBinding`` row), so the binding is enforced by ``MTLSValidatorMixin`` exactly as
  for a local token, on the first request and on every cached one (R8705-3.2-2);
* a ``cnf`` this module does not understand (another member such as ``jkt``, a ``cnf`` that is
  not an object, an ``x5t#S256`` that is not a canonical 43-character base64url SHA-256) refuses
  the token with ``invalid_token`` and nothing is cached: it is never taken for an unbound
  token (RFC 8705 §7.2, RFC 7800);
* with ``OAUTH2_MTLS["RESOURCE_SERVER_CERTIFICATE"]`` the RS authenticates to the introspection
  endpoint with its own certificate (``tls_client_auth``, RFC 8705 §2): ``token`` and
  ``client_id`` in the body, no ``Authorization`` header; the certificate alone is enough to
  introspect. ``RESOURCE_SERVER_CA_BUNDLE`` verifies the AS's TLS certificate.

The cached row lives until the token's ``exp`` but never longer than DOT's
``RESOURCE_SERVER_TOKEN_CACHING_SECONDS`` (DOT's own semantics): a token revoked at the AS keeps
working at the RS until its cached row expires, as DOT documents.

``_get_token_from_authentication_server`` and the RS half of ``validate_bearer_token`` are
faithful copies of DOT 3.4.1's (underscore-private API; the package pins DOT ``<3.5``), changed
only where RFC 8705 needs it. Outside resource-server mode nothing here runs: DOT's own
``validate_bearer_token`` is called unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import logging
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from django.conf import settings
from django.db import router, transaction
from django.utils import timezone
from django.utils.timezone import make_aware
from django.utils.translation import gettext_lazy as _
from oauth2_provider.models import get_access_token_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.utils import get_timezone

from .binding import UnsupportedConfirmation, confirmation_thumbprint
from .conf import mtls_settings
from .models import AccessTokenBinding
from .state import request_state

log = logging.getLogger("django_oauth_mtls.resource_server")

__all__ = [
    "INTROSPECTION_TIMEOUT_SECONDS",
    "ResourceServerMixin",
    "UnsupportedConfirmation",
    "confirmation_thumbprint",
    "resource_server_client_id",
]

#: Seconds the RS waits for the introspection endpoint (DOT sets no timeout at all).
INTROSPECTION_TIMEOUT_SECONDS = 5.0

#: What the RS says when it refuses a token for its ``cnf`` (RFC 6750 §3.1 ``invalid_token``).
UNSUPPORTED_CNF_DESCRIPTION = (
    "the access token is bound with a confirmation method not supported here"
)


def resource_server_client_id() -> str | None:
    """The RS's own ``client_id`` at the AS, sent with ``tls_client_auth`` (RFC 8705 §2)."""
    return mtls_settings.RESOURCE_SERVER_CLIENT_ID


def _invalid_token(request: Any, description: str) -> None:
    if request is not None:
        request.oauth2_error = OrderedDict(
            [("error", "invalid_token"), ("error_description", description)]
        )
        request_state(request).introspection_refused = True


class ResourceServerMixin:
    """DOT's resource-server mode with ``cnf`` and certificate authentication to the AS.

    Compose it *behind* ``MTLSValidatorMixin`` (which enforces the stored binding)::

        class MyValidator(MTLSValidatorMixin, ResourceServerMixin, OAuth2Validator): ...
    """

    #: Seconds to wait for the introspection endpoint; a subclass may change it.
    introspection_timeout: float = INTROSPECTION_TIMEOUT_SECONDS

    def validate_bearer_token(self, token: str, scopes: Any, request: Any) -> bool:
        introspection_url = oauth2_settings.RESOURCE_SERVER_INTROSPECTION_URL
        if not introspection_url:
            return super().validate_bearer_token(token, scopes, request)  # type: ignore[misc,no-any-return]
        # DOT 3.4.1's validate_bearer_token; the certificate alone is enough to introspect.
        if not token:
            return False
        introspection_token = oauth2_settings.RESOURCE_SERVER_AUTH_TOKEN
        introspection_credentials = oauth2_settings.RESOURCE_SERVER_INTROSPECTION_CREDENTIALS

        access_token = self._load_access_token(token)  # type: ignore[attr-defined]

        # if there is no token or it's invalid then introspect the token
        if (not access_token or not access_token.is_valid(scopes)) and (
            introspection_token
            or introspection_credentials
            or mtls_settings.RESOURCE_SERVER_CERTIFICATE
        ):
            access_token = self._get_token_from_authentication_server(
                token,
                introspection_url,
                introspection_token,
                introspection_credentials,
                request=request,
            )
            if access_token is None and request_state(request).introspection_refused:
                return False  # request.oauth2_error says why

        if access_token and access_token.is_valid(scopes):
            # RFC 8707: only resource-restricted tokens are audience-checked.
            if access_token.resource:
                request_uri = (getattr(request, "uri", None) or "").split("?")[0]
                if not access_token.allows_audience(request_uri):
                    request.oauth2_error = OrderedDict(
                        [
                            ("error", "invalid_token"),
                            (
                                "error_description",
                                _("The access token is not valid for this resource."),
                            ),
                        ]
                    )
                    return False
            application = access_token.application
            if application is not None and not application.is_usable(request):
                request.oauth2_error = OrderedDict(
                    [
                        ("error", "invalid_token"),
                        ("error_description", _("The access token is invalid.")),
                    ]
                )
                return False
            request.client = access_token.application
            request.user = access_token.user
            request.scopes = list(access_token.scopes)
            request.access_token = access_token
            return True
        self._set_oauth2_error_on_request(request, access_token, scopes)  # type: ignore[attr-defined]
        return False

    def _get_token_from_authentication_server(
        self,
        token: str,
        introspection_url: str,
        introspection_token: str | None,
        introspection_credentials: Any,
        request: Any = None,
    ) -> Any:
        """DOT 3.4.1's introspection call, plus ``tls_client_auth`` and ``cnf``.

        Returns the cached ``AccessToken`` (its binding row written or removed in the same
        transaction) or ``None``. With ``request``, a refusal for ``cnf`` sets
        ``request.oauth2_error`` (``invalid_token``); DOT's own callers pass no request and get
        ``None``, which DOT reports as an invalid token.
        """
        certificate = mtls_settings.RESOURCE_SERVER_CERTIFICATE
        data = {"token": token}
        headers = None
        if certificate:
            # RFC 8705 §2: the certificate authenticates; client_id is REQUIRED in the body. A
            # secret or bearer token alongside would be a second method (RFC 6749 §2.3).
            client_id = resource_server_client_id()
            if not client_id:
                log.error(
                    "Introspection: RESOURCE_SERVER_CERTIFICATE is set but "
                    "RESOURCE_SERVER_CLIENT_ID is not; tls_client_auth needs the RS's client_id"
                )
                return None
            data["client_id"] = client_id
        elif introspection_token:
            headers = {"Authorization": f"Bearer {introspection_token}"}
        elif introspection_credentials:
            basic = base64.b64encode(
                introspection_credentials[0].encode("utf-8")
                + b":"
                + introspection_credentials[1].encode("utf-8")
            )
            headers = {"Authorization": f"Basic {basic.decode('utf-8')}"}

        try:
            response = requests.post(
                introspection_url,
                data=data,
                headers=headers,
                cert=certificate,
                verify=mtls_settings.RESOURCE_SERVER_CA_BUNDLE or True,
                timeout=self.introspection_timeout,
            )
        except requests.exceptions.RequestException as exc:
            log.error("Introspection: failed POST to %r: %s", introspection_url, exc)
            return None

        if response.status_code != http.client.OK:
            log.error(
                "Introspection: no valid response from the authorization server: status %s (%s)",
                response.status_code,
                response.reason,
            )
            return None

        try:
            content = response.json()
        except ValueError:
            log.error("Introspection: the response is not JSON")
            return None

        if not (isinstance(content, dict) and content.get("active") is True):
            return None

        token_checksum = hashlib.sha256(token.encode("utf-8")).hexdigest()
        AccessToken = get_access_token_model()
        try:
            x5t_s256 = confirmation_thumbprint(content)
        except UnsupportedConfirmation as exc:
            # Never cached, and a row cached earlier for this token goes (P18).
            AccessToken.objects.filter(
                token_checksum=token_checksum, application__isnull=True
            ).delete()
            log.warning("Introspection: token refused: %s", exc)
            _invalid_token(request, UNSUPPORTED_CNF_DESCRIPTION)
            return None

        max_caching_time = datetime.now(tz=UTC) + timedelta(
            seconds=oauth2_settings.RESOURCE_SERVER_TOKEN_CACHING_SECONDS
        )
        if "exp" in content:
            try:
                expires = datetime.fromtimestamp(content["exp"], tz=UTC)
            except (TypeError, ValueError, OverflowError, OSError):
                log.warning("Introspection: token refused: malformed exp %r", content["exp"])
                return None
            exp_time_zone = oauth2_settings.AUTHENTICATION_SERVER_EXP_TIME_ZONE
            if exp_time_zone != "UTC":
                # DOT's deprecated workaround: the exp wall-clock time in another time zone.
                expires = make_aware(
                    expires.replace(tzinfo=None), timezone=get_timezone(exp_time_zone)
                )
            expires = min(expires, max_caching_time)
        else:
            expires = max_caching_time
        if not settings.USE_TZ:
            expires = timezone.make_naive(expires, expires.tzinfo)

        # RFC 8707: 'aud' is a security restriction; a malformed value fails closed.
        aud = content.get("aud", [])
        if isinstance(aud, str):
            aud = [aud]
        elif not isinstance(aud, list) or not all(isinstance(entry, str) for entry in aud):
            log.warning("Introspection: token refused: malformed aud %r", aud)
            return None

        user = self.get_or_create_user_from_content(content) if "username" in content else None  # type: ignore[attr-defined]
        # RFC 9700 hashed-at-rest storage: the cache is looked up by checksum only.
        stored_token = "" if oauth2_settings.COMPLIANT_BCP_RFC9700_TOKEN_STORAGE else token
        with transaction.atomic(using=router.db_for_write(AccessToken)):
            access_token, _created = AccessToken.objects.update_or_create(
                token_checksum=token_checksum,
                defaults={
                    "token": stored_token,
                    "user": user,
                    "application": None,
                    "scope": content.get("scope", ""),
                    "expires": expires,
                    "resource": aud,
                },
            )
            if x5t_s256 is not None:
                binding, _created = AccessTokenBinding.objects.update_or_create(
                    access_token=access_token, defaults={"x5t_s256": x5t_s256}
                )
                access_token.mtls_binding = binding  # enforced without another query
            else:
                # Unbound now: a binding cached with an earlier answer must not linger.
                AccessTokenBinding.objects.filter(access_token=access_token).delete()
        return access_token
