"""Fixtures for DOT's real endpoints: applications with mTLS metadata, a trusted CA on disk."""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from oauth2_provider.models import get_application_model

from django_oauth_mtls import truststore
from django_oauth_mtls.models import MTLSClient
from django_oauth_mtls.validation import validation_cache
from tests import pki

Application = get_application_model()
TOKEN_URL = "/o/token/"
SECRET = "s3cret-value-for-tests"


@pytest.fixture
def ca_file(tmp_path: Path, root_ca: pki.Issued) -> str:
    path = tmp_path / "trusted-ca.pem"
    path.write_text(root_ca.pem)
    return str(path)


@pytest.fixture
def mtls_settings(settings: Any, ca_file: str) -> Any:
    """The nginx source from loopback, the test root CA trusted."""
    settings.OAUTH2_MTLS = {
        "CERTIFICATE_SOURCE": "nginx",
        "TRUSTED_PROXIES": ["127.0.0.1/32"],
        "TRUSTED_CA_CERTIFICATES": [ca_file],
    }
    truststore.reset()
    validation_cache.clear()
    yield settings
    truststore.reset()
    validation_cache.clear()


@pytest.fixture
def make_app(db: Any) -> Callable[..., Any]:
    def make(
        method: str | None = "tls_client_auth",
        *,
        client_type: str = "confidential",
        grant_type: str = "client-credentials",
        **mtls: Any,
    ) -> Any:
        app = Application.objects.create(
            name=f"app-{method}",
            client_type=client_type,
            authorization_grant_type=grant_type,
            client_secret=SECRET,
            hash_client_secret=False,
            redirect_uris="https://client.example/cb",
        )
        if method is not None:
            row = MTLSClient(application=app, token_endpoint_auth_method=method, **mtls)
            row.full_clean()
            row.save()
        return app

    return make


def token_request(
    client: Client,
    app: Any,
    cert: pki.Issued | None = None,
    *,
    remote: str = "127.0.0.1",
    send_client_id: bool = True,
    data: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    body = {"grant_type": "client_credentials", "scope": "read"}
    if send_client_id:
        body["client_id"] = app.client_id
    body.update(data or {})
    extra = dict(headers or {})
    if cert is not None:
        extra["HTTP_X_SSL_CLIENT_CERT"] = cert.nginx()
    return post_form(client, TOKEN_URL, body, REMOTE_ADDR=remote, **extra)


def post_form(client: Client, url: str, body: dict[str, str], **extra: Any) -> Any:
    """POST ``application/x-www-form-urlencoded``, as OAuth requires (RFC 6749 §4.4.2)."""
    return client.post(
        url, urlencode(body), content_type="application/x-www-form-urlencoded", **extra
    )


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def secret_basic(app: Any) -> dict[str, Any]:
    """``token_request`` keywords for ``client_secret_basic``: the application's id and
    ``SECRET`` in a Basic header, no ``client_id`` in the body."""
    return {
        "send_client_id": False,
        "headers": {"HTTP_AUTHORIZATION": basic(app.client_id, SECRET)},
    }


def introspect(client: Client, app: Any, cert: pki.Issued, token: str) -> dict[str, Any]:
    """RFC 7662 introspection of ``token`` by ``app``, authenticated with ``cert`` (nginx)."""
    return post_form(  # type: ignore[no-any-return]
        client,
        "/o/introspect/",
        {"token": token, "client_id": app.client_id},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_SSL_CLIENT_CERT=cert.nginx(),
    ).json()


def implicit_authorize(client: Client, app: Any, user: Any, **extra: str) -> Any:
    """``GET /o/authorize/`` with ``response_type=token`` (the front channel) for ``user``, the
    application pre-approved; ``extra`` adds query parameters."""
    app.skip_authorization = True
    app.save()
    client.force_login(user)
    query = {
        "response_type": "token",
        "client_id": app.client_id,
        "redirect_uri": "https://client.example/cb",
        "scope": "read",
    }
    return client.get("/o/authorize/", {**query, **extra})


def authorization_code(client: Client, app: Any, user: Any) -> tuple[str, str]:
    """Run DOT's real authorization endpoint (PKCE S256, consent skipped); (code, verifier)."""
    import hashlib
    import secrets
    from urllib.parse import parse_qs, urlsplit

    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    app.skip_authorization = True
    app.save()
    client.force_login(user)
    response = client.get(
        "/o/authorize/",
        {
            "response_type": "code",
            "client_id": app.client_id,
            "redirect_uri": "https://client.example/cb",
            "scope": "read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
    )
    client.logout()
    assert response.status_code == 302, response.content
    code = parse_qs(urlsplit(response["Location"]).query)["code"][0]
    return code, verifier


def code_grant(code: str, verifier: str) -> dict[str, str]:
    """The token request body that redeems ``authorization_code``'s (code, verifier)."""
    return {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": "https://client.example/cb",
    }


@pytest.fixture
def user(db: Any) -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user("alice", password="pw-alice")


def _forget_cached_cores() -> None:
    """DOT's views cache their OAuthlibCore (and so the validator) per class."""
    from oauth2_provider.views.mixins import OAuthLibMixin

    pending = [OAuthLibMixin]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if "_oauthlib_core" in vars(cls):
            delattr(cls, "_oauthlib_core")


@pytest.fixture
def use_validator(settings: Any) -> Any:
    """``use_validator("dotted.path.Class")``: DOT's views use that validator in this test."""

    def use(dotted: str) -> None:
        _forget_cached_cores()
        settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "OAUTH2_VALIDATOR_CLASS": dotted}

    yield use
    _forget_cached_cores()


def run_pytest_swapped(*selection: str, timeout: int = 300) -> Any:
    """Run pytest on ``selection`` in a subprocess under ``tests.settings_swapped`` (a swapped
    Application model), with its own in-memory SQLite; returns the completed process."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("DATABASE_URL", None)  # its own in-memory SQLite, not the outer run's test database
    env.pop("TEST_SQLITE_PATH", None)
    command = [sys.executable, "-m", "pytest", "--ds=tests.settings_swapped"]
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [*command, "-p", "no:cacheprovider", "-q", *selection],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
