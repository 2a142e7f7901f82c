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
