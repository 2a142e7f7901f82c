"""Attaches the request's client certificate once per request (RFC 8705 §2, §3)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import patch_cache_control

from .intake import get_client_certificate

#: Set in ``request.META`` by the resource-side classes (see ``resource.NO_STORE_KEY``).
NO_STORE_KEY = "django_oauth_mtls.no_store"


class ClientCertificateMiddleware:
    """Sets ``request.client_certificate`` and ``request.client_certificate_problem``.

    Eager: the intake runs before the view, so every later consumer (views, DRF classes, the
    OAuthLib validator through ``META``) sees the same, already logged answer.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        certificate, problem = get_client_certificate(request)
        request.client_certificate = certificate  # type: ignore[attr-defined]
        request.client_certificate_problem = problem  # type: ignore[attr-defined]
        response = self.get_response(request)
        if request.META.get(NO_STORE_KEY):
            # RFC 9440 §2.4: a response selected by the client certificate must not be cached.
            patch_cache_control(response, no_store=True)
        return response
