"""Views of the example project."""

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from django_oauth_mtls import get_client_certificate


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
