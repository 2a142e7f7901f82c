"""The example under uWSGI behind the nginx recipe (docs/performance.md, "App server";
docs/proxies.md, "The app server"): uWSGI's ``--http-socket``, so the peer the trust gate sees is
nginx, and ``--buffer-size`` for large certificates.

- a bound ``tls_client_auth`` token through nginx and uWSGI, used with its certificate (200),
  without it (401) and with another client's (401), with curl and httpx;
- a certificate over 8 KB once nginx has escaped it passes with ``--buffer-size 32768``, and
  with uWSGI's default (4096 bytes for the whole request head) nginx answers 502: the app never
  sees the request;
- uWSGI, unlike gunicorn, keeps header names with underscores (``X_SSL_Client_Cert`` would
  arrive as the certificate field): the recipe's nginx drops them, and overwrites the
  hyphenated spelling, so a forged certificate never reaches the app.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.clients import CLIENTS, fetch
from tests.e2e.conftest import E2EPki
from tests.e2e.test_binding_nginx import bound_example, call, check_bound_at_the_api

pytestmark = pytest.mark.e2e

NOTHING = {"x5t#S256": None, "subject": None, "problem": "absent"}


def uwsgi_executable() -> str:
    """uWSGI from the test venv (the ``pyuwsgi`` wheel of the ``dev`` extra), else on PATH."""
    beside = Path(sys.executable).with_name("uwsgi")
    return str(beside) if beside.exists() else require_tool("uwsgi")


@pytest.fixture(scope="module")
def uwsgi_setup(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[tuple[str, str]]:
    """(url, client_id): nginx (the recipe) → uWSGI → the example with a bound client."""
    with bound_example(e2e_dir, e2e_pki, "uwsgi", uwsgi=uwsgi_executable()) as setup:
        yield setup[:2]


@pytest.mark.parametrize("kind", CLIENTS)
def test_bound_token_through_nginx_and_uwsgi(kind, uwsgi_setup, e2e_pki):
    url, client_id = uwsgi_setup
    ca = e2e_pki.tls.ca
    own, stranger = e2e_pki.clients["pki"], e2e_pki.clients["self_signed"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, own, form=form)
    assert status == 200, body
    token = body["access_token"]

    check_bound_at_the_api(kind, url, ca, client_id, token, own, stranger)
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, None, form=form)
    assert status == 401 and body["error"] == "invalid_client"


def test_a_large_certificate_passes_with_the_documented_buffer_size(uwsgi_setup, e2e_pki):
    url, _client_id = uwsgi_setup
    large = e2e_pki.clients["large"]
    assert len(e2e_pki.clients["large"].cert_file.read_bytes()) > 8192
    reply = fetch("httpx", f"{url}/api/certificate/", ca=e2e_pki.tls.ca, cert=large)
    assert reply.status == 200, reply.body
    assert reply.json() == {"x5t#S256": large.x5t_s256, "subject": large.subject, "problem": None}


def test_with_uwsgis_default_buffer_a_large_certificate_never_reaches_the_app(e2e_dir, e2e_pki):
    """Why the recipe sets ``--buffer-size``: uWSGI drops the request, nginx answers 502."""
    uwsgi = uwsgi_executable()
    with bound_example(e2e_dir, e2e_pki, "uwsgi-buffer", uwsgi=uwsgi, buffer_size=None) as setup:
        url = setup[0]
        small = fetch("httpx", f"{url}/api/certificate/", ca=e2e_pki.tls.ca, cert=None)
        assert (small.status, small.json()) == (200, NOTHING)
        large = e2e_pki.clients["large"]
        reply = fetch("httpx", f"{url}/api/certificate/", ca=e2e_pki.tls.ca, cert=large)
        assert reply.status == 502


@pytest.mark.parametrize(
    "spelling", ["X-SSL-Client-Cert", "X_SSL_Client_Cert", "X-SSL_Client-Cert", "Client_Cert"]
)
@pytest.mark.parametrize("holder", ["pki", None])
def test_a_forged_certificate_field_never_reaches_the_app(uwsgi_setup, e2e_pki, spelling, holder):
    url, _client_id = uwsgi_setup
    credentials = e2e_pki.clients[holder] if holder else None
    headers = [(spelling, e2e_pki.forged.nginx()), ("X-SSL-Client-Verify", "SUCCESS")]
    for kind in CLIENTS:
        reply = fetch(
            kind,
            f"{url}/api/certificate/",
            ca=e2e_pki.tls.ca,
            cert=credentials,
            headers=headers,
            curl=require_tool("curl") if kind == "curl" else "curl",
        )
        assert reply.status == 200, reply.body
        expected = (
            NOTHING
            if credentials is None
            else {"x5t#S256": credentials.x5t_s256, "subject": credentials.subject, "problem": None}
        )
        assert reply.json() == expected
