"""Attaches the request's client certificate once per request (RFC 8705 §2, §3)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from .intake import get_client_certificate


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
        return self.get_response(request)
