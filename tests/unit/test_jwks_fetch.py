"""``jwks_fetch``: the safe, cached ``jwks_uri`` fetcher (RFC 8705 §2.2.2; RFC 7591 §2).

Network tests talk only to a real https server on 127.0.0.1 (``tests/jwks_server.py``) with
``JWKS_ALLOW_PRIVATE_ADDRESSES`` on; the address rules are tested on the resolver's answer
(``socket.getaddrinfo`` replaced), never by connecting anywhere else. Time moves through
``jwks_fetch._clock``.
"""

from __future__ import annotations

import ipaddress
import logging
import pickle
import socket
import time

import pytest
from django.core.cache import caches

from django_oauth_mtls import jwks_cache, jwks_fetch
from django_oauth_mtls.exceptions import ClientAuthError
from django_oauth_mtls.jwks_fetch import address_problem, fetched_certificates, uri_problem
from tests.jwks_server import Clock, JWKSServer, Route, jwk_of, jwk_set, self_signed

CLIENT_A = self_signed("client-a")
CLIENT_B = self_signed("client-b")


@pytest.fixture(scope="module")
def server():
    with JWKSServer() as running:
        yield running


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(jwks_fetch, "_clock", fake)
    return fake


@pytest.fixture
def fetch_settings(settings, server, monkeypatch, clock):
    """Loopback allowed, the server's CA trusted, an empty cache, the documented defaults."""
    settings.OAUTH2_MTLS = {"JWKS_ALLOW_PRIVATE_ADDRESSES": True, "JWKS_FETCH_TIMEOUT_SECONDS": 2}
    monkeypatch.setattr(jwks_fetch, "_ssl_context", server.client_context)
    server.reset()
    caches["default"].clear()
    yield settings
    caches["default"].clear()


def configure(settings, **values):
    settings.OAUTH2_MTLS = {**settings.OAUTH2_MTLS, **values}


def unavailable(uri, **kwargs) -> str:
    with pytest.raises(ClientAuthError) as caught:
        fetched_certificates(uri, **kwargs)
    assert caught.value.code == "jwk_set_unavailable"
    return caught.value.description


# --- a good set, the cache ----------------------------------------------------------------------


def test_good_set_is_fetched_once_and_cached(server, fetch_settings):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A, CLIENT_B))
    assert fetched_certificates(uri) == {CLIENT_A.der, CLIENT_B.der}
    assert fetched_certificates(uri) == {CLIENT_A.der, CLIENT_B.der}
    assert server.hits["/jwks"] == 1


def stored_sets() -> dict[str, dict]:
    """What the fetcher keeps in the test cache (LocMemCache), set entries only, by cache key."""
    cache = caches["default"]
    found = {}
    for key, value in list(cache._cache.items()):
        if jwks_fetch.CACHE_PREFIX in key and not key.endswith(":attempt"):
            entry = pickle.loads(value)
            if isinstance(entry, dict) and "certificates" in entry:
                found[key] = entry
    return found


def test_the_cache_is_django_default_cache_and_holds_no_document(server, fetch_settings, clock):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    fetched_certificates(uri)
    key, stored = jwks_cache.lookup(caches["default"], uri, clock())
    assert stored["certificates"] == [CLIENT_A.der]
    assert set(stored) == {"uri", "certificates", "expires"}
    assert uri not in key and "localhost" not in key  # keyed by a digest, never the URL
    caches["default"].clear()  # another app server with an empty cache fetches again
    fetched_certificates(uri)
    assert server.hits["/jwks"] == 2


def test_the_cache_is_bounded_by_bytes(server, fetch_settings, monkeypatch):
    """Many jwks_uri sets: what is cached never exceeds the byte budget, whatever the count."""
    configure(fetch_settings, JWKS_MAX_BYTES=8192)
    monkeypatch.setattr(jwks_cache, "CACHE_BYTE_BUDGET", 2 * 8192)
    sets = {}
    for index in range(24):
        members = [self_signed(f"client-{index}-{n}") for n in range(3)]
        uri = server.serve_json(f"/jwks/{index}", jwk_set(*members))
        sets[uri] = {m.der for m in members}
        assert fetched_certificates(uri) == sets[uri]
    stored = stored_sets()
    assert 0 < len(stored) <= 2
    assert sum(len(der) for entry in stored.values() for der in entry["certificates"]) <= 2 * 8192
    # Evicted sets are fetched again (once per interval each), and right.
    for uri, expected in sets.items():
        assert fetched_certificates(uri) == expected
    assert len(stored_sets()) <= 2


def test_slots_hold_only_their_own_uri(server, fetch_settings, monkeypatch, clock):
    """One slot for two URIs: each lookup finds its own set or nothing, never the other's."""
    monkeypatch.setattr(jwks_cache, "CACHE_BYTE_BUDGET", 1)
    first = server.serve_json("/first", jwk_set(CLIENT_A))
    second = server.serve_json("/second", jwk_set(CLIENT_B))
    assert fetched_certificates(first) == {CLIENT_A.der}
    assert fetched_certificates(second) == {CLIENT_B.der}
    assert jwks_cache.lookup(caches["default"], first, clock()) == (None, None)
    assert fetched_certificates(first) == {CLIENT_A.der}
    assert server.hits["/first"] == 2
    assert len(stored_sets()) == 1


def test_a_set_larger_than_JWKS_MAX_BYTES_is_never_cached(server, fetch_settings, clock):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    jwks_cache.store(caches["default"], uri, frozenset({b"x" * 70_000}), clock(), 300.0)
    assert stored_sets() == {}


def test_cache_expires_after_JWKS_CACHE_SECONDS(server, fetch_settings, clock):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    fetched_certificates(uri)
    clock.advance(299)
    fetched_certificates(uri)
    assert server.hits["/jwks"] == 1
    clock.advance(2)
    server.serve_json("/jwks", jwk_set(CLIENT_B))
    assert fetched_certificates(uri) == {CLIENT_B.der}
    assert server.hits["/jwks"] == 2


def test_host_is_resolved_once_and_verified_by_name(server, fetch_settings, monkeypatch):
    """The connection goes to the checked address; SNI and the certificate use the name."""
    calls = []

    def resolver(host, port, *args, **kwargs):
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    server.serve_json("/jwks", jwk_set(CLIENT_A))
    assert fetched_certificates(server.url("/jwks", host="jwks.example.test")) == {CLIENT_A.der}
    assert calls == ["jwks.example.test"]


def test_certificate_for_another_name_is_refused(server, fetch_settings, monkeypatch):
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, port, *a, **k: [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))
        ],
    )
    server.serve_json("/jwks", jwk_set(CLIENT_A))
    description = unavailable(server.url("/jwks", host="other.example.test"))
    assert "TLS certificate was not accepted" in description


def test_untrusted_server_certificate_is_refused(server, fetch_settings, monkeypatch):
    monkeypatch.setattr(jwks_fetch, "_ssl_context", jwks_fetch.ssl.create_default_context)
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    assert "TLS certificate was not accepted" in unavailable(uri)


# --- rotation (refresh=True) ---------------------------------------------------------------------


def test_rotation_is_picked_up_after_the_interval_and_not_before(server, fetch_settings, clock):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    assert fetched_certificates(uri) == {CLIENT_A.der}
    server.serve_json("/jwks", jwk_set(CLIENT_B))  # the client rotates its key
    # Within JWKS_REFETCH_INTERVAL_SECONDS (30) of the last fetch: no request, the cached set.
    clock.advance(29)
    assert fetched_certificates(uri, refresh=True) == {CLIENT_A.der}
    assert server.hits["/jwks"] == 1
    clock.advance(2)
    assert fetched_certificates(uri, refresh=True) == {CLIENT_B.der}
    assert server.hits["/jwks"] == 2
    # The new set is cached; further misses wait for the next interval.
    assert fetched_certificates(uri, refresh=True) == {CLIENT_B.der}
    assert fetched_certificates(uri) == {CLIENT_B.der}
    assert server.hits["/jwks"] == 2


def test_refetch_interval_zero_refetches_every_time(server, fetch_settings):
    configure(fetch_settings, JWKS_REFETCH_INTERVAL_SECONDS=0)
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    fetched_certificates(uri)
    fetched_certificates(uri, refresh=True)
    fetched_certificates(uri, refresh=True)
    assert server.hits["/jwks"] == 3


def test_the_interval_is_shared_through_the_cache(server, fetch_settings, clock):
    """A second app server (same cache) does not re-fetch within another's interval."""
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    fetched_certificates(uri)
    set_key, _ = jwks_cache.lookup(caches["default"], uri, clock())
    caches["default"].delete(set_key)  # as if this server never had the set...
    clock.advance(5)
    # ...but the attempt marker says the last fetch succeeded: fetch the missing set again.
    fetched_certificates(uri)
    assert server.hits["/jwks"] == 2


# --- failures -------------------------------------------------------------------------------


def test_timeout(server, fetch_settings):
    configure(fetch_settings, JWKS_FETCH_TIMEOUT_SECONDS=0.5)
    uri = server.serve("/slow", Route(body=b'{"keys": []}', delay=3))
    started = time.monotonic()
    assert "timed out after 0.5 s" in unavailable(uri)
    assert time.monotonic() - started < 2


def test_timeout_is_one_deadline_for_a_dripping_server(server, fetch_settings):
    configure(fetch_settings, JWKS_FETCH_TIMEOUT_SECONDS=0.7)
    uri = server.serve("/drip", Route(body=b'{"keys": []}' + b" " * 40, drip=0.1))
    started = time.monotonic()
    assert "timed out" in unavailable(uri)
    assert time.monotonic() - started < 2.5


def test_redirect_is_refused_and_not_followed(server, fetch_settings, caplog):
    server.serve_json("/elsewhere", jwk_set(CLIENT_A))
    uri = server.serve("/jwks", Route(status=302, headers={"Location": server.url("/elsewhere")}))
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert "redirect refused (HTTP 302)" in unavailable(uri)
    assert server.hits["/elsewhere"] == 0
    assert any("reason=redirect refused (HTTP 302)" in r.getMessage() for r in caplog.records)


def test_http_404(server, fetch_settings):
    assert "HTTP 404" in unavailable(server.url("/missing"))


def test_not_json(server, fetch_settings):
    uri = server.serve("/jwks", Route(body=b"<html>hello</html>"))
    assert "not JSON" in unavailable(uri)


def test_too_large_by_content_length(server, fetch_settings):
    configure(fetch_settings, JWKS_MAX_BYTES=1000)
    uri = server.serve("/big", Route(body=b'{"keys": []}' + b" " * 2000))
    assert "too large (more than 1000 bytes)" in unavailable(uri)


def test_too_large_without_content_length_stops_reading(server, fetch_settings):
    configure(fetch_settings, JWKS_MAX_BYTES=1000)
    uri = server.serve("/big", Route(body=b'{"keys": []}' + b" " * 200_000, content_length=False))
    assert "too large (more than 1000 bytes)" in unavailable(uri)


def test_exactly_max_bytes_is_accepted(server, fetch_settings):
    document = b'{"keys": []}'
    configure(fetch_settings, JWKS_MAX_BYTES=len(document))
    uri = server.serve("/jwks", Route(body=document, content_length=False))
    assert fetched_certificates(uri) == frozenset()


def test_x5c_mismatch_refuses_the_set(server, fetch_settings):
    bad = jwk_of(CLIENT_A, x5c=jwk_of(CLIENT_B)["x5c"])
    uri = server.serve_json("/jwks", {"keys": [bad]})
    description = unavailable(uri)
    assert "unusable JWK set" in description
    assert "x5c[0] does not match the JWK's key" in description


def test_failure_is_logged_without_the_document(server, fetch_settings, caplog):
    uri = server.serve("/jwks", Route(body=b"SECRET-DOCUMENT-CONTENT"))
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        unavailable(uri)
    messages = [r.getMessage() for r in caplog.records]
    assert any(f"uri={uri} reason=not JSON" in m for m in messages)
    assert not any("SECRET-DOCUMENT-CONTENT" in m for m in messages)


def test_failed_fetch_keeps_the_last_good_set_until_it_expires(
    server, fetch_settings, clock, caplog
):
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    assert fetched_certificates(uri) == {CLIENT_A.der}
    server.serve("/jwks", Route(status=500))
    clock.advance(31)
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        assert fetched_certificates(uri, refresh=True) == {CLIENT_A.der}
    assert server.hits["/jwks"] == 2
    assert any("reason=HTTP 500" in r.getMessage() for r in caplog.records)
    # The failure does not extend the set: once it expires (300 s after its fetch), no set.
    clock.advance(270)
    assert "HTTP 500" in unavailable(uri)


def test_failed_fetch_is_not_retried_within_the_interval(server, fetch_settings, clock):
    uri = server.url("/missing")
    assert "HTTP 404" in unavailable(uri)
    description = unavailable(uri)
    assert "HTTP 404" in description and "not retried" in description
    assert server.hits["/missing"] == 1
    clock.advance(31)
    server.serve_json("/missing", jwk_set(CLIENT_A))
    assert fetched_certificates(uri) == {CLIENT_A.der}


def test_http_uri_is_refused_without_a_request(server, fetch_settings):
    assert "https" in unavailable(f"http://localhost:{server.port}/jwks")
    assert not server.hits


# --- addresses ------------------------------------------------------------------------------


def test_loopback_refused_without_the_setting(server, fetch_settings):
    configure(fetch_settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    uri = server.serve_json("/jwks", jwk_set(CLIENT_A))
    assert "loopback address refused" in unavailable(uri)
    assert server.hits["/jwks"] == 0


def answer(*addresses):
    def resolver(host, port, *args, **kwargs):
        infos = []
        for text in addresses:
            if ":" in text:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (text, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (text, port)))
        return infos

    return resolver


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.1"], "private"),
        (["192.168.1.20"], "private"),
        (["172.16.0.1"], "private"),
        (["127.0.0.1"], "loopback"),
        (["169.254.169.254"], "link-local"),  # cloud metadata services
        (["0.0.0.0"], "unspecified"),
        (["224.0.0.1"], "multicast"),
        (["240.0.0.1"], "reserved"),
        (["100.64.0.1"], "shared"),  # carrier-grade NAT
        (["192.0.0.8"], "ietf-protocol"),
        (["198.18.0.1"], "benchmarking"),
        (["fec0::1"], "site-local"),  # RFC 3879; Python 3.11's is_global says global
        (["fc00::1"], "private"),
        (["2001:db8::1"], "documentation"),
        (["64:ff9b::7f00:1"], "loopback"),  # NAT64 of 127.0.0.1
        (["2606:2800:220:1::1", "fec0::1"], "site-local"),
        (["::1"], "loopback"),
        (["fe80::1"], "link-local"),
        (["fd00::1"], "private"),
        (["ff02::1"], "multicast"),
        (["::ffff:127.0.0.1"], "loopback"),  # IPv4-mapped: judged as IPv4
        (["::ffff:10.1.2.3"], "private"),
        (["64:ff9b::a00:1"], "private"),  # NAT64 of 10.0.0.1
        (["2002:7f00:1::"], "6to4"),  # 6to4 (of 127.0.0.1 here) is refused whole
        (["93.184.216.34", "10.0.0.1"], "private"),  # every address is checked
        (["2606:2800:220:1::1", "::1"], "loopback"),
    ],
)
def test_resolved_address_refused(fetch_settings, monkeypatch, addresses, reason):
    configure(fetch_settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    monkeypatch.setattr(socket, "getaddrinfo", answer(*addresses))
    monkeypatch.setattr(
        jwks_fetch._ResolvedHTTPSConnection,
        "connect",
        lambda self: pytest.fail("must not connect"),
    )
    assert f"{reason} address refused" in unavailable("https://jwks.example.test/jwks")


def test_refusal_logs_the_address_but_does_not_tell_the_client(fetch_settings, monkeypatch, caplog):
    configure(fetch_settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    monkeypatch.setattr(socket, "getaddrinfo", answer("10.9.8.7"))
    with caplog.at_level(logging.WARNING, logger="django_oauth_mtls"):
        description = unavailable("https://jwks.example.test/jwks")
    assert "10.9.8.7" not in description
    assert any("10.9.8.7" in r.getMessage() for r in caplog.records)


def test_public_answers_pass_the_check(fetch_settings, monkeypatch):
    configure(fetch_settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    monkeypatch.setattr(socket, "getaddrinfo", answer("93.184.216.34", "2606:2800:220:1::1"))
    resolved = jwks_fetch._resolve("jwks.example.test", 443)
    assert [sockaddr[0] for _family, sockaddr in resolved] == [
        "93.184.216.34",
        "2606:2800:220:1::1",
    ]


def test_private_answers_pass_with_the_setting(fetch_settings, monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", answer("10.0.0.1"))
    assert jwks_fetch._resolve("intranet.example.test", 443)


def test_unresolvable_host(fetch_settings, monkeypatch):
    def fail(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert "could not be resolved" in unavailable("https://nowhere.example.test/jwks")


@pytest.mark.parametrize(
    ("address", "problem"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("::ffff:93.184.216.34", None),
        ("64:ff9b::5db8:d822", None),  # NAT64 of a public address
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::", "unspecified"),
        ("fec0::1", "site-local"),
    ],
)
def test_address_problem(address, problem):
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize(
    ("uri", "problem"),
    [
        ("https://client.example.com/jwks", None),
        ("http://client.example.com/jwks", "must be an https URL"),
        ("https:///jwks", "has no host"),
        ("https://user:pw@client.example.com/jwks", "must not carry credentials"),
        ("https://client.example.com:99999/jwks", "not a valid URL"),
        ("https://10.0.0.1/jwks", "points to a private address"),
        ("https://[::1]/jwks", "points to a loopback address"),
        ("https://[fec0::1]/jwks", "points to a site-local address"),
        ("https://[fe80::1%25eth0]/jwks", "points to a link-local address"),
        ("https://[::ffff:169.254.169.254]/jwks", "points to a link-local address"),
        ("https://[2001:db8::1]/jwks", "points to a documentation address"),
        ("https://[2606:4700::1111]/jwks", None),
        ("https://8.8.8.8/jwks", None),
        # Numeric hosts the system resolver reads as IPv4 without asking DNS (inet_aton).
        ("https://127.1/jwks", "points to a loopback address"),
        ("https://2130706433/jwks", "points to a loopback address"),
        ("https://0x7f000001/jwks", "points to a loopback address"),
        ("https://0xa9.0xfe.0xa9.0xfe/jwks", "points to a link-local address"),
    ],
)
def test_uri_problem(settings, uri, problem):
    settings.OAUTH2_MTLS = {}
    found = uri_problem(uri)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_uri_problem_with_the_setting(settings):
    settings.OAUTH2_MTLS = {"JWKS_ALLOW_PRIVATE_ADDRESSES": True}
    assert uri_problem("https://[fec0::1]/jwks") is None
    assert uri_problem("https://127.1/jwks") is None


def test_connect_checks_the_address_itself(fetch_settings, monkeypatch):
    """The connection re-checks what it connects to: no path reaches a refused address."""
    configure(fetch_settings, JWKS_ALLOW_PRIVATE_ADDRESSES=False)
    monkeypatch.setattr(
        socket.socket, "connect", lambda self, address: pytest.fail(f"connected to {address}")
    )
    for family, sockaddr in [
        (socket.AF_INET6, ("fec0::1", 443, 0, 0)),
        (socket.AF_INET, ("127.0.0.1", 443)),
    ]:
        connection = jwks_fetch._ResolvedHTTPSConnection(
            "jwks.example.test",
            443,
            family=family,
            sockaddr=sockaddr,
            timeout=1,
            context=jwks_fetch._ssl_context(),
        )
        with pytest.raises(jwks_fetch.FetchError, match="address refused"):
            connection.connect()
