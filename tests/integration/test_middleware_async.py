"""``ClientCertificateMiddleware`` is async-capable (issue #17): under ASGI Django calls it in the
event loop, and it sets the same attributes and headers as under WSGI."""

from __future__ import annotations

import asyncio

import pytest
from django.http import HttpResponse
from django.test import AsyncRequestFactory

from django_oauth_mtls.middleware import NO_STORE_KEY, ClientCertificateMiddleware


def test_flags_and_coroutine_marker():
    async def get_response(request):
        return HttpResponse()

    assert ClientCertificateMiddleware.sync_capable and ClientCertificateMiddleware.async_capable
    assert asyncio.iscoroutinefunction(ClientCertificateMiddleware(get_response))
    assert not asyncio.iscoroutinefunction(
        ClientCertificateMiddleware(lambda request: HttpResponse())
    )


@pytest.mark.parametrize("no_store", [False, True])
def test_async_path_attaches_the_certificate(settings, client_cert, no_store):
    settings.OAUTH2_MTLS = {"CERTIFICATE_SOURCE": "nginx", "TRUSTED_PROXIES": ["127.0.0.1/32"]}
    seen = {}

    async def get_response(request):
        seen["certificate"] = request.client_certificate
        seen["problem"] = request.client_certificate_problem
        if no_store:
            request.META[NO_STORE_KEY] = True
        return HttpResponse()

    request = AsyncRequestFactory().get("/", headers={"X-SSL-Client-Cert": client_cert.nginx()})
    response = asyncio.run(ClientCertificateMiddleware(get_response)(request))
    assert seen["certificate"].x5t_s256 == client_cert.x5t_s256 and seen["problem"] is None
    assert ("no-store" in response.get("Cache-Control", "")) is no_store


def test_async_client_through_the_stack(async_client, client_cert, settings):
    """Django's ASGI handler with an async-capable chain: the certificate still arrives."""
    settings.OAUTH2_MTLS = {"CERTIFICATE_SOURCE": "nginx", "TRUSTED_PROXIES": ["127.0.0.1/32"]}

    async def call():
        return await async_client.get(
            "/api/certificate/", headers={"X-SSL-Client-Cert": client_cert.nginx()}
        )

    response = asyncio.run(call())
    assert response.status_code == 200
    assert response.json()["x5t#S256"] == client_cert.x5t_s256


@pytest.mark.parametrize(
    ("own", "expected"),
    [
        (None, "no-store"),
        ("max-age=60", "max-age=60, no-store"),
        ("public, max-age=3600", "public, max-age=3600, no-store"),
        ("no-store", "no-store"),
        ("private, no-cache", "private, no-cache, no-store"),
    ],
)
def test_no_store_is_what_patch_cache_control_writes(settings, client_cert, own, expected):
    """RFC 9440 §2.4: a response chosen by the certificate gets ``no-store``; a view's own
    ``Cache-Control`` directives are kept (issue #16 writes the header directly when the view
    set none, which is what ``patch_cache_control`` writes)."""
    from django.test import RequestFactory
    from django.utils.cache import patch_cache_control

    settings.OAUTH2_MTLS = {"CERTIFICATE_SOURCE": "nginx", "TRUSTED_PROXIES": ["127.0.0.1/32"]}

    def make_response():
        response = HttpResponse()
        if own is not None:
            response["cache-control"] = own  # header names are case-insensitive
        return response

    def get_response(request):
        request.META[NO_STORE_KEY] = True
        return make_response()

    request = RequestFactory().get("/", headers={"X-SSL-Client-Cert": client_cert.nginx()})
    response = ClientCertificateMiddleware(get_response)(request)
    reference = make_response()
    patch_cache_control(reference, no_store=True)
    assert response["Cache-Control"] == reference["Cache-Control"] == expected
