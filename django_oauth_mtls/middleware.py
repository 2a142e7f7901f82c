"""Attaches the request's client certificate once per request (RFC 8705 §2, §3).

Sync and async capable (Django's middleware flags): under ASGI Django calls it in the event
loop instead of a thread. The intake itself never blocks (it parses a header), so both paths
run the same code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
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

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        _attach(request)
        response: HttpResponseBase = self.get_response(request)
        _finish(request, response)
        return response

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        _attach(request)
        get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]] = self.get_response
        response = await get_response(request)
        _finish(request, response)
        return response


def _attach(request: HttpRequest) -> None:
    certificate, problem = get_client_certificate(request)
    request.client_certificate = certificate  # type: ignore[attr-defined]
    request.client_certificate_problem = problem  # type: ignore[attr-defined]


def _finish(request: HttpRequest, response: HttpResponseBase) -> None:
    if request.META.get(NO_STORE_KEY):
        # RFC 9440 §2.4: a response selected by the client certificate must not be cached.
        if "Cache-Control" in response:
            patch_cache_control(response, no_store=True)  # keeps the view's own directives
        else:
            response["Cache-Control"] = "no-store"  # what patch_cache_control writes, parsed once
