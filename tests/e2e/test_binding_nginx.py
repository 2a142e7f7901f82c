"""Certificate-bound tokens end to end through real nginx (RFC 8705 §2.1, §3), with curl and
httpx: a ``tls_client_auth`` token, then ``/api/whoami/`` with the certificate (200), without
it (401) and with another client's (401)."""

from __future__ import annotations

import json
import ssl
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e import servers
from tests.e2e.clients import CLIENTS, TIMEOUT, Credentials
from tests.e2e.conftest import E2EPki, _subdir
from tests.e2e.servers import Managed
from tests.e2e.uwsgi_server import start_uwsgi

pytestmark = pytest.mark.e2e

CREATE_CLIENT = """
from oauth2_provider.models import get_application_model
from django_oauth_mtls.models import MTLSClient
app = get_application_model().objects.create(
    name="e2e-bound", client_type="confidential", authorization_grant_type="client-credentials")
row = MTLSClient(application=app, token_endpoint_auth_method="tls_client_auth",
    tls_client_auth_san_dns="client-one.example.com", tls_client_certificate_bound_access_tokens=True)
row.full_clean(); row.save()
# The secret the client held before its move to mTLS (issue #14: written past any model hook).
type(app).objects.filter(pk=app.pk).update(client_secret="legacy-secret", hash_client_secret=False)
print(app.client_id)
"""


@contextmanager
def bound_example(
    e2e_dir: Path, e2e_pki: E2EPki, name: str, *, server: str = "gunicorn", **options: Any
) -> Iterator[tuple[str, str, Path, Managed]]:
    """nginx → ``server`` (``"gunicorn"`` or ``"uwsgi"``; ``options``: ``start_gunicorn``'s or
    ``start_uwsgi``'s keywords) with the test CA trusted, the example on its own SQLite file with
    a bound tls_client_auth client; (url, client_id, the SQLite file, the app server)."""
    nginx = require_tool("nginx")
    directory = _subdir(e2e_dir, name)
    sqlite_path = directory / "example.sqlite3"
    servers.migrate(sqlite_path, directory / "migrate.log")
    client_id = servers.example_shell(sqlite_path, CREATE_CLIENT)
    trusted = {"OAUTH2_MTLS_TRUSTED_CA": str(e2e_pki.tls.ca)}
    if server == "uwsgi":
        app = start_uwsgi(_subdir(directory, "uwsgi"), sqlite_path, extra_env=trusted, **options)
    else:
        app = servers.start_gunicorn(
            "nginx", _subdir(directory, "gunicorn"), sqlite_path, extra_env=trusted, **options
        )
    try:
        proxy = servers.start_nginx(nginx, _subdir(directory, "nginx"), e2e_pki.tls, app.port)
    except BaseException:
        app.stop()
        raise
    try:
        yield f"https://127.0.0.1:{proxy.port}", client_id, sqlite_path, app
    finally:
        proxy.stop()
        app.stop()


@pytest.fixture(scope="module")
def bound_setup(e2e_dir: Path, e2e_pki: E2EPki) -> Iterator[tuple[str, str]]:
    """(url, client_id) of ``bound_example``."""
    with bound_example(e2e_dir, e2e_pki, "binding") as (url, client_id, _sqlite_path, _app):
        yield url, client_id


def call(
    kind: str,
    method: str,
    url: str,
    ca: Path,
    cert: Credentials | None,
    *,
    form: dict[str, str] | None = None,
    token: str | None = None,
) -> tuple[int, dict, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if kind == "curl":
        argv = [
            require_tool("curl"),
            "--silent",
            "--show-error",
            "--noproxy",
            "*",
            "--cacert",
            str(ca),
            "--max-time",
            str(int(TIMEOUT)),
            "--include",
            "-X",
            method,
        ]
        if cert is not None:
            argv += ["--cert", str(cert.cert_file), "--key", str(cert.key_file)]
        for name, value in headers.items():
            argv += ["--header", f"{name}: {value}"]
        for name, value in (form or {}).items():
            argv += ["--data-urlencode", f"{name}={value}"]
        result = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=TIMEOUT + 5, check=True
        )  # noqa: S603
        head, _, body = result.stdout.replace("\r\n", "\n").partition("\n\n")
        status = int(head.split()[1])
        return status, json.loads(body) if body.strip().startswith("{") else {}, head.lower()
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    with httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False) as session:
        response = session.request(method, url, data=form, headers=headers)
    head = "\n".join(f"{k}: {v}" for k, v in response.headers.items()).lower()
    body = (
        response.json()
        if response.headers.get("content-type", "").startswith("application/json")
        else {}
    )
    return response.status_code, body, head


def check_bound_at_the_api(
    kind: str,
    url: str,
    ca: Path,
    client_id: str,
    token: str,
    own: Credentials,
    stranger: Credentials,
) -> None:
    """``/api/whoami/`` with ``token``: 200 with the holder's certificate, 401
    ``invalid_token`` without one and with another client's."""
    status, body, head = call(kind, "GET", f"{url}/api/whoami/", ca, own, token=token)
    assert (status, body) == (200, {"client_id": client_id, "x5t#S256": own.x5t_s256})
    assert "no-store" in head

    status, _, head = call(kind, "GET", f"{url}/api/whoami/", ca, None, token=token)
    assert status == 401 and 'error="invalid_token"' in head

    status, _, head = call(kind, "GET", f"{url}/api/whoami/", ca, stranger, token=token)
    assert status == 401 and 'error="invalid_token"' in head


@pytest.mark.parametrize("kind", CLIENTS)
def test_bound_token_through_nginx(kind, bound_setup, e2e_pki):
    url, client_id = bound_setup
    ca = e2e_pki.tls.ca
    own, stranger = e2e_pki.clients["pki"], e2e_pki.clients["self_signed"]
    form = {"grant_type": "client_credentials", "client_id": client_id, "scope": "read"}
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, own, form=form)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    token = body["access_token"]

    check_bound_at_the_api(kind, url, ca, client_id, token, own, stranger)

    # Without its certificate the client cannot get a token at all.
    status, body, _ = call(kind, "POST", f"{url}/o/token/", ca, None, form=form)
    assert status == 401 and body["error"] == "invalid_client"


@pytest.mark.parametrize("encoding", ["utf-7", "no-such-codec"])
@pytest.mark.parametrize("with_cert", [False, True], ids=["no-cert", "attacker-cert"])
def test_secret_downgrade_through_nginx_is_refused(encoding, with_cert, bound_setup, e2e_pki):
    """Issue #14 item 1: no client_id in the body, ``encoding=utf-7`` and the client id's first
    character written in UTF-7 in ``Authorization: Basic`` with the client's old secret, with
    no certificate or the attacker's own self-signed one, at all three endpoints: 401."""
    import base64

    url, client_id = bound_setup
    first = "+" + base64.b64encode(client_id[0].encode("utf-16-be")).decode().rstrip("=") + "-"
    basic = base64.b64encode(f"{first}{client_id[1:]}:legacy-secret".encode()).decode()
    context = ssl.create_default_context(cafile=str(e2e_pki.tls.ca))
    if with_cert:
        attacker = e2e_pki.clients["self_signed"]
        context.load_cert_chain(str(attacker.cert_file), str(attacker.key_file))
    bodies = {
        "/o/token/": {"grant_type": "client_credentials", "scope": "read", "encoding": encoding},
        "/o/introspect/": {"token": "x", "encoding": encoding},
        "/o/revoke_token/": {"token": "x", "encoding": encoding},
    }
    with httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False) as session:
        for path, form in bodies.items():
            response = session.post(
                f"{url}{path}", data=form, headers={"Authorization": f"Basic {basic}"}
            )
            assert response.status_code == 401, (path, response.status_code, response.text)
            assert response.json()["error"] == "invalid_client"
