"""Issue #16: the token view sends DOT's ``app_authorized`` with the token the validator created,
instead of reading it back from the database by checksum (one query less per token request)."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from oauth2_provider.signals import app_authorized

from tests.integration.conftest import SECRET, basic, code_grant, post_form, token_request

pytestmark = pytest.mark.django_db


@pytest.fixture
def received():
    seen: list = []

    def receiver(sender, request, token, **kwargs):
        seen.append(token)

    app_authorized.connect(receiver)
    yield seen
    app_authorized.disconnect(receiver)


def _checksum(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_signal_carries_the_issued_token_without_reading_it_back(
    client, make_app, mtls_settings, client_cert, received
):
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    with CaptureQueriesContext(connection) as queries:
        response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    access = response.json()["access_token"]
    assert len(received) == 1 and received[0].token_checksum == _checksum(access)
    assert received[0].mtls_binding.x5t_s256 == client_cert.x5t_s256
    read_back = [
        q["sql"]
        for q in queries.captured_queries
        if q["sql"].startswith("SELECT") and _checksum(access) in q["sql"]
    ]
    assert read_back == [], read_back


def test_secret_client_and_failures(client, make_app, mtls_settings, received):
    app = make_app("client_secret_basic")
    ok = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, SECRET),
    )
    assert ok.status_code == 200 and received[-1].token_checksum == _checksum(
        ok.json()["access_token"]
    )
    refused = post_form(
        client,
        "/o/token/",
        {"grant_type": "client_credentials"},
        HTTP_AUTHORIZATION=basic(app.client_id, "wrong"),
    )
    assert refused.status_code == 401 and len(received) == 1


def test_in_place_refresh_falls_back_to_dot_lookup(
    client, make_app, mtls_settings, client_cert, user, settings, received
):
    from tests.integration.conftest import authorization_code

    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "ROTATE_REFRESH_TOKEN": False}
    app = make_app(
        tls_client_auth_san_dns="client-one.example.com", grant_type="authorization-code"
    )
    code, verifier = authorization_code(client, app, user)
    first = token_request(
        client,
        app,
        client_cert,
        data=code_grant(code, verifier),
    )
    assert first.status_code == 200, first.content
    again = token_request(
        client,
        app,
        client_cert,
        data={"grant_type": "refresh_token", "refresh_token": first.json()["refresh_token"]},
    )
    assert again.status_code == 200, again.content
    assert received[-1].token_checksum == _checksum(again.json()["access_token"])


# Issue #16: the token view's dispatch carries DOT's marks, applied once (not per request).


def test_token_endpoint_stays_csrf_exempt_with_csrf_enforced(make_app, mtls_settings, client_cert):
    from django.test import Client

    app = make_app(
        tls_client_auth_san_dns="client-one.example.com",
        tls_client_certificate_bound_access_tokens=True,
    )
    enforcing = Client(enforce_csrf_checks=True)
    response = token_request(enforcing, app, client_cert)
    assert response.status_code == 200, response.content
    assert response.json()["token_type"] == "Bearer"
    # The control: the same client is refused by a view that is not exempt (the admin login).
    refused = enforcing.post("/admin/login/", {"username": "x", "password": "y"})
    assert refused.status_code == 403


def test_token_endpoint_needs_no_login_under_login_required_middleware(
    client, make_app, mtls_settings, client_cert, settings
):
    settings.MIDDLEWARE = [
        *settings.MIDDLEWARE,
        "django.contrib.auth.middleware.LoginRequiredMiddleware",
    ]
    app = make_app(tls_client_auth_san_dns="client-one.example.com")
    response = token_request(client, app, client_cert)
    assert response.status_code == 200, response.content
    # The control: a view without the mark is sent to the login page.
    assert client.get("/admin/password_change/").status_code == 302


def test_marks_do_not_leak_onto_djangos_view_dispatch():
    from django.views.generic import View

    from django_oauth_mtls.views import MTLSTokenView

    assert not hasattr(View.dispatch, "csrf_exempt")
    assert not hasattr(View.dispatch, "login_required")
    assert "csrf_exempt" not in View.as_view().__dict__
    view = MTLSTokenView.as_view()
    assert view.csrf_exempt is True and view.login_required is False


def test_secret_parameters_stay_marked_sensitive(client, make_app, mtls_settings):
    seen = []

    def receiver(sender, request, token, **kwargs):
        seen.append(request.sensitive_post_parameters)

    app_authorized.connect(receiver)
    try:
        app = make_app("client_secret_post")
        response = post_form(
            client,
            "/o/token/",
            {
                "grant_type": "client_credentials",
                "client_id": app.client_id,
                "client_secret": SECRET,
            },
        )
    finally:
        app_authorized.disconnect(receiver)
    assert response.status_code == 200, response.content
    assert seen == [("password", "client_secret")]


def test_dots_dispatch_is_djangos_with_the_two_marks_only():
    """The guard behind ``MTLSTokenView.dispatch``: DOT's ``TokenView.dispatch`` is Django's
    ``View.dispatch`` under ``method_decorator`` marks and nothing else, and no class between
    them defines one. A DOT release that adds logic there must fail here, not be skipped."""
    import inspect

    from django.views.generic import View
    from oauth2_provider.views import TokenView

    from django_oauth_mtls.views import MTLSTokenView

    assert inspect.unwrap(TokenView.dispatch) is View.dispatch
    defining = [klass for klass in MTLSTokenView.__mro__ if "dispatch" in vars(klass)]
    assert defining == [MTLSTokenView, TokenView, View]
    assert inspect.unwrap(MTLSTokenView.dispatch) is View.dispatch
