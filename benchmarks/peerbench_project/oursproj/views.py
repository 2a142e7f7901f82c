from __future__ import annotations

from oauth2_provider.contrib.rest_framework import OAuth2Authentication, TokenHasScope
from rest_framework.response import Response
from rest_framework.views import APIView

from django_oauth_mtls.contrib.rest_framework import MTLSOAuth2Authentication
from django_oauth_mtls.validator_jwt import token_client_id


class ResourceView(APIView):
    """peerbench's resource (dot/benchproj/views.py) with our authentication: a bound token is
    accepted only with the certificate it is bound to."""

    authentication_classes = [MTLSOAuth2Authentication]
    permission_classes = [TokenHasScope]
    required_scopes = ["read"]

    def get(self, request):
        return Response({"ok": True, "client_id": request.auth.application.client_id})


class DotResourceView(ResourceView):
    """The dot peer's view exactly (DOT's OAuth2Authentication), on the same server: the
    baseline for our GET with everything else equal."""

    authentication_classes = [OAuth2Authentication]


class JWTResourceView(ResourceView):
    """``ResourceView`` answering the same body from the token alone (P10, issue #15): the
    ``client_id`` claim of a JWT (``token_client_id``), where ``request.auth.application`` would
    load the application (one query) that a resource checking JWTs locally does not need."""

    def get(self, request):
        return Response({"ok": True, "client_id": token_client_id(request.auth)})
