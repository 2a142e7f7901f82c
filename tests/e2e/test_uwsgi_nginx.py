"""The example under uWSGI behind the nginx recipe (docs/proxies.md, "The app server";
docs/performance.md, "App server"), run with the documented command (``uwsgi_server``).

- a bound ``tls_client_auth`` token through nginx and uWSGI, used with its certificate (200),
  without it (401) and with another client's (401), with curl and httpx;
- a certificate over 8 KB once nginx has escaped it passes with ``--buffer-size 32768``; with
  uWSGI's default (4096 bytes for the whole request head) nginx answers 502 and the request
  never reaches the app;
- uWSGI, unlike gunicorn, keeps header names with underscores and merges repeated names: the
  recipe's nginx drops the underscored spellings and overwrites the hyphenated one, and the
  probe shows that no forged value reaches uWSGI;
- a certificate field sent straight to uWSGI from an address outside ``TRUSTED_PROXIES`` is
  ignored (``untrusted_peer``): with ``--http-socket`` the peer uWSGI reports is the peer.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.clients import CLIENTS, fetch
from tests.e2e.conftest import E2EPki
from tests.e2e.servers import ROOT, Managed, arrived
from tests.e2e.test_binding_nginx import bound_example, call, check_bound_at_the_api
from tests.e2e.uwsgi_server import uwsgi_arguments

pytestmark = pytest.mark.e2e

ABSENT = {"x5t#S256": None, "subject": None, "problem": "absent"}


@pytest.fixture(scope="module")
def uwsgi_setup(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[tuple[str, str, Managed]]:
    """(url, client_id, uWSGI): nginx (the recipe) → uWSGI → the example, a bound client."""
    with bound_example(e2e_dir, e2e_pki, "uwsgi", server="uwsgi") as (url, client_id, _db, app):
        yield url, client_id, app


@pytest.mark.parametrize("kind", CLIENTS)
def test_bound_token_through_nginx_and_uwsgi(kind, uwsgi_setup, e2e_pki):
    url, client_id, _app = uwsgi_setup
    ca = e2e_pki.tls.ca
    own, stranger = e2e_pki.clients["pki"], e2e_pki.clients["self_signed"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, own, form=form)
    assert status == 200, body
    check_bound_at_the_api(kind, url, ca, client_id, body["access_token"], own, stranger)
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, None, form=form)
    assert status == 401 and body["error"] == "invalid_client"


def test_a_large_certificate_passes_with_the_documented_buffer_size(uwsgi_setup, e2e_pki):
    url, _client_id, app = uwsgi_setup
    large = e2e_pki.clients["large"]
    reply = fetch("httpx", f"{url}/api/certificate/?probe=large", ca=e2e_pki.tls.ca, cert=large)
    assert reply.status == 200, reply.body
    assert reply.json() == {"x5t#S256": large.x5t_s256, "subject": large.subject, "problem": None}
    [value] = [v for name, v in arrived(app, "large") if name == "X-SSL-CLIENT-CERT"]
    assert len(value) > 8192  # as nginx escaped it: twice uWSGI's default buffer


def test_with_uwsgis_default_buffer_a_large_certificate_never_reaches_the_app(e2e_dir, e2e_pki):
    """Why the command sets ``--buffer-size``: uWSGI drops the request, nginx answers 502."""
    with bound_example(e2e_dir, e2e_pki, "uwsgi-buffer", server="uwsgi", buffer_size=None) as setup:
        url, app = setup[0], setup[3]
        small = fetch("httpx", f"{url}/api/certificate/?probe=small", ca=e2e_pki.tls.ca)
        assert (small.status, small.json()) == (200, ABSENT)
        large = e2e_pki.clients["large"]
        reply = fetch("httpx", f"{url}/api/certificate/?probe=big", ca=e2e_pki.tls.ca, cert=large)
        assert reply.status == 502
        assert "X-SSL-CLIENT-CERT" not in dict(arrived(app, "small"))  # it reached uWSGI
        with pytest.raises(AssertionError, match="never reached"):
            arrived(app, "big")


SPELLINGS = [
    "X-SSL-Client-Cert",
    "X_SSL_Client_Cert",
    "X-SSL_Client-Cert",
    "Client-Cert",
    "Client_Cert",
    "Client_Cert_Chain",
]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize("holder", ["pki", None])
def test_a_forged_certificate_field_never_reaches_uwsgi(uwsgi_setup, e2e_pki, spelling, holder):
    url, _client_id, app = uwsgi_setup
    credentials = e2e_pki.clients[holder] if holder else None
    forged = e2e_pki.forged.nginx()
    headers = [(spelling, forged), ("X-SSL-Client-Verify", "SUCCESS")]
    curl = require_tool("curl")
    expected = (
        ABSENT
        if credentials is None
        else {"x5t#S256": credentials.x5t_s256, "subject": credentials.subject, "problem": None}
    )
    for kind in CLIENTS:
        probe = f"{kind}-{holder}-{spelling}"
        reply = fetch(
            kind,
            f"{url}/api/certificate/?probe={probe}",
            ca=e2e_pki.tls.ca,
            cert=credentials,
            headers=headers,
            curl=curl,
        )
        assert reply.status == 200, reply.body
        assert reply.json() == expected
        fields = arrived(app, probe)
        assert all(forged not in value for _name, value in fields), fields
        assert [name for name, _ in fields].count("X-SSL-CLIENT-CERT") == (holder is not None)


def test_a_certificate_field_sent_straight_to_uwsgi_by_an_untrusted_peer_is_ignored(
    uwsgi_setup, e2e_pki
):
    """``TRUSTED_PROXIES`` holds 127.0.0.1 and ::1: from 127.0.0.2 the field is not believed,
    because ``--http-socket`` reports the TCP peer as ``REMOTE_ADDR``."""
    _url, _client_id, app = uwsgi_setup
    forged = e2e_pki.forged.nginx()
    reply = fetch(
        "httpx",
        f"http://127.0.0.1:{app.port}/api/certificate/?probe=direct",
        headers=[("X-SSL-Client-Cert", forged), ("X-SSL-Client-Verify", "SUCCESS")],
        local_address="127.0.0.2",
    )
    assert reply.status == 200, reply.body
    assert reply.json() == {"x5t#S256": None, "subject": None, "problem": "untrusted_peer"}
    assert [value for _name, value in arrived(app, "direct")].count(forged) == 1  # it did arrive


def options_of(argv: list[str]) -> dict[str, str | None]:
    """``--option value`` and ``--flag`` pairs of a uWSGI command line."""
    return {
        word: (following if not following.startswith("--") else None)
        for word, following in zip(argv, [*argv[1:], "--"], strict=True)
        if word.startswith("--")
    }


def test_the_documented_command_is_the_tested_one():
    """docs/proxies.md's uWSGI command line runs uWSGI with exactly the tests' options."""
    text = (ROOT / "docs" / "proxies.md").read_text()
    [command] = re.findall(r"```console\n(uwsgi [^`]*?)```", text)
    documented = options_of(shlex.split(command.replace("\\\n", " "))[1:])
    assert documented == options_of(uwsgi_arguments(8000))
