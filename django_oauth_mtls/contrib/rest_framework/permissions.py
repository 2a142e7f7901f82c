"""``TokenIsCertificateBound``: only certificate-bound tokens (FAPI 1 Advanced §8.2)."""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from django_oauth_mtls.oauth2_validators import binding_of
from django_oauth_mtls.resource import UNBOUND_REFUSED, mark_certificate_dependent


class TokenIsCertificateBound(BasePermission):  # type: ignore[misc]
    """Refuses unbound tokens with 401 ``invalid_token`` (the binding itself is checked by the
    authentication class). Pair it with ``MTLSOAuth2Authentication``.

    It checks that the token is certificate-bound, **never its scope**: list it beside the
    view's scope permission, e.g.
    ``permission_classes = [TokenHasReadWriteScope, TokenIsCertificateBound]``.
    """

    def has_permission(self, request: Any, view: Any) -> bool:
        token = request.auth
        if token is None:
            return False  # DRF: 401 with the authenticator's challenge
        if binding_of(token) is None:
            mark_certificate_dependent(request._request)
            request.oauth2_error = dict(UNBOUND_REFUSED)
            raise AuthenticationFailed(UNBOUND_REFUSED["error_description"])
        return True
