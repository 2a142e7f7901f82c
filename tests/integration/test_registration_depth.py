"""Issue 14 (security review), finding 3: a registration body nested deep is a 400, never a 500.

Before the fix, a body nested about 921 levels deep (the band depends on the stack) parsed in our
view but raised ``RecursionError`` in DOT's second parse: a 500. Now the registration and
management endpoints refuse any body nested deeper than ``limits.MAX_JSON_DEPTH`` (32), measured
by a non-recursive scan before any ``json.loads``, with RFC 7591 §3.2.2's
``invalid_client_metadata`` — after DOT's permission and registration-token checks, as before.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

import pytest
from django.test import Client

from tests.integration.test_registration import counts, management, registered

pytestmark = pytest.mark.django_db

REGISTER_URL = "/o/register/"
TOO_DEEP = {
    "error": "invalid_client_metadata",
    "error_description": "the request body nests JSON deeper than 32 levels",
}


@pytest.fixture
def dcr(settings, mtls_settings, user):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    client = Client(raise_request_exception=False)  # a 500 is a response here, not an exception
    client.force_login(user)
    return client


def arrays(depth: int) -> str:
    return "[" * depth + "]" * depth


def in_member(depth: int) -> str:
    """A registration request whose ``software_id`` is nested so the body has ``depth`` levels."""
    inner = json.dumps("x")
    for _ in range(depth - 1):
        inner = f"[{inner}]"
    return json.dumps({"client_name": "deep", "grant_types": ["client_credentials"]})[:-1] + (
        f', "software_id": {inner}}}'
    )


@pytest.mark.parametrize("depth", [1000, 921, 5000, 100_000])
@pytest.mark.parametrize("shape", ["arrays", "member"])
def test_a_deep_body_is_invalid_client_metadata(depth, shape, dcr, caplog):
    body = arrays(depth) if shape == "arrays" else in_member(depth)
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        response = dcr.post(REGISTER_URL, body, content_type="application/json")
    assert response.status_code == 400, response.status_code
    assert response.json() == TOO_DEEP
    assert response["Cache-Control"] == "no-store"
    assert counts() == (0, 0, 0)
    assert any(
        "registration refused" in r.getMessage() and "deeper than 32 levels" in r.getMessage()
        for r in caplog.records
    )


def test_no_depth_in_the_stack_band_is_a_500(dcr):
    """Where RecursionError strikes depends on the stack: try every depth around the limit."""
    responses = {
        depth: dcr.post(REGISTER_URL, arrays(depth), content_type="application/json")
        for depth in range(880, 1001)
    }
    assert [d for d, r in responses.items() if r.status_code >= 500] == []
    assert {d: r.json() for d, r in responses.items() if r.json() != TOO_DEEP} == {}


def test_a_body_at_the_bound_registers(dcr):
    response = dcr.post(REGISTER_URL, in_member(32), content_type="application/json")
    assert response.status_code == 201, response.content
    response = dcr.post(REGISTER_URL, in_member(33), content_type="application/json")
    assert response.json() == TOO_DEEP


def test_permission_is_still_checked_first(settings, mtls_settings):
    settings.OAUTH2_PROVIDER = {**settings.OAUTH2_PROVIDER, "DCR_ENABLED": True}
    anonymous = Client(raise_request_exception=False)
    response = anonymous.post(REGISTER_URL, arrays(921), content_type="application/json")
    assert (response.status_code, response.json()["error"]) == (401, "access_denied")


@pytest.mark.parametrize("depth", [33, 921, 1000, 5000, 100_000])
def test_a_deep_update_is_invalid_client_metadata(depth, dcr):
    body, app = registered(dcr, client_name="kept")
    response = dcr.put(
        urlsplit(body["registration_client_uri"]).path,
        arrays(depth),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {body['registration_access_token']}",
    )
    assert response.status_code == 400
    assert response.json() == TOO_DEEP
    app.refresh_from_db()
    assert app.name == "kept"
    # The registration token was not rotated: it still reads the client.
    assert management(dcr, body).status_code == 200


def test_a_deep_update_with_a_wrong_token_is_still_401(dcr):
    body, _app = registered(dcr)
    response = dcr.put(
        urlsplit(body["registration_client_uri"]).path,
        arrays(921),
        content_type="application/json",
        HTTP_AUTHORIZATION="Bearer wrong",
    )
    assert (response.status_code, response.json()["error"]) == (401, "invalid_token")
