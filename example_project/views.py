"""Views of the example project."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from django_oauth_mtls import get_client_certificate
from django_oauth_mtls.binding import x5t_s256_of
from django_oauth_mtls.contrib.rest_framework import (
    MTLSOAuth2Authentication,
    TokenIsCertificateBound,
)


@require_GET
def certificate(request: HttpRequest) -> JsonResponse:
    """What the app saw: the quickest way to debug a proxy configuration (no authentication)."""
    cert, problem = get_client_certificate(request)
    response = JsonResponse(
        {
            "x5t#S256": cert.x5t_s256 if cert else None,
            "subject": cert.subject if cert else None,
            "problem": problem,
        }
    )
    # RFC 9440 §2.4: a response that depends on Client-Cert must not be cached.
    response["Cache-Control"] = "no-store"
    return response


class WhoAmI(APIView):
    """Answers only to a certificate-bound token presented with its certificate, opaque or JWT.

    A JWT access token answers from its claims: no query for a client's own token (a user's
    token loads the user for ``username``).
    """

    authentication_classes = [MTLSOAuth2Authentication]
    permission_classes = [TokenIsCertificateBound]

    def get(self, request: Request) -> Response:
        token = request.auth
        client_id = getattr(token, "client_id", None)  # a JWTAccessToken's claim
        if not isinstance(client_id, str):
            client_id = token.application.client_id if token.application else None
        data = {"client_id": client_id, "x5t#S256": x5t_s256_of(token)}
        user = request.user
        if user is not None and user.is_authenticated:
            data["username"] = user.get_username()
        response = Response(data)
        response["Cache-Control"] = "no-store"
        return response
