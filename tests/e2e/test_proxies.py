"""Real proxies over real TLS in front of the example under gunicorn (issue #3; RFC 8705 §2,
RFC 9440 §4).

Each proxy runs the recipe the package ships (``django_oauth_mtls/recipes/``) and feeds the
certificate source docs/api.md assigns it (nginx → ``nginx``, HAProxy → ``haproxy``, Apache →
``apache``). The clients are curl and httpx; the app answers ``GET /api/certificate/`` with
what it saw, and the probe in gunicorn records which certificate fields actually arrived.
"""

from __future__ import annotations

import uuid

import pytest

from tests.e2e.clients import Credentials
from tests.e2e.conftest import PROXIES, AppServers, Client, E2EPki, Proxy
from tests.e2e.servers import Managed, arrived, reached

pytestmark = pytest.mark.e2e

PATH = "/api/certificate/"
NOTHING = {"x5t#S256": None, "subject": None, "problem": "absent"}


def new_probe() -> str:
    return uuid.uuid4().hex


def seen(client: Client, base: str, probe: str, **options: object) -> dict[str, object]:
    reply = client.get(f"{base}{PATH}?probe={probe}", **options)
    assert reply.status == 200, reply.body
    return reply.json()


def fields_at_app(app: Managed, probe: str) -> list[tuple[str, str]]:
    """Certificate fields that reached gunicorn, names upper-cased as gunicorn keeps them."""
    return [(name.upper(), value) for name, value in arrived(app, probe)]


def as_seen(credentials: Credentials | None) -> dict[str, object]:
    """What /api/certificate/ must answer for a client presenting ``credentials``."""
    if credentials is None:
        return NOTHING
    return {"x5t#S256": credentials.x5t_s256, "subject": credentials.subject, "problem": None}


@pytest.mark.parametrize("holder", ["pki", "self_signed"])
def test_app_sees_exactly_the_thumbprint_the_client_computed(
    proxy: Proxy, client: Client, e2e_pki: E2EPki, holder: str
):
    credentials = e2e_pki.clients[holder]
    probe = new_probe()
    assert seen(client, proxy.url, probe, cert=credentials) == as_seen(credentials)
    names = [name for name, _ in fields_at_app(proxy.app, probe)]
    assert names.count("X-SSL-CLIENT-CERT") == 1


def test_a_certificate_larger_than_gunicorns_default_field_limit_passes(
    proxy: Proxy, client: Client, e2e_pki: E2EPki
):
    """gunicorn runs with ``--limit-request-field_size 32768`` (docs/proxies.md); its default,
    8190, is below MAX_HEADER_BYTES (16384) and would turn this request into a 400."""
    credentials = e2e_pki.clients["large"]
    probe = new_probe()
    assert seen(client, proxy.url, probe, cert=credentials) == as_seen(credentials)
    [value] = [v for n, v in fields_at_app(proxy.app, probe) if n == "X-SSL-CLIENT-CERT"]
    assert 8190 < len(value) < 16384


def test_without_a_client_certificate_the_problem_is_absent(
    proxy: Proxy, client: Client, e2e_pki: E2EPki
):
    probe = new_probe()
    assert seen(client, proxy.url, probe) == NOTHING
    certificate_fields = [v for n, v in fields_at_app(proxy.app, probe) if n == "X-SSL-CLIENT-CERT"]
    # nginx and HAProxy send no field; Apache sends its literal "(null)".
    assert certificate_fields in ([], ["(null)"])


@pytest.mark.parametrize("holder", ["pki", None])
def test_a_forged_field_sent_through_the_proxy_is_overwritten_or_stripped(
    proxy: Proxy, client: Client, e2e_pki: E2EPki, holder: str | None
):
    credentials = e2e_pki.clients[holder] if holder else None
    forged = proxy.encode(e2e_pki.forged)
    headers = [("X-SSL-Client-Cert", forged), ("X-SSL-Client-Verify", "SUCCESS")]
    probe = new_probe()
    assert seen(client, proxy.url, probe, cert=credentials, headers=headers) == as_seen(credentials)
    arrived_fields = fields_at_app(proxy.app, probe)
    assert forged not in [value for _, value in arrived_fields]
    verdicts = [value for name, value in arrived_fields if name == "X-SSL-CLIENT-VERIFY"]
    if credentials is None:
        assert verdicts in ([], ["NONE"])
    else:  # the proxy's own verdict (no CA configured: never SUCCESS), once
        assert len(verdicts) == 1
        assert verdicts[0] != "SUCCESS"


UNDERSCORE_SPELLINGS = [
    "X_SSL_Client_Cert",
    "Client_Cert",
    "Client_Cert_Chain",
    "X-SSL_Client-Cert",
]
#: Apache unsets the spellings its recipe names and refuses the mixed ones (recipes/apache.conf.template).
REFUSED = {("apache", "X-SSL_Client-Cert")}


@pytest.mark.parametrize("holder", ["pki", None])
@pytest.mark.parametrize("field", UNDERSCORE_SPELLINGS)
def test_underscore_spellings_sent_through_the_proxy_do_not_reach_the_app(
    proxy: Proxy, client: Client, e2e_pki: E2EPki, field: str, holder: str | None
):
    """``Client_Cert`` arrives in WSGI as ``HTTP_CLIENT_CERT``, the same key as ``Client-Cert``.

    gunicorn runs with ``header_map=dangerous`` here, so only the proxy stands in the way: nginx
    and HAProxy drop every underscored field; Apache unsets the spellings its recipe names and
    refuses (403) the others, since it cannot delete fields by a pattern.
    """
    credentials = e2e_pki.clients[holder] if holder else None
    forged = (
        e2e_pki.forged.rfc9440()
        if field.lower().startswith("client")
        else proxy.encode(e2e_pki.forged)
    )
    probe = new_probe()
    reply = client.get(
        f"{proxy.url}{PATH}?probe={probe}", cert=credentials, headers=[(field, forged)]
    )
    if (proxy.name, field) in REFUSED:
        assert reply.status == 403, reply.body
        assert reached(proxy.app, probe) is None
        return
    assert reply.status == 200, reply.body
    assert reply.json() == as_seen(credentials)
    arrived_fields = fields_at_app(proxy.app, probe)
    assert [name for name, _ in arrived_fields if "_" in name] == []
    assert forged not in [value for _, value in arrived_fields]


def test_rfc9440_fields_sent_through_the_proxy_are_stripped(
    proxy: Proxy, client: Client, e2e_pki: E2EPki
):
    """Fields of other sources (``Client-Cert``) never pass either: switching sources stays safe."""
    forged = e2e_pki.forged.rfc9440()
    probe = new_probe()
    headers = [("Client-Cert", forged), ("Client-Cert-Chain", forged)]
    assert seen(client, proxy.url, probe, headers=headers) == NOTHING
    assert [name for name, _ in fields_at_app(proxy.app, probe) if name.startswith("CLIENT")] == []


# --- straight to gunicorn, bypassing the proxy -----------------------------------------------


@pytest.mark.parametrize("source", sorted({source for source, _ in PROXIES.values()}))
def test_the_field_sent_straight_to_the_app_server_from_an_untrusted_peer_is_ignored(
    app_servers: AppServers, client: Client, e2e_pki: E2EPki, source: str
):
    """RFC 9440 §4: the gate is the peer address; 127.0.0.2 is not in TRUSTED_PROXIES."""
    app = app_servers(source)
    encode = next(encode for src, encode in PROXIES.values() if src == source)
    forged = encode(e2e_pki.forged)
    base = f"http://127.0.0.1:{app.port}"
    headers = [("X-SSL-Client-Cert", forged)]

    probe = new_probe()
    untrusted = seen(client, base, probe, headers=headers, local_address="127.0.0.2")
    assert untrusted == {"x5t#S256": None, "subject": None, "problem": "untrusted_peer"}
    # The field did reach the app server: only the app's gate refused it.
    assert ("X-SSL-CLIENT-CERT", forged) in fields_at_app(app, probe)

    # Control: the same request from the trusted address is read, so the refusal above is the
    # gate's doing and not a broken encoding.
    trusted = seen(client, base, new_probe(), headers=headers, local_address="127.0.0.1")
    assert trusted["x5t#S256"] == e2e_pki.forged.x5t_s256
