"""URLs of the in-process benchmarks: the test URLs plus two benchmark-only views (P8).

``GET /bench/dot-stock/`` is what an API that uses DOT alone runs: DOT's
``OAuth2Authentication`` and ``TokenHasScope`` with DOT's own ``OAuth2Validator`` (a database
lookup of the token), whatever ``OAUTH2_VALIDATOR_CLASS`` says. P8 needs it because the project's
validator is ours, and in ``RESOURCE_SERVER_TOKEN_VALIDATION="jwt"`` mode ours refuses every
opaque token (``jwt_malformed``): DOT's ``/test/dot-plain/`` would answer 401 there.
``GET /bench/floor/`` is an empty DRF view (``P8-floor``).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import SuspiciousOperation
from django.urls import path
from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from tests.urls import urlpatterns as test_urlpatterns


def stock_oauthlib_core() -> Any:
    """``oauth2_provider.oauth2_backends.get_oauthlib_core()`` with DOT's ``OAuth2Validator`` in
    place of ``OAUTH2_VALIDATOR_CLASS``: built per request, as DOT builds it."""
    from oauth2_provider.oauth2_validators import OAuth2Validator
    from oauth2_provider.settings import oauth2_settings

    server = oauth2_settings.OAUTH2_SERVER_CLASS(OAuth2Validator(), **oauth2_settings.server_kwargs)
    return oauth2_settings.OAUTH2_BACKEND_CLASS(server)


class StockDOTAuthentication(OAuth2Authentication):  # type: ignore[misc]
    """DOT 3.4.1's ``OAuth2Authentication.authenticate``, line for line, with the core of
    ``stock_oauthlib_core()``."""

    def authenticate(self, request: Any) -> tuple[Any, Any] | None:
        if request is None:
            return None
        oauthlib_core = stock_oauthlib_core()
        try:
            valid, r = oauthlib_core.verify_request(request, scopes=[])
        except ValueError as error:
            if str(error) == "Invalid hex encoding in query string.":
                raise SuspiciousOperation(error) from error
            raise
        else:
            if valid:
                return r.user, r.access_token
        request.oauth2_error = getattr(r, "oauth2_error", {})
        return None


class DotStock(APIView):
    """The view of ``/test/dot-plain/`` with ``StockDOTAuthentication``."""

    authentication_classes = [StockDOTAuthentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["read"]

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


class Floor(APIView):
    """An empty DRF view, no authentication and no permission: in process, what peerbench's
    ``floor`` target serves (P8-floor, the record beside P10's goal)."""

    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []

    def get(self, request: Any) -> Response:
        return Response({"ok": True})


urlpatterns = [
    *test_urlpatterns,
    path("bench/dot-stock/", DotStock.as_view()),
    path("bench/floor/", Floor.as_view()),
]
