"""``TokenIsCertificateBound``: only certificate-bound tokens (FAPI 1 Advanced §8.2)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from django_oauth_mtls.binding import x5t_s256_of
from django_oauth_mtls.resource import UNBOUND_REFUSED, mark_certificate_dependent
from django_oauth_mtls.validator_jwt import refuse_access_token, token_client_id


class TokenIsCertificateBound(BasePermission):  # type: ignore[misc]
    """Refuses unbound tokens with 401 ``invalid_token`` (the binding itself is checked by the
    authentication class). Pair it with ``MTLSOAuth2Authentication``. Opaque and JWT access
    tokens alike (``binding.x5t_s256_of``); no query for either.

    It checks that the token is certificate-bound, **never its scope**: list it beside the
    view's scope permission, e.g.
    ``permission_classes = [TokenHasReadWriteScope, TokenIsCertificateBound]``.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        token = request.auth
        if token is None:
            return False  # DRF: 401 with the authenticator's challenge
        if x5t_s256_of(token) is None:
            mark_certificate_dependent(request._request)
            refuse_access_token(
                type(self), request._request, "unbound_refused", client_id=token_client_id(token)
            )
            request.oauth2_error = dict(UNBOUND_REFUSED)
            raise AuthenticationFailed(UNBOUND_REFUSED["error_description"])
        return True
