"""The example under ASGI (uvicorn) behind real nginx (issue #17, ASGI).

uvicorn's default ``--proxy-headers`` replaces the peer address with the client's from
``X-Forwarded-For`` (which most nginx configurations send, and which a client can send through a
proxy that does not overwrite it) when the proxy is on loopback, so ``REMOTE_ADDR`` stops being the proxy and
the trust gate refuses every certificate (``untrusted_peer``). With ``--no-proxy-headers`` (the
setting docs/proxies.md gives) the certificate gets through, a bound token works end to end, and
the metadata's issuer is ``https://host:port`` (``SECURE_PROXY_SSL_HEADER`` and the recipe's
``X-Forwarded-Proto`` and ``Host``). Both runs are here, so the documented trap stays true.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_tool
from tests.e2e import servers
from tests.e2e.clients import TIMEOUT, Credentials
from tests.e2e.conftest import E2EPki, _subdir

pytestmark = pytest.mark.e2e

CREATE_CLIENT = """
from oauth2_provider.models import get_application_model
from django_oauth_mtls.models import MTLSClient
app = get_application_model().objects.create(
    name="asgi-bound", client_type="confidential", authorization_grant_type="client-credentials")
row = MTLSClient(application=app, token_endpoint_auth_method="tls_client_auth",
    tls_client_auth_san_dns="client-one.example.com", tls_client_certificate_bound_access_tokens=True)
row.full_clean(); row.save()
print(app.client_id)
"""


def start_uvicorn(
    directory: Path, sqlite_path: Path, ca: Path, *, proxy_headers: bool
) -> servers.Managed:
    port = servers.free_port()
    env = servers.example_env(sqlite_path, "nginx")
    env["OAUTH2_MTLS_TRUSTED_CA"] = str(ca)
    argv = [
        sys.executable, "-m", "uvicorn",
        "--host", "127.0.0.1", "--port", str(port),
        "--proxy-headers" if proxy_headers else "--no-proxy-headers",
        "--no-access-log",
        "example_project.asgi:application",
    ]  # fmt: skip
    server = servers.spawn(
        "uvicorn", argv, directory / "uvicorn.log", port, env=env, cwd=servers.ROOT
    )
    try:
        servers.wait_for_http(server, "/api/certificate/")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def database(e2e_dir: Path) -> tuple[Path, str]:
    require_tool("nginx")
    directory = _subdir(e2e_dir, "asgi")
    sqlite_path = directory / "example.sqlite3"
    servers.migrate(sqlite_path, directory / "migrate.log")
    return sqlite_path, servers.example_shell(sqlite_path, CREATE_CLIENT)


@pytest.fixture(params=[False, True], ids=["no-proxy-headers", "uvicorn-default-proxy-headers"])
def behind_nginx(request, e2e_dir: Path, e2e_pki: E2EPki, database) -> Iterator[tuple[str, bool]]:
    sqlite_path, _client_id = database
    directory = _subdir(e2e_dir, f"asgi-{request.param}")
    app = start_uvicorn(
        _subdir(directory, "uvicorn"), sqlite_path, e2e_pki.tls.ca, proxy_headers=request.param
    )
    proxy = servers.start_nginx(
        require_tool("nginx"), _subdir(directory, "nginx"), e2e_pki.tls, app.port
    )
    try:
        yield f"https://127.0.0.1:{proxy.port}", request.param
    finally:
        proxy.stop()
        app.stop()


def session(e2e_pki: E2EPki, cert: Credentials | None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(e2e_pki.tls.ca))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_file), str(cert.key_file))
    return httpx.Client(verify=context, timeout=TIMEOUT, trust_env=False)


def test_uvicorn_behind_nginx(behind_nginx, e2e_pki, database):
    url, proxy_headers = behind_nginx
    _sqlite, client_id = database
    own = e2e_pki.clients["pki"]
    # What most nginx configurations add (`$proxy_add_x_forwarded_for`), and what any client can
    # send through a proxy that does not overwrite it.
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    with session(e2e_pki, own) as client:
        seen = client.get(f"{url}/api/certificate/", headers=forwarded).json()
        if proxy_headers:
            # The documented trap: the peer became the client's address, the gate refuses.
            assert seen == {"x5t#S256": None, "subject": None, "problem": "untrusted_peer"}
            return
        assert seen["x5t#S256"] == own.x5t_s256 and seen["problem"] is None
        token = client.post(
            f"{url}/o/token/",
            data={"grant_type": "client_credentials", "client_id": client_id, "scope": "read"},
        )
        assert token.status_code == 200, token.text
        access = token.json()["access_token"]
        whoami = client.get(f"{url}/api/whoami/", headers={"Authorization": f"Bearer {access}"})
        assert whoami.status_code == 200 and whoami.json()["x5t#S256"] == own.x5t_s256
        # The issuer says the scheme, host and port the client used (no demo-only patch).
        metadata = client.get(f"{url}/.well-known/oauth-authorization-server").json()
        assert metadata["issuer"].startswith(url), metadata["issuer"]
        assert metadata["token_endpoint"].startswith(url), metadata["token_endpoint"]
    with session(e2e_pki, None) as anonymous:
        refused = anonymous.get(f"{url}/api/whoami/", headers={"Authorization": f"Bearer {access}"})
        assert (
            refused.status_code == 401
            and 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        )
